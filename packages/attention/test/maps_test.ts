/**
 * Forward values of softmax / sparsemax / entmax15 / entmaxBisect: hand-worked values and edge
 * cases, agreement with the independent float64 reference, sort vs bisection, bad input.
 */
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { entmax15, entmaxBisect, softmax, sparsemax, supportFraction, supportSize } from '../src/index.js';
import { describeAllBackends, expectClose, expectNoLeak, randomRows, read, values } from './helpers.js';
import { entmax15Ref, entmaxRef, softmaxRef, sparsemaxRef } from './reference.js';

type RowMap = (x: tf.Tensor) => tf.Tensor;
const bisect = (a: number): RowMap => (x) => entmaxBisect(x, a);
/** Every map with its α and its float64 reference. */
const MAPS: Array<[string, RowMap, number, (z: number[]) => number[]]> = [
  ['softmax', softmax, 1, softmaxRef],
  ['sparsemax', sparsemax, 2, sparsemaxRef],
  ['entmax15', entmax15, 1.5, entmax15Ref],
  ...[1.01, 1.25, 1.5, 2, 3].map((a): [string, RowMap, number, (z: number[]) => number[]] =>
    [`entmaxBisect(${a})`, bisect(a), a, (z) => entmaxRef(z, a)]),
];

function run(map: RowMap, rows: number[][]): Promise<number[][]> {
  return read<number[][]>(() => map(tf.tensor2d(rows)));
}

describeAllBackends('maps', (backend) => {
  it('hand-worked values', async () => {
    expectClose((await run(sparsemax, [[0.5, 0]]))[0], [0.75, 0.25], 1e-6);
    expectClose((await run(sparsemax, [[1, 0]]))[0], [1, 0], 1e-6);
    expectClose((await run(sparsemax, [[2, 2, 0]]))[0], [0.5, 0.5, 0], 1e-6);  // tie at the top
    // entmax15([1, 0]): X = (0, −1/2), both in the support, τ² + (τ + 1/2)² = 1 → τ = (−1 − √7)/4.
    const tau = (-1 - Math.sqrt(7)) / 4;
    expectClose((await run(entmax15, [[1, 0]]))[0], [tau ** 2, (tau + 0.5) ** 2], 1e-6);
    expectClose((await run(entmax15, [[2, 2, 0]]))[0], [0.5, 0.5, 0], 1e-6);  // τ = −1/√2 > −1
    expectClose((await run(softmax, [[Math.log(3), 0]]))[0], [0.75, 0.25], 1e-6);
    // Two entries, α-entmax: p₁ − p₂ has a closed form for α = 2: clip((1 + z₁ − z₂)/2).
    expectClose((await run(bisect(2), [[0.3, 0]]))[0], [0.65, 0.35], 1e-5);
  });

  for (const [name, map] of MAPS) {
    it(`${name}: constant row is uniform, length-1 row is [1], sums are 1`, async () => {
      expectClose((await run(map, [[3, 3, 3, 3]]))[0], [0.25, 0.25, 0.25, 0.25], 1e-6);
      expectClose((await run(map, [[-7]]))[0], [1], 1e-6);
      for (const r of await run(map, randomRows(1, 6, 33, 3)))
        expect(Math.abs(r.reduce((a, b) => a + b) - 1)).toBeLessThan(1e-5);
    });
  }

  for (const [name, map, , ref] of MAPS) {
    it(`${name}: agrees with the float64 reference (widths 2..300, scales 1e-5..1e3)`, async () => {
      for (const [n, scale] of [[2, 1], [7, 0.5], [50, 3], [300, 1], [20, 1e-5], [20, 1e3]]) {
        const rows = randomRows(n * 7 + 1, 4, n, scale);
        const got = await run(map, rows);
        // Scores of 1e3: float32 shifts by the max lose ~1e-4 absolute; p moves by at most that.
        const atol = scale >= 1e3 ? 2e-4 : 2e-5;
        rows.forEach((r, i) => expectClose(got[i], ref(r), atol));
      }
    });

    it(`${name}: −∞ entries get exactly 0 and the row equals the truncated row`, async () => {
      const full = [0.4, -Infinity, 1.3, -0.2, -Infinity, 0.9];
      const kept = [0.4, 1.3, -0.2, 0.9];
      const p = (await run(map, [full]))[0];
      expect(p[1]).toBe(0);
      expect(p[4]).toBe(0);
      expectClose([p[0], p[2], p[3], p[5]], (await run(map, [kept]))[0], 1e-6);
      expectClose([p[0], p[2], p[3], p[5]], ref(kept), 2e-5);
    });

    it(`${name}: fully masked row → zeros, NaN/+∞ row → NaN row, other rows untouched`, async () => {
      const rows = [[1, 0, 2], [-Infinity, -Infinity, -Infinity], [1, NaN, 0], [Infinity, 0, 1], [0.5, 0.2, -1]];
      const p = await run(map, rows);
      expect(p[1]).toEqual([0, 0, 0]);
      expect(p[2].every(Number.isNaN)).toBe(true);
      expect(p[3].every(Number.isNaN)).toBe(true);
      expectClose(p[0], ref(rows[0]), 2e-5);
      expectClose(p[4], ref(rows[4]), 2e-5);
    });

    it(`${name}: any leading shape, rows independent; no leaked tensors`, async () => {
      const rows = randomRows(5, 6, 5, 2);
      const flat = await run(map, rows);
      const got = await read<number[][][]>(() => map(tf.tensor3d([rows.slice(0, 3), rows.slice(3)])));
      got.flat().forEach((r, i) => expectClose(r, flat[i], 1e-6));
      const x = tf.tensor2d(rows);
      const xm = tf.tensor2d([[1, -Infinity], [-Infinity, -Infinity]]);
      await expectNoLeak(() => tf.dispose([map(x), map(xm)]));
      tf.dispose([x, xm]);
    });
  }

  it('sort-based and bisection agree (α = 1.5 and 2), widths up to 2000', async () => {
    for (const n of [3, 64, 2000]) {
      const x = tf.tensor2d(randomRows(n, 8, n, 2));
      expectClose(await values(sparsemax(x)), await values(entmaxBisect(x, 2)), 1e-6);
      expectClose(await values(entmax15(x)), await values(entmaxBisect(x, 1.5)), 1e-6);
      x.dispose();
    }
  });

  it('partial sorts: first top-k, the fallback sort (one wide-support row), ties across the cut', async () => {
    const peaked = randomRows(61, 3, 500, 5);
    const flat = randomRows(62, 1, 500, 0.02);                       // support ≈ all 500
    const ties = [Array.from({ length: 500 }, (_, i) => (i % 50 === 0 ? 1 : 0.98))];   // 10 tied maxima
    for (const rows of [peaked, [...peaked, ...flat], ties]) {
      for (const [map, ref] of [[sparsemax, sparsemaxRef], [entmax15, entmax15Ref]] as const) {
        const got = await run(map, rows);
        rows.forEach((r, i) => expectClose(got[i], ref(r), 2e-6));
      }
    }
  });

  it("solver 'halley' (default) matches 60 bisection halvings and the exact sort-based maps, special rows too",
    async () => {
    for (const [scale, n] of [
      [0.05, 300],
      [1, 50],
      [3, 1000],
      [1000, 40],
    ] as const) {
      const rows = randomRows(scale * 100 + n, 6, n, scale).map((r, i) =>
        i === 1 ? r.map((v, j) => (j % 3 ? v : -Infinity)) : r,
      );
      rows.push(Array(n).fill(-Infinity), [NaN, ...Array(n - 1).fill(0)]);
      for (const a of [1.01, 1.25, 1.5, 2, 3]) {
        const got = await run((x) => entmaxBisect(x, a, { solver: 'halley' }), rows);
        const want = await run((x) => entmaxBisect(x, a, { solver: 'bisect', nIter: 60 }), rows);
        got.forEach((r, i) => expectClose(r, want[i], 5e-6));
      }
      // Exact finish: α = 2 and 1.5 equal the sort-based maps to float32 rounding.
      expectClose((await run((x) => entmaxBisect(x, 2), rows)).flat(), (await run(sparsemax, rows)).flat(), 2e-6);
      expectClose((await run((x) => entmaxBisect(x, 1.5), rows)).flat(), (await run(entmax15, rows)).flat(), 2e-6);
    }
    expect(() => entmaxBisect(tf.tensor2d([[1, 2]]), 1.5, { solver: 'newton' as 'halley' })).toThrow(/solver must be/);
  });

  it('halley: per-row α mixing α ≤ 2 (Halley) and α > 2 (Newton) rows', async () => {
    const rows = randomRows(77, 6, 700, 2);
    const alphas = [1.05, 1.3, 1.5, 2, 2.5, 4];
    const al = tf.tensor2d(alphas, [6, 1]);
    const got = await run((z) => entmaxBisect(z, al), rows);
    rows.forEach((r, i) => expectClose(got[i], entmaxRef(r, alphas[i]), 3e-6));
    al.dispose();
  });

  // Halley stops once no row moves, which it can see only where reads are cheap (capabilities.ts):
  // on a device it runs all its iterations, by design.
  it.skipIf(backend === 'webgpu')('halley: fewer passes than bisection', async () => {
    const x = tf.tensor2d(randomRows(77, 6, 700, 2));
    // Count the kernels that run over the whole [rows, n] score tensor (the cost): Halley stops early.
    const passes = async (solver: 'halley' | 'bisect') =>
      (await tf.profile(() => entmaxBisect(x, 1.3, { solver }))).kernels.filter((k) =>
        k.inputShapes.some((s) => s?.length === 2 && s[1] === 700),
      ).length;
    const [h, b] = [await passes('halley'), await passes('bisect')];
    console.log(`full-width kernels: halley ${h}, bisect ${b}`);
    expect(b).toBeGreaterThanOrEqual(30 * 4);
    expect(h * 3).toBeLessThan(b);
    x.dispose();
  });

  it('α = 3 on peaked rows (1000·randn) gives no NaN and matches the reference', async () => {
    const rows = randomRows(99, 8, 40, 1000);
    const p = await run(bisect(3), rows);
    rows.forEach((r, i) => {
      expect(p[i].every(Number.isFinite)).toBe(true);
      expectClose(p[i], entmaxRef(r, 3), 1e-5);
    });
  });

  it('α = 1 dispatches to softmax exactly; a tensor α = 1 is softmax within 1e-5', async () => {
    const x = tf.tensor2d(randomRows(3, 4, 9, 2));
    expect(await values(entmaxBisect(x, 1))).toEqual(await values(softmax(x)));
    expectClose(await values(entmaxBisect(x, tf.scalar(1))), await values(softmax(x)), 1e-5);
    x.dispose();
  });

  it('huge α tends to argmax (ties share the mass)', async () => {
    const p = await run(bisect(1000), [[0.1, 2, -1, 0.5], [1, 3, 3, 0]]);
    expectClose(p[0], [0, 1, 0, 0], 1e-6);
    expectClose(p[1], [0, 0.5, 0.5, 0], 1e-6);
  });

  it('per-row and per-head tensor α equal the number-α results row by row', async () => {
    const rows = randomRows(8, 4, 12, 2);
    const alphas = [1.1, 1.5, 2, 2.7];
    const got = await run((x) => entmaxBisect(x, tf.tensor2d(alphas, [4, 1])), rows);
    rows.forEach((r, i) => expectClose(got[i], entmaxRef(r, alphas[i]), 2e-5));
    const heads = await read<number[][][][]>(() =>
      entmaxBisect(tf.tensor4d(rows.flat(), [1, 2, 2, 12]), tf.tensor4d([1.3, 1.9], [1, 2, 1, 1])),
    );
    heads[0].forEach((h, hi) => h.forEach((r, j) => expectClose(r, entmaxRef(rows[hi * 2 + j], hi ? 1.9 : 1.3), 2e-5)));
  });

  it('supportSize / supportFraction count the non-zeros', async () => {
    const p = tf.tensor2d([[0.5, 0.5, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]);
    expect(await values(supportSize(p))).toEqual([2, 1, 0]);
    expectClose(await values(supportFraction(p)), [0.5, 0.25, 0], 1e-7);
    expect(supportSize(p).dtype).toBe('int32');
    const sp = sparsemax(tf.tensor2d(randomRows(4, 3, 100, 3)));
    const ref = ((await sp.array()) as number[][]).map((r) => r.filter((v) => v > 0).length);
    expect(await values(supportSize(sp))).toEqual(ref);
  });

  it('bad input gets a clear error', async () => {
    const x = tf.tensor2d([[1, 2]]);
    expect(() => sparsemax(tf.tensor2d([[1, 2]], [1, 2], 'int32'))).toThrow(/float32/);
    expect(() => entmax15(tf.scalar(1))).toThrow(/non-empty last axis/);
    expect(() => softmax(tf.zeros([2, 0]))).toThrow(/non-empty last axis/);
    expect(() => sparsemax([1, 2] as unknown as tf.Tensor)).toThrow(/tf.Tensor/);
    expect(() => entmaxBisect(x, 0.5)).toThrow(/alpha must be ≥ 1/);
    expect(() => entmaxBisect(x, NaN)).toThrow(/finite/);
    expect(() => entmaxBisect(x, tf.tensor2d([[1.5, 1.5]]))).toThrow(/does not broadcast/);
    expect(() => entmaxBisect(x, tf.tensor2d([[1.5], [1.5], [1.5]]))).toThrow(/does not broadcast/);
    expect(() => entmaxBisect(x, tf.scalar(2, 'int32'))).toThrow(/float32/);
    expect(() => entmaxBisect(x, 1.5, { nIter: 0 })).toThrow(/nIter/);
    x.dispose();
  });
});
