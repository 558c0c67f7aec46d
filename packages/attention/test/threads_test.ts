/**
 * Threaded wasm computes what single-threaded wasm computes: attention with learned α (value and
 * gradients in q, k, v and α) and a matMul large enough for XNNPACK to split over the pool, bit for
 * bit. The rest of the suite runs on the default thread count (one per core).
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { selectBackend } from '@aes/node';
import { attention, planAttention } from '../src/index.js';

/** attention() with learned α and a causal mask, its value and its gradient in q, k, v and α, on the active backend. */
async function attentionRun(): Promise<Float32Array[]> {
  const H = 4, T = 96, d = 32;
  const plan = planAttention('learned', { heads: H });
  const [q, k, v, dy] = [1, 2, 3, 4].map((s) => tf.randomNormal([1, H, T, d], 0, 1, 'float32', s));
  const alpha = tf.tensor1d([-1, 0, 0.5, 2]);
  const f = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, a: tf.Tensor) =>
    attention(qq, kk, vv, { causal: true, plan, params: { alpha: a } }).output;
  const { value, grads } = tf.valueAndGrads(f)([q, k, v, alpha], dy);
  // A matMul large enough for XNNPACK to split it over the pool.
  const big = tf.randomNormal([300, 500], 0, 1, 'float32', 5);
  const prod = tf.matMul(big, big, false, true);
  const out = await Promise.all([value, ...grads, prod].map((t) => t.data() as Promise<Float32Array>));
  tf.dispose([q, k, v, dy, alpha, value, ...grads, big, prod]);
  return out;
}

describe('threaded wasm', () => {
  afterAll(async () => { await selectBackend('cpu'); });

  it('values and gradients equal the single-threaded build bit for bit', async () => {
    await selectBackend('wasm', { threads: 1 });
    const single = await attentionRun();
    await selectBackend('wasm', { threads: 3 });
    expect(tf.getBackend()).toBe('wasm');
    const before = tf.memory().numTensors;
    const threaded = await attentionRun();
    expect(tf.memory().numTensors).toBe(before);
    expect(threaded.length).toBe(6);
    threaded.forEach((t, i) => {
      expect(t.every(Number.isFinite)).toBe(true);
      expect(Buffer.from(t.buffer).equals(Buffer.from(single[i].buffer))).toBe(true);
    });
  });
});
