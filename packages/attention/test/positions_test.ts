/**
 * Positions: RoPE keeps norms, makes q·k depend on the distance only, and equals a float64 rotation;
 * ALiBi slopes and biases against a hand computation; attention with ALiBi equals attention given
 * the same bias through its scores.
 */
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { alibiSlopes, attention, rope, ROPE_BASE } from '../src/index.js';
import { describeAllBackends, expectClose, value, values } from './helpers.js';
import { mulberry32, randn } from './reference.js';

describeAllBackends('positions', () => {
  const rng = mulberry32(5);
  const x = Array.from({ length: 2 * 3 * 6 * 8 }, () => randn(rng));

  it('RoPE equals a float64 rotation of each pair (x_i, x_{i+d/2}) by pos·θ_i, and keeps norms', async () => {
    const t = tf.tensor4d(x, [2, 3, 6, 8]);
    const got = await values(rope(t, 4));
    const want = x.map((_, idx) => {
      const i = idx % 8, pos = 4 + (Math.floor(idx / 8) % 6), base = idx - i, half = 4;
      const j = i % half, angle = pos * ROPE_BASE ** (-(2 * j) / 8);
      const [a, b] = [x[base + j], x[base + j + half]];
      return i < half ? a * Math.cos(angle) - b * Math.sin(angle) : a * Math.sin(angle) + b * Math.cos(angle);
    });
    expectClose(got, want, 1e-5);
    const norm = (v: number[], r: number) => Math.hypot(...v.slice(r * 8, r * 8 + 8));
    for (let r = 0; r < 36; r++) expect(norm(got, r)).toBeCloseTo(norm(x, r), 4);
    expect(() => rope(tf.zeros([1, 1, 2, 3]), 0)).toThrow(/even/);
  });

  it('RoPE: q·k depends on the distance only', async () => {
    const q = tf.tensor4d(x.slice(0, 8), [1, 1, 1, 8]), k = tf.tensor4d(x.slice(8, 16), [1, 1, 1, 8]);
    const dot = (tq: number, tk: number) => value(tf.sum(tf.mul(rope(q, tq), rope(k, tk))));
    expect(await dot(7, 3)).toBeCloseTo(await dot(104, 100), 4);
    expect(Math.abs((await dot(7, 3)) - (await dot(7, 4)))).toBeGreaterThan(1e-3);
  });

  it('ALiBi: slopes 2^(−8(h+1)/H); attention with alibi equals attention of scores biased by −m_h·(i − j)',
    async () => {
    expect(alibiSlopes(4)).toEqual([0.25, 0.0625, 0.015625, 0.00390625]);
    const [q, k, v] = [1, 2, 3].map((s) => tf.randomNormal([2, 4, 5, 6], 0, 1, 'float32', s));
    for (const layout of ['perHead', 'batched'] as const) {
      const got = attention(q, k, v, { causal: true, alibi: true, layout }).output;
      // the same bias through the queries: append a coordinate whose product with a key gives −m·(i − j)
      const slopes = alibiSlopes(4);
      const bias = tf.tensor4d(
        slopes
          .flatMap((m) =>
            Array.from({ length: 5 }, (_, i) => Array.from({ length: 5 }, (_, j) => (j > i ? 0 : -m * (i - j)))),
          )
          .flat(),
        [1, 4, 5, 5],
      );
      const logits = tf.add(tf.div(tf.matMul(q, k, false, true), Math.sqrt(6)), bias);
      const mask = tf.tensor2d(
        Array.from({ length: 25 }, (_, e) => (e % 5 > Math.floor(e / 5) ? -Infinity : 0)),
        [5, 5],
      );
      const want = tf.matMul(tf.softmax(tf.add(logits, mask)), v);
      expectClose(await values(got), await values(want), 1e-5);
    }
  });
});
