/** Backend selection: explicit choices, clear errors for unavailable ones, and the auto fallback. */
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { BACKEND_NAMES, selectBackend } from '../src/index.js';

describe('selectBackend', () => {
  afterAll(async () => { await selectBackend('cpu'); });

  it('activates cpu and wasm and reports which', async () => {
    expect((await selectBackend('cpu')).tfName).toBe('cpu');
    const w = await selectBackend('wasm');
    expect(w.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(w.detail).toMatch(/SIMD (on|off)/);
  });

  it('unknown names are rejected with the list of valid ones', async () => {
    await expect(selectBackend('tpu' as 'cpu')).rejects.toThrow(/unknown backend 'tpu'.*wasm, cpu, webgpu/);
  });

  it('an unavailable backend names itself and the reason', async () => {
    // tfjs-node is never installed by this project (its install downloads libtensorflow).
    await expect(selectBackend('tensorflow')).rejects.toThrow(
      /backend 'tensorflow' is unavailable: @tensorflow\/tfjs-node is not installed/,
    );
  });

  it('auto falls back in order and lists what it skipped', async () => {
    const c = await selectBackend('auto');
    const order = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'];
    expect(order).toContain(c.name);
    expect(c.skipped.map((s) => s.name)).toEqual(order.slice(0, order.indexOf(c.name)));
    for (const s of c.skipped) expect(s.reason.length).toBeGreaterThan(10);
    expect(BACKEND_NAMES).toContain(c.name);
  });
});
