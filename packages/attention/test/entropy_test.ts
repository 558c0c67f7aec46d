/**
 * logitStats / probStats / tsallisEntropy: reference values, units, masked and sparse rows,
 * finite-difference gradients (logits, probabilities and α).
 */
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { logitStats, probStats, sparsemax, tsallisEntropy } from '../src/index.js';
import { describeAllBackends, directional, expectClose, expectNoLeak, randomRows, value, values } from './helpers.js';
import { entropyRef, logitStatsRef, sparsemaxRef, tsallisRef, varentropyRef } from './reference.js';

describeAllBackends('entropy statistics', () => {
  const z = randomRows(51, 5, 12, 2);

  it('logitStats matches the reference in nats and bits; uniform logits give ln n and 0', async () => {
    const s = logitStats(tf.tensor2d(z));
    expect(s.entropy.shape).toEqual([5]);
    expectClose(await values(s.entropy), z.map((r) => logitStatsRef(r).entropy), 1e-5, 1e-5);
    expectClose(await values(s.varentropy), z.map((r) => logitStatsRef(r).varentropy), 1e-5, 1e-4);
    const b = logitStats(tf.tensor2d(z), { base: 2 });
    expectClose(await values(b.entropy), z.map((r) => logitStatsRef(r).entropy / Math.LN2), 1e-5, 1e-5);
    expectClose(await values(b.varentropy), z.map((r) => logitStatsRef(r).varentropy / Math.LN2 ** 2), 1e-5, 1e-4);
    const u = logitStats(tf.fill([2, 8], 0.3));
    expectClose(await values(u.entropy), [Math.log(8), Math.log(8)], 1e-6);
    expectClose(await values(u.varentropy), [0, 0], 1e-6);
    expect(() => logitStats(tf.tensor2d(z), { base: 10 as 2 })).toThrow(/base/);
  });

  it('logitStats: masked logits excluded, fully masked row → 0, huge logits stable', async () => {
    const s = logitStats(tf.tensor2d([[1, -Infinity, 0], [-Infinity, -Infinity, -Infinity], [1e4, 0, -1e4]]));
    const ref = logitStatsRef([1, 0]);
    expectClose(await values(s.entropy), [ref.entropy, 0, 0], 1e-6);
    expectClose(await values(s.varentropy), [ref.varentropy, 0, 0], 1e-6);
  });

  it('logitStats gradients (entropy and varentropy) match finite differences; masked entries get 0', async () => {
    const x = tf.tensor2d(z);
    const v = tf.tensor2d(randomRows(52, 5, 12, 1));
    for (const key of ['entropy', 'varentropy'] as const) {
      const f = (t: tf.Tensor) => tf.sum(logitStats(t)[key]);
      const g = tf.grad(f)(x);
      expect(await value(tf.sum(tf.mul(g, v)))).toBeCloseTo(await directional(f, x, v), 2);
    }
    const varentropyGrad = tf.grad((t: tf.Tensor) => tf.sum(logitStats(t).varentropy));
    const gm = await values(varentropyGrad(tf.tensor2d([[1, -Infinity, 0.2]])));
    expect(gm[1]).toBe(0);
    expect(gm.every(Number.isFinite)).toBe(true);
    await expectNoLeak(() => tf.dispose(tf.grad((t: tf.Tensor) => tf.sum(logitStats(t).entropy))(x)));
  });

  it('probStats on sparse rows: reference values, finite values and gradients at exact zeros', async () => {
    const p = z.map(sparsemaxRef);
    expect(p.some((r) => r.some((q) => q === 0))).toBe(true);
    const pt = sparsemax(tf.tensor2d(z));
    const s = probStats(pt);
    expectClose(await values(s.entropy), p.map(entropyRef), 2e-6, 1e-4);
    expectClose(await values(s.varentropy), p.map(varentropyRef), 2e-6, 1e-3);
    for (const key of ['entropy', 'varentropy'] as const) {
      const g = await values(tf.grad((t: tf.Tensor) => tf.sum(probStats(t)[key]))(pt));
      expect(g.every(Number.isFinite)).toBe(true);
      // through sparsemax too: gradient wrt the scores
      const gz = await values(tf.grad((t: tf.Tensor) => tf.sum(probStats(sparsemax(t))[key]))(tf.tensor2d(z)));
      expect(gz.every(Number.isFinite)).toBe(true);
    }
    expectClose(await values(probStats(tf.tensor2d([[0.5, 0.5, 0, 0]]), { base: 2 }).entropy), [1], 1e-6);
  });

  it('tsallisEntropy matches the reference for α ∈ {1, 1.001, 1.5, 2, 3}; α-gradient by differences', async () => {
    const p = z.map(sparsemaxRef).concat([[0.2, 0.3, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0]]);
    const pt = tf.tensor2d(p);
    for (const a of [1, 1.001, 1.5, 2, 3]) {
      expectClose(await values(tsallisEntropy(pt, a)), p.map((r) => tsallisRef(r, a)), 2e-6, 1e-4);
    }
    for (const a of [1.01, 1.2, 2.5]) {
      const g = (await values(tf.grad((al: tf.Tensor) => tf.sum(tsallisEntropy(pt, al)))(tf.scalar(a))))[0];
      const h = 1e-5;
      const ref = p.reduce((acc, r) => acc + (tsallisRef(r, a + h) - tsallisRef(r, a - h)) / (2 * h), 0);
      expect(Math.abs(g - ref)).toBeLessThan(1e-4 + 1e-3 * Math.abs(ref));
    }
    // gradient wrt p, on a dense row (finite differences need no zero entries)
    const dense = tf.tensor2d([[0.2, 0.3, 0.5]]);
    const dir = tf.tensor2d([[1, -2, 1]]);
    const f = (t: tf.Tensor) => tf.sum(tsallisEntropy(t, 1.7));
    expect(await value(tf.sum(tf.mul(tf.grad(f)(dense), dir)))).toBeCloseTo(await directional(f, dense, dir), 2);
    expect(() => tsallisEntropy(pt, 0.5)).toThrow(/alpha/);
  });
});
