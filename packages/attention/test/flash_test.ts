/**
 * Flash-style α-entmax attention (fused/flash_fused.ts, flash_wgsl.ts) on the GPU adapter the test
 * helper found (the software GPU on CI):
 * - hand-worked outputs (sparsemax and entmax15 rows with known weights);
 * - a float64 reference (entmaxRef of every row, then the weighted values);
 * - the dense composite on cpu (scores, masks, entmaxBisect, values): outputs and gradients in q, k,
 *   v and α, causal with a KV-cache offset, padded keys, α per head, T = 1, a row too long for
 *   registers, d ≠ dv;
 * - finite differences on webgpu in q and in α per head;
 * - skipping: clustered keys skip most tiles and still give the dense numbers; large cancelling
 *   scores (~1e3 apart by little) skip nothing that matters;
 * - NaN, fully masked rows, bad arguments, no kernel off webgpu, and no leaks.
 * Without an adapter (outside CI) the suite is skipped, as the helper says.
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '@aes/node';
import { beforeAll, describe, expect, it } from 'vitest';
import { entmaxBisect } from '../src/index.js';
import { causalMask } from '../src/scores.js';
import { flashEntmaxAttention, flashSkipCounts } from '../src/fused/flash_fused.js';
import { TILE } from '../src/fused/flash_wgsl.js';
import { directional, expectClose, expectNoLeak, randomRows, TEST_BACKENDS } from './helpers.js';
import { entmaxRef } from './reference.js';

type Shape4 = [number, number, number, number];
interface Case {
  B: number;
  H: number;
  T: number;
  S: number;
  D: number;
  DV?: number;
  causal?: boolean;
  offset?: number;
  alpha: number | number[];
  scale?: number;
  spread?: number;
  padded?: boolean;
}

/** q, k, v, the key mask (1 keeps) and the loss weights of a case, seeded. */
function dataOf(c: Case, seed: number) {
  const DV = c.DV ?? c.D;
  const shapes: Shape4[] = [
    [c.B, c.H, c.T, c.D],
    [c.B, c.H, c.S, c.D],
    [c.B, c.H, c.S, DV],
  ];
  const [q, k, v] = shapes.map(
    (s, i) =>
      randomRows(
        seed + i,
        1,
        s.reduce((a, b) => a * b, 1),
        c.spread ?? 1.5,
      )[0],
  );
  // padding: batch row b keeps its first S − 2b keys (at least one)
  const mask = Array.from({ length: c.B * c.S }, (_, x) =>
    x % c.S < Math.max(1, c.S - 2 * Math.floor(x / c.S)) ? 1 : 0,
  );
  const w = randomRows(seed + 9, 1, c.B * c.H * c.T * DV)[0];
  return { shapes, q, k, v, mask, w, DV };
}

/** α of the case as the op takes it: a number, or [H, 1, 1] per head. */
const alphaOf = (c: Case) => (typeof c.alpha === 'number' ? c.alpha : tf.tensor(c.alpha, [c.H, 1, 1]));

/** The dense composite: scores, causal and padding masks, entmaxBisect, values (any backend). */
function dense(c: Case, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, alpha: number | tf.Tensor, mask?: tf.Tensor) {
  let s = tf.mul(tf.matMul(q, k, false, true), c.scale ?? 1 / Math.sqrt(c.D));
  if (c.causal) s = tf.add(s, causalMask(c.T, c.S, c.offset ?? c.S - c.T)!);
  if (mask) s = tf.where(tf.reshape(tf.cast(mask, 'bool'), [c.B, 1, 1, c.S]), s, tf.fill(s.shape, -Infinity));
  const a = typeof alpha === 'number' ? alpha : tf.reshape(alpha, [1, c.H, 1, 1]);
  return tf.matMul(entmaxBisect(s, a), v);
}

const flash = (c: Case, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, alpha: number | tf.Tensor, mask?: tf.Tensor) =>
  flashEntmaxAttention(q, k, v, { alpha, causal: c.causal, queryOffset: c.offset, keyMask: mask, scale: c.scale });

type Impl = typeof dense;

/** Output and the gradients (q, k, v, and α when it is a tensor) of Σ w·attention, on `backend`. */
async function outputAndGrads(c: Case, impl: Impl, backend: 'cpu' | 'webgpu', seed = 1): Promise<number[][]> {
  await selectBackend(backend);
  const d = dataOf(c, seed);
  const out = tf.tidy(() => {
    const [q, k, v] = [d.q, d.k, d.v].map((x, i) => tf.tensor(x, d.shapes[i]));
    const mask = c.padded ? tf.tensor2d(d.mask, [c.B, c.S]) : undefined;
    const wT = tf.tensor(d.w, [c.B, c.H, c.T, d.DV]);
    const alpha = alphaOf(c);
    const f = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, aa: tf.Tensor) =>
      tf.sum(tf.mul(impl(c, qq, kk, vv, typeof alpha === 'number' ? alpha : aa, mask), wT));
    const aT = typeof alpha === 'number' ? tf.scalar(0) : alpha;
    const grads =
      typeof alpha === 'number'
        ? tf.grads((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) => f(qq, kk, vv, aT))([q, k, v])
        : tf.grads(f)([q, k, v, aT]);
    return [impl(c, q, k, v, alpha, mask), ...grads];
  });
  const r = await Promise.all(out.map(async (t) => Array.from(await t.data())));
  tf.dispose(out);
  return r;
}

const CASES: Array<[string, Case]> = [
  ['sparsemax, one head', { B: 1, H: 1, T: 3, S: 3, D: 4, alpha: 2 }],
  ['entmax15, causal, KV-cache offset (T < S)', { B: 2, H: 2, T: 5, S: 9, D: 8, causal: true, alpha: 1.5 }],
  ['α per head, causal, several tiles', { B: 1, H: 3, T: 70, S: 150, D: 16, causal: true, alpha: [1.2, 1.5, 2] }],
  ['α per head, padded keys, d ≠ dv', { B: 3, H: 2, T: 6, S: 70, D: 8, DV: 5, padded: true, alpha: [1.3, 1.9] }],
  ['one query (T = 1), causal, α = 1.7', { B: 2, H: 2, T: 1, S: 33, D: 8, causal: true, alpha: 1.7 }],
  ['a row longer than the registers hold (S = 8300)', { B: 1, H: 1, T: 2, S: 8300, D: 4, alpha: 1.5, spread: 3 }],
  ['α = 1: softmax attention', { B: 1, H: 2, T: 4, S: 6, D: 4, causal: true, alpha: 1 }],
];

describe.skipIf(!TEST_BACKENDS.includes('webgpu'))('flash α-entmax attention on webgpu', () => {
  beforeAll(async () => {
    await selectBackend('webgpu');
  });

  it('hand-worked rows: sparsemax [2, 1.5] → (0.75, 0.25), entmax15 [2, 1, −1] → (0.8307, 0.1693, 0)', async () => {
    await selectBackend('webgpu');
    const v = tf.tensor([10, -2, 4], [1, 1, 3, 1]);
    const spm = flashEntmaxAttention(
      tf.tensor([[[[1, 0]]]]),
      tf.tensor([
        [
          [
            [2, 0],
            [1.5, 0],
            [-4, 0],
          ],
        ],
      ]),
      v,
      { alpha: 2, scale: 1 },
    );
    const e15 = flashEntmaxAttention(tf.tensor([[[[1]]]]), tf.tensor([[[[2], [1], [-1]]]]), v, {
      alpha: 1.5,
      scale: 1,
    });
    expectClose(await spm.data(), [0.75 * 10 + 0.25 * -2], 2e-6);
    // entmax15 of [2, 1, −1]: p = [z/2 − τ]₊² with (1 − τ)² + (½ − τ)² = 1 on {2, 1}: τ = (3 − √7)/4
    const tau = (3 - Math.sqrt(7)) / 4;
    const [p1, p2] = [(1 - tau) ** 2, (0.5 - tau) ** 2];
    expect(p1).toBeCloseTo(0.8307, 4);
    expectClose(await e15.data(), [p1 * 10 + p2 * -2], 5e-6);
    tf.dispose([v, spm, e15]);
  });

  it('equals a float64 reference (entmaxRef per row), causal and padded, α per head', async () => {
    const c: Case = { B: 2, H: 2, T: 7, S: 80, D: 8, causal: true, padded: true, alpha: [1.25, 1.75] };
    const d = dataOf(c, 5);
    await selectBackend('webgpu');
    const out = tf.tidy(() =>
      flash(
        c,
        ...([d.q, d.k, d.v].map((x, i) => tf.tensor(x, d.shapes[i])) as [tf.Tensor, tf.Tensor, tf.Tensor]),
        alphaOf(c),
        tf.tensor2d(d.mask, [c.B, c.S]),
      ),
    );
    const got = await out.data();
    out.dispose();
    const want: number[] = [];
    const scale = 1 / Math.sqrt(c.D);
    for (let b = 0; b < c.B; b++)
      for (let h = 0; h < c.H; h++)
        for (let i = 0; i < c.T; i++) {
          const at = (x: number[], n: number, j: number, w: number) =>
            x.slice(((b * c.H + h) * n + j) * w, ((b * c.H + h) * n + j + 1) * w);
          const qi = at(d.q, c.T, i, c.D);
          const vis = Array.from({ length: c.S }, (_, j) => j <= i + c.S - c.T && d.mask[b * c.S + j] === 1);
          const z = vis.map((ok, j) =>
            ok ? scale * at(d.k, c.S, j, c.D).reduce((s, x, e) => s + x * qi[e], 0) : -Infinity,
          );
          const keep = z.map((x, j) => [x, j] as const).filter(([x]) => x > -Infinity);
          const p = entmaxRef(
            keep.map(([x]) => x),
            (c.alpha as number[])[h],
          );
          for (let e = 0; e < d.DV; e++)
            want.push(keep.reduce((s, [, j], m) => s + p[m] * at(d.v, c.S, j, d.DV)[e], 0));
        }
    expectClose(got, want, 2e-5, 1e-5);
  });

  for (const [name, c] of CASES) {
    const grads = typeof c.alpha === 'number' ? 'q, k, v' : 'q, k, v, α';
    it(`${name}: output and gradients (${grads}) equal the cpu composite`, async () => {
      const [gpu, cpu] = [await outputAndGrads(c, flash, 'webgpu'), await outputAndGrads(c, dense, 'cpu')];
      expect(gpu.length).toBe(typeof c.alpha === 'number' ? 4 : 5);
      gpu.forEach((g, i) => expectClose(g, cpu[i], 2e-5, 1e-4));
    }, 120_000);
  }

  it('finite differences in q and in α per head (webgpu)', async () => {
    const c: Case = { B: 1, H: 2, T: 6, S: 20, D: 4, causal: true, alpha: [1.3, 1.8] };
    const d = dataOf(c, 3);
    await selectBackend('webgpu');
    const [q, k, v] = [d.q, d.k, d.v].map((x, i) => tf.tensor(x, d.shapes[i]));
    const wT = tf.tensor(d.w, [c.B, c.H, c.T, c.D]);
    const alpha = tf.tensor(c.alpha as number[], [2, 1, 1]);
    const lossQ = (x: tf.Tensor) => tf.sum(tf.mul(flash(c, x, k, v, alpha), wT));
    const lossA = (x: tf.Tensor) => tf.sum(tf.mul(flash(c, q, k, v, x), wT));
    const [gq, ga] = tf.tidy(() => [tf.grad(lossQ)(q), tf.grad(lossA)(alpha)]);
    const dirQ = tf.tensor(randomRows(8, 1, q.size)[0], q.shape);
    const dirA = tf.tensor([0.6, -0.8], [2, 1, 1]);
    const [fdQ, fdA] = [await directional(lossQ, q, dirQ), await directional(lossA, alpha, dirA)];
    const dot = async (g: tf.Tensor, x: tf.Tensor) => (await tf.tidy(() => tf.sum(tf.mul(g, x))).data())[0];
    expect(Math.abs((await dot(gq, dirQ)) - fdQ)).toBeLessThan(2e-3 * (1 + Math.abs(fdQ)));
    expect(Math.abs((await dot(ga, dirA)) - fdA)).toBeLessThan(2e-3 * (1 + Math.abs(fdA)));
    tf.dispose([q, k, v, wT, alpha, gq, ga, dirQ, dirA]);
  });

  it('clustered keys: most tiles skipped, the dense numbers kept (forward and gradients)', async () => {
    // 8 tiles of 64 keys; tile t's keys sit near centre u_t, and query i of head 0 points at tile i mod 8:
    // its scores in other tiles are far below its own, so a sparse row's threshold rules them out.
    const c: Case = { B: 1, H: 2, T: 16, S: 8 * TILE, D: 8, alpha: [1.5, 2], scale: 1 };
    const centre = (t: number) => Array.from({ length: c.D }, (_, e) => (e === t ? 4 : 0));
    const noise = randomRows(41, 1, c.H * c.S * c.D, 0.05)[0];
    const k = Array.from(
      { length: c.H * c.S * c.D },
      (_, x) => centre(Math.floor(((x / c.D) % c.S) / TILE))[x % c.D] + noise[x],
    );
    const q = Array.from({ length: c.H * c.T * c.D }, (_, x) => centre((Math.floor(x / c.D) % c.T) % 8)[x % c.D]);
    const run = () => {
      const [qT, kT] = [tf.tensor(q, [1, c.H, c.T, c.D]), tf.tensor(k, [1, c.H, c.S, c.D])];
      const vT = tf.tensor(randomRows(42, 1, c.H * c.S * c.D)[0], [1, c.H, c.S, c.D]);
      return { qT, kT, vT };
    };
    await selectBackend('webgpu');
    const { qT, kT, vT } = run();
    const counts = flashSkipCounts(qT, kT, vT, { alpha: alphaOf(c), scale: 1 });
    const [kept, visible] = [await counts.kept.data(), await counts.visible.data()];
    expect(Array.from(visible)).toEqual([c.T * 8, c.T * 8]);
    expect(Array.from(kept)).toEqual([c.T, c.T]); // one tile per row
    tf.dispose([qT, kT, vT, counts.kept, counts.visible]);
    const grads = async (impl: Impl, backend: 'cpu' | 'webgpu') => {
      await selectBackend(backend);
      const out = tf.tidy(() => {
        const { qT: a, kT: b, vT: v } = run();
        const al = alphaOf(c) as tf.Tensor;
        const f = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor, w: tf.Tensor) => tf.sum(tf.square(impl(c, x, y, z, w)));
        return [impl(c, a, b, v, al), ...tf.grads(f)([a, b, v, al])];
      });
      const r = await Promise.all(out.map(async (t) => Array.from(await t.data())));
      tf.dispose(out);
      return r;
    };
    const [gpu, cpu] = [await grads(flash, 'webgpu'), await grads(dense, 'cpu')];
    gpu.forEach((g, i) => expectClose(g, cpu[i], 2e-5, 1e-4));
  });

  it('large cancelling scores (~1e3, differing by 1e-2): the skip test leaves the dense output', async () => {
    // every key ≈ 1000·e₀ plus small differences: scores ~ 1e3 whose spread is ~1 around the max
    const c: Case = { B: 1, H: 1, T: 4, S: 3 * TILE, D: 4, alpha: 1.5, scale: 1 };
    const small = randomRows(51, 1, c.S * c.D, 0.01)[0];
    const k = small.map((x, i) => (i % c.D === 0 ? 1000 + 100 * x : x));
    const q = [1, 0.5, -0.5, 0.2, 1, -1, 0, 0, 1, 0, 1, 0, 1, 0.3, 0.3, 0.3];
    const v = randomRows(52, 1, c.S * c.D)[0];
    const on = async (impl: Impl, backend: 'cpu' | 'webgpu') => {
      await selectBackend(backend);
      const t = tf.tidy(() =>
        impl(c, tf.tensor(q, [1, 1, 4, 4]), tf.tensor(k, [1, 1, c.S, 4]), tf.tensor(v, [1, 1, c.S, 4]), 1.5),
      );
      const r = Array.from(await t.data());
      t.dispose();
      return r;
    };
    expectClose(await on(flash, 'webgpu'), await on(dense, 'cpu'), 1e-3, 1e-3);
  });

  it('NaN in a query gives NaN in its row only; NaN in a key, NaN in every row that sees it', async () => {
    await selectBackend('webgpu');
    const [B, H, T, S, D] = [1, 1, 3, 5, 2];
    const base = randomRows(61, 1, T * D)[0];
    const keys = randomRows(62, 1, S * D)[0];
    const v = tf.tensor(randomRows(63, 1, S * D)[0], [B, H, S, D]);
    const qNaN = base.map((x, i) => (i === 2 ? NaN : x)); // row 1
    const o1 = await flashEntmaxAttention(tf.tensor(qNaN, [B, H, T, D]), tf.tensor(keys, [B, H, S, D]), v).data();
    expect(Array.from(o1).map(Number.isNaN)).toEqual([false, false, true, true, false, false]);
    const kNaN = keys.map((x, i) => (i === 2 * D ? NaN : x)); // key 2: causal offset 1, rows 1 and 2 see it
    const o2 = await flashEntmaxAttention(tf.tensor(base, [B, H, T, D]), tf.tensor(kNaN, [B, H, S, D]), v, {
      causal: true,
      queryOffset: 1,
    }).data();
    expect(Array.from(o2).map(Number.isNaN)).toEqual([false, false, true, true, true, true]);
    v.dispose();
  });

  it('a batch row whose keys are all masked gives zeros and zero gradients', async () => {
    await selectBackend('webgpu');
    const [B, H, T, S, D] = [2, 1, 2, 3, 2];
    const [q, k, v] = [T, S, S].map((n, i) => tf.tensor(randomRows(70 + i, 1, B * H * n * D)[0], [B, H, n, D]));
    const mask = tf.tensor2d([
      [1, 1, 0],
      [0, 0, 0],
    ]);
    const f = (x: tf.Tensor) => tf.sum(tf.square(flashEntmaxAttention(x, k, v, { keyMask: mask })));
    const out = await flashEntmaxAttention(q, k, v, { keyMask: mask }).data();
    const g = await tf.grad(f)(q).data();
    expect(Array.from(out.slice(4))).toEqual([0, 0, 0, 0]);
    expect(Array.from(g.slice(4))).toEqual([0, 0, 0, 0]);
    expect(Array.from(out.slice(0, 4)).every(Number.isFinite)).toBe(true);
    tf.dispose([q, k, v, mask]);
  });

  it('bad arguments get clear errors; off webgpu it says where to go; no leaks', async () => {
    await selectBackend('webgpu');
    const [q, k, v] = [tf.zeros([1, 2, 3, 4]), tf.zeros([1, 2, 5, 4]), tf.zeros([1, 2, 5, 4])];
    expect(() => flashEntmaxAttention(q, k, tf.zeros([1, 2, 4, 4]))).toThrow(/same number of keys S/);
    expect(() => flashEntmaxAttention(q, tf.zeros([1, 3, 5, 4]), v)).toThrow(/batch and head sizes differ/);
    expect(() => flashEntmaxAttention(q, k, v, { alpha: 0.5 })).toThrow(/alpha must be ≥ 1/);
    expect(() => flashEntmaxAttention(q, k, v, { alpha: NaN })).toThrow(/alpha must be finite/);
    expect(() => flashEntmaxAttention(q, k, v, { alpha: tf.ones([3, 1, 1]) })).toThrow(/does not broadcast/);
    expect(() => flashEntmaxAttention(q, k, v, { keyMask: tf.ones([1, 4]) })).toThrow(/keyMask must be \[B, S\]/);
    expect(() => flashEntmaxAttention(tf.zeros([2, 3]), k, v)).toThrow(/expected q \[B, H, T, d\]/);
    expect(() => flashEntmaxAttention(q, k, v, { nIter: 0 })).toThrow(/nIter must be a positive integer/);
    const alpha = tf.tensor([1.4, 1.9], [2, 1, 1]);
    await expectNoLeak(() => {
      const f = (x: tf.Tensor, a: tf.Tensor) => tf.sum(flashEntmaxAttention(x, k, v, { alpha: a, causal: true }));
      tf.dispose([flashEntmaxAttention(q, k, v), ...tf.grads(f)([q, alpha])]);
    });
    await selectBackend('cpu');
    expect(() => flashEntmaxAttention(tf.zeros([1, 1, 2, 2]), tf.zeros([1, 1, 2, 2]), tf.zeros([1, 1, 2, 2]))).toThrow(
      /no kernel for backend 'cpu' \(webgpu only\); use attention\(\) there/,
    );
  });
});
