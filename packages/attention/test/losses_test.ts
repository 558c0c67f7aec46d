/**
 * Fenchel–Young losses: values against the float64 reference, gradient p* − onehot(y) (analytic and
 * finite differences), ∂L/∂α, ignoreIndex, reductions and bad input.
 */
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import {
  entmax15,
  entmax15Loss,
  entmaxBisect,
  entmaxBisectLoss,
  reduceLoss,
  sparsemax,
  sparsemaxLoss,
} from '../src/index.js';
import {
  describeAllBackends, directional, expectClose, expectNoLeak, randomRows, read, value, values,
} from './helpers.js';
import { fyLossRef } from './reference.js';

type Loss = (z: tf.Tensor, y: tf.Tensor) => tf.Tensor;
const LOSSES: Array<[string, Loss, number, (z: tf.Tensor) => tf.Tensor]> = [
  ['sparsemaxLoss', (z, y) => sparsemaxLoss(z, y), 2, sparsemax],
  ['entmax15Loss', (z, y) => entmax15Loss(z, y), 1.5, entmax15],
  ...[1, 1.2, 1.5, 2.5].map((a): [string, Loss, number, (z: tf.Tensor) => tf.Tensor] =>
    [`entmaxBisectLoss(${a})`, (z, y) => entmaxBisectLoss(z, y, a), a, (z) => entmaxBisect(z, a)]),
];

describeAllBackends('Fenchel–Young losses', (backend) => {
  const z = randomRows(41, 6, 7, 2);
  const y = [0, 3, 6, 2, 2, 5];

  for (const [name, loss, alpha, map] of LOSSES) {
    it(`${name}: per-row values match the reference; gradient is p* − onehot(y)`, async () => {
      const [zt, yt] = [tf.tensor2d(z), tf.tensor1d(y, 'int32')];
      const l = loss(zt, yt);
      expect(l.shape).toEqual([6]);
      expectClose(await values(l), z.map((r, i) => fyLossRef(r, y[i], alpha)), 2e-5, 1e-4);
      const g = tf.grad((t: tf.Tensor) => tf.sum(loss(t, yt)))(zt);
      const expected = tf.sub(map(zt), tf.oneHot(yt, 7).toFloat());
      expectClose(await values(g), await values(expected), 1e-6);
      const v = tf.tensor2d(randomRows(42, 6, 7, 1));
      const fd = await directional((t) => tf.sum(loss(t, yt)), zt, v);
      expect(await value(tf.sum(tf.mul(g, v)))).toBeCloseTo(fd, 2);
      tf.dispose([zt, yt, l, g, expected, v]);
    });
  }

  it('loss is 0 once the target wins by a margin (α > 1), positive otherwise; CE at α = 1', async () => {
    const zt = tf.tensor2d([[5, 0, 0], [0, 0.1, 0]]);
    const yt = tf.tensor1d([0, 0], 'int32');
    expect((await values(sparsemaxLoss(zt, yt)))[0]).toBe(0);
    expect((await values(entmax15Loss(zt, yt)))[0]).toBeCloseTo(0, 6);
    expect((await values(sparsemaxLoss(zt, yt)))[1]).toBeGreaterThan(0);
    const ce = await values(entmaxBisectLoss(zt, yt, 1));
    const lse = (r: number[]) => Math.log(r.reduce((a, b) => a + Math.exp(b), 0));
    expectClose(ce, [lse([5, 0, 0]) - 5, lse([0, 0.1, 0])], 1e-5);
  });

  it('∂L/∂α (tensor α, per row) matches finite differences, near 1 too', async () => {
    const [zt, yt] = [tf.tensor2d(z), tf.tensor1d(y, 'int32')];
    for (const a of [1.02, 1.3, 1.8]) {
      const alphas = tf.tensor2d(y.map((_, i) => a + 0.05 * i), [6, 1]);
      const f = (al: tf.Tensor) => tf.sum(entmaxBisectLoss(zt, yt, al));
      const g = await values(tf.grad(f)(alphas));
      // float64 reference differences, row by row
      const ref = z.map((r, i) => {
        const ai = a + 0.05 * i, h = 1e-5;
        return (fyLossRef(r, y[i], ai + h) - fyLossRef(r, y[i], ai - h)) / (2 * h);
      });
      expectClose(g, ref, 2e-4, 2e-3);
      tf.dispose(alphas);
    }
    tf.dispose([zt, yt]);
  });

  it('ignoreIndex rows give 0 loss and 0 gradient; reductions', async () => {
    const zt = tf.tensor2d(z);
    const yt = tf.tensor1d([0, -100, 6, -100, 2, 5], 'int32');
    const l = await values(sparsemaxLoss(zt, yt));
    expect(l[1]).toBe(0);
    expect(l[3]).toBe(0);
    const g = await read<number[][]>(() => tf.grad((t: tf.Tensor) => tf.sum(sparsemaxLoss(t, yt)))(zt));
    expect(g[1].every((v) => v === 0) && g[3].every((v) => v === 0)).toBe(true);
    const kept = [l[0], l[2], l[4], l[5]];
    expect(await value(sparsemaxLoss(zt, yt, { reduction: 'mean' }))).toBeCloseTo(kept.reduce((a, b) => a + b) / 4, 5);
    expect(await value(sparsemaxLoss(zt, yt, { reduction: 'sum' }))).toBeCloseTo(kept.reduce((a, b) => a + b), 5);
    expect(
      await values(entmax15Loss(zt, tf.tensor1d([7, 7, 7, 7, 7, 7], 'int32'), { ignoreIndex: 7, reduction: 'mean' })),
    ).toEqual([0]);
    expect(await value(reduceLoss(tf.tensor1d([1, 2, 3]), 'mean'))).toBeCloseTo(2, 6);
    expect(() => reduceLoss(tf.tensor1d([1]), 'avg' as 'mean')).toThrow(/reduction/);
  });

  it('masked logits: masked non-targets are fine, a masked target gives +∞ (not NaN)', async () => {
    const zt = tf.tensor2d([[1, -Infinity, 0.5], [1, -Infinity, 0.5]]);
    const l = await values(sparsemaxLoss(zt, tf.tensor1d([0, 1], 'int32')));
    expect(Number.isFinite(l[0])).toBe(true);
    expect(l[1]).toBe(Infinity);
  });

  // The range of the targets is checked on the host only (losses.ts): a device backend would have to read them.
  it.skipIf(backend === 'webgpu')('a target outside [0, K) gets a clear error', async () => {
    const zt = tf.tensor2d(z);
    expect(() => sparsemaxLoss(zt, tf.tensor1d([0, 1, 2, 3, 4, 9], 'int32'))).toThrow(/target 9 outside \[0, 7\)/);
    zt.dispose();
  });

  it('bad input gets a clear error; no leaked tensors', async () => {
    const zt = tf.tensor2d(z);
    expect(() => sparsemaxLoss(zt, tf.tensor1d([0, 1, 2, 3, 4, 5], 'float32'))).toThrow(/int32/);
    expect(() => sparsemaxLoss(zt, tf.tensor1d([0, 1], 'int32'))).toThrow(/2 targets for 6 rows/);
    expect(() => sparsemaxLoss(tf.tensor1d([1, 2]), tf.tensor1d([0], 'int32'))).toThrow(/\[N, K\]/);
    expect(() => entmaxBisectLoss(zt, tf.tensor1d(y, 'int32'), 0.9)).toThrow(/alpha must be ≥ 1/);
    const yt = tf.tensor1d(y, 'int32');
    const a = tf.scalar(1.4);
    await expectNoLeak(() =>
      tf.dispose(tf.grads((t: tf.Tensor, al: tf.Tensor) => tf.sum(entmaxBisectLoss(t, yt, al)))([zt, a])),
    );
    tf.dispose([zt, yt, a]);
  });
});
