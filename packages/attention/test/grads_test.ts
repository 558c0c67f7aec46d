/**
 * Gradients of the maps: finite differences of ⟨u, J v⟩ in float32, the analytic VJP against the
 * float64 reference Jacobian, and ∂/∂α (scalar, per row, per head) against float64 differences,
 * including α close to 1 where the textbook formula cancels.
 */
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { entmax15, entmaxBisect, softmax, sparsemax } from '../src/index.js';
import { describeAllBackends, directional, expectClose, expectNoLeak, randomRows, value, values } from './helpers.js';
import { dot, entmaxAlphaDerivRef, entmaxJvpRef, entmaxRef, softmaxRef } from './reference.js';

type RowMap = (x: tf.Tensor) => tf.Tensor;
const MAPS: Array<[string, RowMap, number]> = [
  ['softmax', softmax, 1], ['sparsemax', sparsemax, 2], ['entmax15', entmax15, 1.5],
  ...[1.01, 1.25, 1.5, 2, 3].map((a): [string, RowMap, number] => [`entmaxBisect(${a})`, (x) => entmaxBisect(x, a), a]),
  ['entmaxBisect(1.7, bisect)', (x) => entmaxBisect(x, 1.7, { solver: 'bisect' }), 1.7],
];

/**
 * Rows whose support does not change within ±margin·v: finite differences are then exact up to
 * curvature. Checked with the float64 reference.
 */
function stableRows(
  seed: number,
  rows: number,
  n: number,
  alpha: number,
  margin = 5e-3,
): { x: number[][]; v: number[][] } {
  const x = randomRows(seed, rows * 4, n, 1.5);
  const v = randomRows(seed + 1, rows * 4, n, 1);
  const same = (a: number[], b: number[]) => a.every((p, i) => p > 0 === b[i] > 0);
  const keep = x.map((r, i) =>
    same(
      entmaxRef(
        r.map((z, j) => z + margin * v[i][j]),
        alpha,
      ),
      entmaxRef(
        r.map((z, j) => z - margin * v[i][j]),
        alpha,
      ),
    ),
  );
  const idx = keep
    .map((k, i) => (k ? i : -1))
    .filter((i) => i >= 0)
    .slice(0, rows);
  expect(idx.length).toBe(rows);
  return { x: idx.map((i) => x[i]), v: idx.map((i) => v[i]) };
}

describeAllBackends('gradients wrt scores', () => {
  for (const [name, map, alpha] of MAPS) {
    it(`${name}: ⟨u, J v⟩ matches finite differences and the float64 Jacobian`, async () => {
      const { x, v } = stableRows(11, 5, 9, alpha);
      const u = randomRows(12, 5, 9, 1);
      const [xt, vt, ut] = [tf.tensor2d(x), tf.tensor2d(v), tf.tensor2d(u)];
      const loss = (z: tf.Tensor) => tf.sum(tf.mul(ut, map(z)));
      const g = tf.grad(loss)(xt);                                     // Jᵀu
      const analytic = dot(await values(g), await values(vt));
      expect(analytic).toBeCloseTo(await directional(loss, xt, vt), 2);
      // Jᵀu against the float64 Jacobian (symmetric) row by row.
      const p = (await map(xt).array()) as number[][];
      const gRows = (await g.array()) as number[][];
      p.forEach((row, i) => expectClose(gRows[i], entmaxJvpRef(row, alpha, u[i]), 2e-5, 1e-3));
      tf.dispose([xt, vt, ut, g]);
    });
  }

  it('masked entries and fully masked rows get zero gradient, never NaN', async () => {
    for (const [, map] of MAPS) {
      const x = tf.tensor2d([[0.3, -Infinity, 1.2, 0.1], [-Infinity, -Infinity, -Infinity, -Infinity]]);
      const g = await values(tf.grad((z: tf.Tensor) => tf.sum(tf.mul(map(z), tf.tensor1d([1, 2, 3, 4]))))(x));
      expect(g[1]).toBe(0);
      expect(g.slice(4)).toEqual([0, 0, 0, 0]);
      expect(g.every(Number.isFinite)).toBe(true);
    }
  });

  it('no leaked tensors across gradient steps', async () => {
    const x = tf.tensor2d(randomRows(3, 4, 16, 2));
    for (const [, map] of MAPS) {
      await expectNoLeak(() => tf.dispose(tf.grad((z: tf.Tensor) => tf.sum(tf.square(map(z))))(x)));
    }
    x.dispose();
  });
});

describeAllBackends('gradients wrt α', () => {
  /** Σ_rows ⟨u_r, ∂p_r/∂α⟩ in float64 by central differences of the reference. */
  const refAlphaGrad = (x: number[][], u: number[][], alphas: number[]) =>
    x.map((r, i) => dot(u[i], entmaxAlphaDerivRef(r, alphas[i])));

  for (const alpha of [1.01, 1.05, 1.1, 1.5, 2, 2.5]) {
    it(`scalar α = ${alpha}: matches float64 differences and float32 finite differences`, async () => {
      const x = randomRows(21, 4, 10, 1.5);
      const u = randomRows(22, 4, 10, 1);
      const [xt, ut] = [tf.tensor2d(x), tf.tensor2d(u)];
      const f = (a: tf.Tensor) => tf.sum(tf.mul(ut, entmaxBisect(xt, a)));
      const g = await value(tf.grad(f)(tf.scalar(alpha)));
      const ref = refAlphaGrad(x, u, x.map(() => alpha)).reduce((a, b) => a + b);
      expect(Math.abs(g - ref)).toBeLessThan(2e-4 + 2e-3 * Math.abs(ref));
      const h = Math.min(1e-3, (alpha - 1) / 4);
      const fd = ((await value(f(tf.scalar(alpha + h)))) - (await value(f(tf.scalar(alpha - h))))) / (2 * h);
      expect(Math.abs(g - fd)).toBeLessThan(3e-3 + 2e-2 * Math.abs(ref));
      tf.dispose([xt, ut]);
    });
  }

  it('per-row α [N, 1] and per-head α [1, H, 1, 1] get per-row / per-head sums', async () => {
    const x = randomRows(31, 4, 8, 1.5);
    const u = randomRows(32, 4, 8, 1);
    const alphas = [1.05, 1.4, 1.8, 2.6];
    const perRow = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.tensor2d(u), entmaxBisect(tf.tensor2d(x), a))))(
      tf.tensor2d(alphas, [4, 1]),
    );
    expect(perRow.shape).toEqual([4, 1]);
    const ref = refAlphaGrad(x, u, alphas);
    const perRowValues = await values(perRow);
    ref.forEach((r, i) => expect(Math.abs(perRowValues[i] - r)).toBeLessThan(2e-4 + 2e-3 * Math.abs(r)));
    // x as [B=1, H=2, T=2, S=8]; heads get α 1.3 and 1.9.
    const head = tf.grad((a: tf.Tensor) =>
      tf.sum(tf.mul(tf.tensor4d(u.flat(), [1, 2, 2, 8]), entmaxBisect(tf.tensor4d(x.flat(), [1, 2, 2, 8]), a))),
    )(tf.tensor4d([1.3, 1.9], [1, 2, 1, 1]));
    expect(head.shape).toEqual([1, 2, 1, 1]);
    const hr = refAlphaGrad(x, u, [1.3, 1.3, 1.9, 1.9]);
    expectClose(await values(head), [hr[0] + hr[1], hr[2] + hr[3]], 3e-4, 3e-3);
  });

  it('α → 1: the α-gradient tends to p(Σ p ℓ² − ℓ²)/2 with p = softmax (no cancellation)', async () => {
    const x = randomRows(35, 3, 7, 1.5);
    const u = randomRows(36, 3, 7, 1);
    const g = await values(
      tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.tensor2d(u), entmaxBisect(tf.tensor2d(x), a))))(
        tf.fill([3, 1], 1 + 1e-5),
      ),
    );
    x.forEach((r, i) => {
      const p = softmaxRef(r);
      const l = p.map(Math.log);
      const s2 = dot(p, l.map((v) => v * v));
      const limit = dot(u[i], p.map((pi, j) => (pi * (s2 - l[j] ** 2)) / 2));
      expect(Math.abs(g[i] - limit)).toBeLessThan(1e-3 * (1 + Math.abs(limit)));
    });
  });

  it('support of size 1 gives ∂p/∂α = 0 exactly; fully masked rows give 0', async () => {
    const x = tf.tensor2d([[5, 0, -1], [-Infinity, -Infinity, -Infinity]]);
    const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(entmaxBisect(x, a), tf.tensor1d([1, 2, 3]))))(
      tf.tensor2d([1.7, 1.7], [2, 1]),
    );
    expect(await values(g)).toEqual([0, 0]);
  });
});
