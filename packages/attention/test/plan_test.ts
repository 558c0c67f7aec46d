/**
 * planAttention: specs resolved once (fixed α named by their exact map, learned, AES with every
 * default filled in and its schedule built), AES heads grouped by options, errors at planning time;
 * alphaOf from host values; a plan and its specs give the same attention.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { AES_DEFAULTS, alphaOf, attention, planAttention } from '../src/index.js';

describe('planAttention', () => {
  it('resolves every head once: fixed α with the name of its map, learned, AES with defaults and a schedule', () => {
    const plan = planAttention(['softmax', 'entmax15', 'alpha=1.3', 'learned', 'aes', { aes: { S0: 0.2 } }, 'aes'], {
      heads: 7,
    });
    expect(plan.heads.slice(0, 3)).toEqual([
      { kind: 'fixed', name: 'softmax', alpha: 1 },
      { kind: 'fixed', name: 'entmax15', alpha: 1.5 },
      { kind: 'fixed', name: 'fixed', alpha: 1.3 },
    ]);
    expect(plan.heads[3]).toEqual({ kind: 'learned' });
    const aes = plan.heads[4] as Extract<(typeof plan.heads)[number], { kind: 'aes' }>;
    expect(aes.aes).toEqual(AES_DEFAULTS);
    expect(aes.schedule.alpha(0)).toBe(2);                                 // built: S ≤ S0 is sparsemax
    expect(plan.learned).toBe(true);
    expect(plan.aesGroups.map((g) => g.heads)).toEqual([[4, 6], [5]]);    // same options gate together
    expect(plan.specs).toHaveLength(7);
    expect(Object.isFrozen(plan) && Object.isFrozen(plan.heads)).toBe(true);
  });

  it('fails at planning time, with the reason', () => {
    expect(() => planAttention(['softmax', 'softmax'], { heads: 3 })).toThrow(/2 normalisers for 3 heads/);
    expect(() => planAttention({ aes: { shape: 'zmax * (S - S0' } }, { heads: 2 })).toThrow(/cannot parse formula/);
    expect(() => planAttention({ aes: { S0: 0.9, Smax: 0.5 } }, { heads: 2 })).toThrow(/0 ≤ S0 < Smax ≤ 1/);
    expect(() => planAttention('softmax', { heads: 0 })).toThrow(/positive integer/);
  });

  it('alphaOf reads learned α from the raw parameter and AES α from the running ζ', () => {
    const plan = planAttention(['sparsemax', 'learned', { aes: { zmax: 2 } }], { heads: 3 });
    const values = { alphaRaw: [0, 0, 0], state: [NaN, NaN, 1] };
    expect(plan.heads.map((h, i) => alphaOf(h, i, values))).toEqual([2, 1.5, 1.5]);
    expect(alphaOf(plan.heads[2], 2, { state: [NaN, NaN, NaN] })).toBeNaN();
  });

  it('attention with a plan equals attention with its specs; plan and normaliser together are refused', async () => {
    await tf.setBackend('cpu');
    const [q, k, v] = [1, 2, 3].map((s) => tf.randomNormal([2, 3, 5, 4], 0, 1, 'float32', s));
    const specs = ['sparsemax', 'aes', { alpha: 1.7 }] as const;
    const plan = planAttention([...specs], { heads: 3 });
    const a = attention(q, k, v, { plan, causal: true });
    const b = attention(q, k, v, { normaliser: [...specs], causal: true });
    expect(Array.from(a.output.dataSync())).toEqual(Array.from(b.output.dataSync()));
    expect(Array.from(a.state!.dataSync())).toEqual(Array.from(b.state!.dataSync()));
    expect(() => attention(q, k, v, { plan, normaliser: 'softmax' })).toThrow(/either plan or normaliser/);
    expect(() => attention(q, k, v, { plan: planAttention('softmax', { heads: 2 }) })).toThrow(
      /plan has 2 heads, q has 3/,
    );
    expect(() => attention(q, k, v, { plan, state: tf.zeros([2]) })).toThrow(
      /AES state must be a float32 tensor \[3\]/,
    );
  });
});
