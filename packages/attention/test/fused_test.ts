/**
 * The fused α-entmax kernels, through their CPU mirror (the `cpu` kernel of entmaxFused, which takes
 * the WGSL's steps): series helpers against Math, hand-worked values and edge cases, agreement with
 * the float64 reference, with entmaxBisect and with the sort-based maps, the solver's convergence
 * within FUSED_NITER, gradients in x and α against entmaxBisect, float64 and finite differences,
 * leaks, the webgpu dispatch of entmax() (on a cpu clone named 'webgpu'), and the WGSL program
 * objects. The WGSL itself runs in bench/gpu_check.ts on a GPU machine.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  entmax,
  entmax15,
  entmaxBisect,
  entmaxFused,
  fusedEntmaxAvailable,
  registerFusedEntmax,
  softmax,
  sparsemax,
  unregisterFusedEntmax,
} from '../src/index.js';
import { selectBackend } from '@aes/node';
import { entmaxForwardMirror, expm1xF, FUSED_NITER, lnF, log1pF, phiF } from '../src/fused/entmax_mirror.js';
import { entmaxBackwardMirror } from '../src/fused/entmax_mirror.js';
import {
  gradProgram,
  gradRowProgram,
  lit,
  probsProgram,
  rowProgram,
  type EntmaxProgram,
} from '../src/fused/entmax_wgsl.js';
import { directional, expectClose, expectNoLeak, randomRows, read, values } from './helpers.js';
import {
  dot,
  entmax15Ref,
  entmaxAlphaDerivRef,
  entmaxJvpRef,
  entmaxRef,
  mulberry32,
  randn,
  softmaxRef,
  sparsemaxRef,
} from './reference.js';

const fused = (x: number[][], a: number | tf.Tensor) =>
  tf.tidy(() => entmaxFused(tf.tensor2d(x), a).arraySync() as number[][]);
const mirror = (row: number[], a: number, nIter = FUSED_NITER) =>
  entmaxForwardMirror(Float32Array.from(row), Float32Array.of(a), 1, row.length, nIter).p;
const maxErr = (p: ArrayLike<number>, ref: number[]) => ref.reduce((e, r, i) => Math.max(e, Math.abs(p[i] - r)), 0);

describe('fused entmax mirror: series helpers', () => {
  it('ln, log1p, expm1(y)/y and φ match Math to float32 precision', () => {
    for (const w of [
      1e-30, 3e-8, 0.1, 0.5, 0.70710677, 0.70710678, 0.999, 1, 1.0001, 1.41421, 1.5, 2, 3.7, 8192, 3e38,
    ]) {
      expect(Math.abs(lnF(w) - Math.log(w))).toBeLessThanOrEqual(2.5e-7 * Math.max(1, Math.abs(Math.log(w))));
    }
    for (const t of [-0.9999999, -0.5, -0.3, -0.29, -0.2, -1e-3, -1e-7, 0, 1e-6, 0.1, 0.4, 0.41, 2, 100]) {
      const ref = Math.log1p(t);
      expect(Math.abs(log1pF(t) - ref)).toBeLessThanOrEqual(2.5e-7 * Math.abs(ref) + 1e-45);
      const phi = ref - t / (1 + t);
      expect(Math.abs(phiF(t, Math.fround(1 + t)) - phi)).toBeLessThanOrEqual(2e-6 * phi + 1e-45);
    }
    for (const y of [-27, -1, -0.31, -0.3, -0.1, -1e-6, 0, 1e-5, 0.29, 0.5, 3]) {
      expect(Math.abs(expm1xF(y) - (y === 0 ? 1 : Math.expm1(y) / y))).toBeLessThanOrEqual(
        3e-7 * Math.abs(Math.expm1(y) / y || 1),
      );
    }
  });
});

describe('entmaxFused [cpu]', () => {
  beforeAll(async () => { await selectBackend('cpu'); });

  it('hand-worked values; α = 1 is softmax', () => {
    // [2, 1, −1] at 1.5: p = [z/2 − τ]², (1 − τ)² + (½ − τ)² = 1, τ = (3 − √7)/4. (Not [0.75, 0.25, 0],
    // which sparsemax gives for [0.5, 0].)
    expectClose(fused([[2, 1, -1]], 1.5)[0], [(4 + Math.sqrt(7)) / 8, (4 - Math.sqrt(7)) / 8, 0], 1e-7);
    expectClose(fused([[0.5, 0]], 2)[0], [0.75, 0.25], 1e-7);
    expectClose(fused([[2, 2, 0]], 2)[0], [0.5, 0.5, 0], 1e-7);
    expectClose(fused([[0.3, 0]], 2)[0], [0.65, 0.35], 1e-7);
    const tau = (-1 - Math.sqrt(7)) / 4;                                      // entmax15([1, 0]), maps_test
    expectClose(fused([[1, 0]], 1.5)[0], [tau ** 2, (tau + 0.5) ** 2], 1e-7);
    expect(fused([[Math.log(3), 0]], 1)).toEqual(tf.tidy(() => softmax(tf.tensor2d([[Math.log(3), 0]])).arraySync()));
    expectClose(fused([[1, -2, 0.5, 3]], tf.scalar(1 + 1e-9))[0], softmaxRef([1, -2, 0.5, 3]), 1e-6);
    expectClose(fused([[1, -2, 0.5, 3]], 1.0001)[0], softmaxRef([1, -2, 0.5, 3]), 1e-4);
  });

  it('edge cases: length 1, ties, masked entries and rows, NaN/±∞ rows, huge and tiny scores, huge α', () => {
    for (const a of [1.2, 1.5, 2, 3]) {
      expect(fused([[-7]], a)).toEqual([[1]]);
      expectClose(fused([[3, 3, 3, 3]], a)[0], [0.25, 0.25, 0.25, 0.25], 1e-7);
      const got = fused(
        [
          [0.4, -Infinity, 1.3, -0.2, -Infinity, 0.9],
          [-Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity],
          [1, NaN, 0, 0, 0, 0],
          [1, Infinity, 0, 0, 0, 0],
          [Infinity, -Infinity, 0, 0, 0, 0],
          [1e30, -1e30, 0, 5, 1e30, 2],
        ],
        a,
      );
      const trunc = entmaxRef([0.4, 1.3, -0.2, 0.9], a);
      expectClose(got[0], [trunc[0], 0, trunc[1], trunc[2], 0, trunc[3]], 1e-6);
      expect(got[1]).toEqual([0, 0, 0, 0, 0, 0]);
      for (const r of [2, 3, 4]) expect(got[r].every(Number.isNaN)).toBe(true);
      expectClose(got[5], [0.5, 0, 0, 0, 0.5, 0], 1e-7);
    }
    expectClose(fused([[2e-7, 1e-7, 0]], 1.5)[0], [1 / 3, 1 / 3, 1 / 3], 1e-6);
    expectClose(fused([[1000, 999, 998.5]], 1.5)[0], entmax15Ref([1000, 999, 998.5]), 1e-5);
    expectClose(fused([[1, 1, 0.9, 1, -3]], 40)[0], [1 / 3, 1 / 3, 0, 1 / 3, 0], 1e-6);   // ties share as α → ∞
  });

  it('per-row, per-head and below-the-floor tensor α', () => {
    const x = randomRows(5, 4, 9, 1.5);
    const alphas = [1.05, 1.5, 2, 2.5];
    fused(x, tf.tensor2d(alphas, [4, 1])).forEach((r, i) => expectClose(r, entmaxRef(x[i], alphas[i]), 1e-6));
    const heads = tf.tidy(
      () =>
        entmaxFused(
          tf.tensor4d(x.flat(), [1, 2, 2, 9]),
          tf.tensor4d([1.3, 3], [1, 2, 1, 1]),
        ).arraySync() as number[][][][],
    );
    heads[0].flat().forEach((r, i) => expectClose(r, entmaxRef(x[i], i < 2 ? 1.3 : 3), 1e-6));
    expectClose(fused(x, tf.scalar(0.5))[0], softmaxRef(x[0]), 1e-6);               // raised to 1 + 1e-6
  });

  it('bad input: the same clear errors as entmaxBisect', () => {
    const x = tf.tensor2d([[1, 2]]);
    expect(() => entmaxFused(tf.tensor2d([[1, 2]], undefined, 'int32'), 1.5)).toThrow(/float32/);
    expect(() => entmaxFused(x, 0.5)).toThrow(/alpha must be ≥ 1/);
    expect(() => entmaxFused(x, NaN)).toThrow(/finite/);
    expect(() => entmaxFused(x, tf.ones([3, 1]))).toThrow(/does not broadcast/);
    expect(() => entmaxFused(x, tf.ones([1, 1], 'int32'))).toThrow(/float32/);
    expect(() => entmaxFused(x, 1.5, { nIter: 0 })).toThrow(/nIter/);
    x.dispose();
  });

  for (const alpha of [1.01, 1.3, 1.5, 2, 3]) {
    it(`α = ${alpha}: equals the float64 reference, entmaxBisect and the sort-based map`, () => {
      for (const [n, scale] of [[2, 1], [7, 0.5], [100, 3], [1000, 1], [20, 1e-5]]) {
        const rows = randomRows(n * 3 + 5, 3, n, scale);
        const got = fused(rows, alpha);
        const bis = tf.tidy(() => entmaxBisect(tf.tensor2d(rows), alpha).arraySync() as number[][]);
        const sorted =
          alpha === 1.5 || alpha === 2
            ? tf.tidy(() => (alpha === 2 ? sparsemax : entmax15)(tf.tensor2d(rows)).arraySync() as number[][])
            : bis;
        const ref = alpha === 2 ? sparsemaxRef : alpha === 1.5 ? entmax15Ref : (z: number[]) => entmaxRef(z, alpha);
        rows.forEach((r, i) => {
          expectClose(got[i], ref(r), 1e-6);
          expectClose(got[i], bis[i], 2e-6);
          expectClose(got[i], sorted[i], 2e-6);
        });
      }
    });
  }

  it('no leaked tensors (number and tensor α, forward and gradients)', async () => {
    const x = tf.tensor2d(randomRows(3, 4, 16, 2));
    const a = tf.tensor2d([1.2, 1.5, 2, 2.7], [4, 1]);
    await expectNoLeak(() => tf.dispose(tf.grad((z: tf.Tensor) => tf.sum(tf.square(entmaxFused(z, 1.7))))(x)));
    await expectNoLeak(() =>
      tf.dispose(tf.grads((z: tf.Tensor, al: tf.Tensor) => tf.sum(tf.square(entmaxFused(z, al))))([x, a])),
    );
    await expectNoLeak(() => tf.dispose(entmaxFused(x, a)));
    tf.dispose([x, a]);
  });

  it('a backend without the kernels gets a clear error; fusedEntmaxAvailable says so', () => {
    expect(fusedEntmaxAvailable()).toBe(true);
    unregisterFusedEntmax('cpu');
    try {
      expect(fusedEntmaxAvailable()).toBe(false);
      expect(() => entmaxFused(tf.tensor2d([[1, 2]]), 1.5)).toThrow(/no fused kernel for backend 'cpu'/);
    } finally {
      registerFusedEntmax(['cpu']);
    }
    expect(fusedEntmaxAvailable()).toBe(true);
  });
});

describe('fused entmax mirror: rows up to n = 8192 (no tfjs)', () => {
  // Float32 precision is the error of the converged solver (40 steps); FUSED_NITER − 2 must reach it.
  for (const alpha of [1.01, 1.3, 1.5, 1.9, 2, 2.5, 3, 4]) {
    it(`α = ${alpha}: float64 reference at n = 4096 and 8192, converged within FUSED_NITER − 2 steps`, () => {
      const rng = mulberry32(Math.round(alpha * 100));
      for (const [n, scale] of [[4096, 1], [8192, 3], [3000, 0.2], [10000, 1]]) {
        const row = Array.from({ length: n }, (_, i) =>
          Math.fround(i % 7 === 0 && scale === 0.2 ? 0.5 : scale * randn(rng)),
        );
        const ref = entmaxRef(row, alpha, 80);
        const floor = maxErr(mirror(row, alpha, 40), ref);
        expect(floor).toBeLessThan(alpha > 3 ? 1e-5 : 2e-6);
        expect(maxErr(mirror(row, alpha, FUSED_NITER - 2), ref)).toBeLessThanOrEqual(Math.max(2 * floor, 2e-7));
        expect(maxErr(mirror(row, alpha), ref)).toBeLessThanOrEqual(Math.max(2 * floor, 2e-7));
      }
    });
  }

  it('few steps are not enough: the iteration count matters (the test can fail)', () => {
    const row = randomRows(77, 1, 4096, 1)[0].map(Math.fround);
    for (const alpha of [1.99, 4])
      expect(maxErr(mirror(row, alpha, 3), entmaxRef(row, alpha, 80))).toBeGreaterThan(1e-4);
  });
});

describe('entmaxFused gradients [cpu]', () => {
  beforeAll(async () => { await selectBackend('cpu'); });
  const grads = async (map: (z: tf.Tensor, a: tf.Tensor) => tf.Tensor, x: number[][], u: number[][], a: tf.Tensor) => {
    const gs = tf.tidy(() =>
      tf.grads((z: tf.Tensor, al: tf.Tensor) => tf.sum(tf.mul(tf.tensor2d(u), map(z, al))))([tf.tensor2d(x), a]),
    );
    const out = await Promise.all(gs.map(values));
    tf.dispose(gs);
    return out;
  };

  for (const alpha of [1.01, 1.3, 1.5, 2, 3]) {
    it(`α = ${alpha}: x-gradient equals entmaxBisect's, the float64 Jacobian and finite differences`, async () => {
      const x = randomRows(41, 5, 9, 1.5);
      const u = randomRows(42, 5, 9, 1);
      const v = randomRows(43, 5, 9, 1);
      const [xt, ut, vt] = [tf.tensor2d(x), tf.tensor2d(u), tf.tensor2d(v)];
      const loss = (f: (z: tf.Tensor) => tf.Tensor) => (z: tf.Tensor) => tf.sum(tf.mul(ut, f(z)));
      const g = tf.grad(loss((z) => entmaxFused(z, alpha)))(xt);
      expectClose(await values(g), await values(tf.grad(loss((z) => entmaxBisect(z, alpha)))(xt)), 2e-6, 1e-4);
      const gRows = g.arraySync() as number[][];
      fused(x, alpha).forEach((p, i) => expectClose(gRows[i], entmaxJvpRef(p, alpha, u[i]), 2e-5, 1e-3));
      // Finite differences need supports that do not change within ±1e-3·v.
      const support = (sign: number) =>
        x.map((r, i) =>
          entmaxRef(
            r.map((z, j) => z + sign * 1e-3 * v[i][j]),
            alpha,
          ).map((p) => p > 0),
        );
      expect(support(1)).toEqual(support(-1));
      const fd = await directional(loss((z) => entmaxFused(z, alpha)), xt, vt);
      expect(Math.abs(dot(await values(g), await values(vt)) - fd)).toBeLessThan(1e-2 * (1 + Math.abs(fd)));
      tf.dispose([xt, ut, vt, g]);
    });
  }

  it('α-gradient (scalar, per row, per head) equals entmaxBisect\'s and float64 differences; x-gradient too',
    async () => {
    const x = randomRows(31, 4, 8, 1.5);
    const u = randomRows(32, 4, 8, 1);
    const alphas = [1.05, 1.4, 1.8, 2.6];
    const [gx, ga] = await grads(entmaxFused, x, u, tf.tensor2d(alphas, [4, 1]));
    const [bx, ba] = await grads(entmaxBisect, x, u, tf.tensor2d(alphas, [4, 1]));
    expectClose(gx, bx, 2e-6, 1e-4);
    expectClose(ga, ba, 2e-5, 1e-3);
    ga.forEach((g, i) =>
      expect(Math.abs(g - dot(u[i], entmaxAlphaDerivRef(x[i], alphas[i])))).toBeLessThan(2e-5 + 1e-4 * Math.abs(g)),
    );
    const [, gs] = await grads(entmaxFused, x, u, tf.scalar(1.3));
    const ref = x.reduce((s, r, i) => s + dot(u[i], entmaxAlphaDerivRef(r, 1.3)), 0);
    expect(Math.abs(gs[0] - ref)).toBeLessThan(1e-5 + 1e-4 * Math.abs(ref));
    const head = (
      await read<number[][][][]>(() =>
        tf.grad((a: tf.Tensor) =>
          tf.sum(tf.mul(tf.tensor4d(u.flat(), [1, 2, 2, 8]), entmaxFused(tf.tensor4d(x.flat(), [1, 2, 2, 8]), a))),
        )(tf.tensor4d([1.3, 1.9], [1, 2, 1, 1])),
      )
    ).flat(3);
    const hr = [0, 1, 2, 3].map((i) => dot(u[i], entmaxAlphaDerivRef(x[i], i < 2 ? 1.3 : 1.9)));
    expectClose(head, [hr[0] + hr[1], hr[2] + hr[3]], 3e-5, 1e-4);
  });

  it('α-gradient: finite differences in α, and the softmax limit as α → 1', async () => {
    const x = randomRows(51, 3, 7, 1.5);
    const u = randomRows(52, 3, 7, 1);
    for (const alpha of [1.1, 1.6, 2.4]) {
      const f = (a: tf.Tensor) => tf.sum(tf.mul(tf.tensor2d(u), entmaxFused(tf.tensor2d(x), a)));
      const g = await read<number>(() => tf.grad(f)(tf.scalar(alpha)));
      const fd = await directional(f, tf.scalar(alpha), tf.scalar(1));
      expect(Math.abs(g - fd)).toBeLessThan(3e-3 + 2e-2 * Math.abs(g));
    }
    const [, g] = await grads(entmaxFused, x, u, tf.fill([3, 1], 1 + 1e-5));
    x.forEach((r, i) => {
      const p = softmaxRef(r);
      const l = p.map(Math.log);
      const s2 = dot(p, l.map((w) => w * w));
      const limit = dot(u[i], p.map((pi, j) => (pi * (s2 - l[j] ** 2)) / 2));
      expect(Math.abs(g[i] - limit)).toBeLessThan(1e-4 * (1 + Math.abs(limit)));
    });
  });

  it('masked entries, masked rows and one-entry supports get 0; NaN rows NaN', async () => {
    const x = tf.tensor2d([
      [0.3, -Infinity, 1.2, 0.1],
      [-Infinity, -Infinity, -Infinity, -Infinity],
      [5, 0, -1, -2],
      [1, NaN, 0, 0],
    ]);
    const [gx, ga] = await Promise.all(
      tf
        .grads((z: tf.Tensor, a: tf.Tensor) => tf.sum(tf.mul(entmaxFused(z, a), tf.tensor1d([1, 2, 3, 4]))))([
          x,
          tf.fill([4, 1], 1.7),
        ])
        .map(values),
    );
    expect(gx[1]).toBe(0);
    expect(gx.slice(4, 12)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(gx.slice(0, 12).every(Number.isFinite)).toBe(true);
    expect(gx.slice(12).every(Number.isNaN)).toBe(true);
    expect(ga.slice(1, 3)).toEqual([0, 0]);
    expect(Number.isNaN(ga[3])).toBe(true);
  });
});

describe('entmax() on webgpu takes the fused kernels (a cpu clone named webgpu runs the mirror)', () => {
  beforeAll(async () => {
    const Cpu = tf.findBackend('cpu')!.constructor as new () => tf.KernelBackend;
    // helpers.ts registers the real webgpu backend where an adapter exists: the clone takes its name.
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
    tf.registerBackend('webgpu', () => new Cpu(), -1);
    unregisterFusedEntmax('webgpu');                             // the WGSL kernels, replaced by the cpu ones
    for (const k of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...k, backendName: 'webgpu' });
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
    tf.removeBackend('webgpu');
    for (const k of tf.getKernelsForBackend('webgpu')) tf.unregisterKernel(k.kernelName, 'webgpu');
    registerFusedEntmax(['webgpu']);
  });

  it('every α ≠ 1 (number or tensor) gives entmaxFused\'s result bit for bit; α = 1 softmax', async () => {
    const x = randomRows(61, 3, 40, 2);
    const cases: Array<number | number[]> = [1, 1.3, 1.5, 2, 2.5, [1.2, 1.5, 3]];
    const run = (f: (z: tf.Tensor, a: number | tf.Tensor) => tf.Tensor) => Promise.all(cases.map((a) =>
      read<number[][]>(() => f(tf.tensor2d(x), typeof a === 'number' ? a : tf.tensor2d(a, [3, 1])))));
    await tf.setBackend('cpu');
    const want = await run((z, a) => (a === 1 ? softmax(z) : entmaxFused(z, a)));
    const composite = await run(entmax);
    await tf.setBackend('webgpu');
    expect(await run(entmax)).toEqual(want);
    expect(composite[2]).not.toEqual(want[2]);                   // on cpu α = 1.5 stays the sort-based entmax15
  });
});

describe('WGSL program objects', () => {
  it('one workgroup per row for the row programs, flat elementwise programs; keys name the variant', () => {
    const r = rowProgram(32768, 4096, 16);
    expect([r.workgroupSize, r.dispatch, r.outputShape, r.variableNames]).toEqual([
      [256, 1, 1],
      [32768, 1, 1],
      [32768, 4],
      ['scores', 'alphas'],
    ]);
    expect(r.shaderKey).toBe('aesEntmaxRow_256_16_true_16');
    expect(rowProgram(4, 20000, 16).shaderKey).toBe('aesEntmaxRow_256_79_false_16');
    expect(rowProgram(4, 100, 16).workgroupSize).toEqual([64, 1, 1]);
    const p = probsProgram(10, 100);
    expect([p.dispatch, p.size]).toEqual([[16, 1, 1], true]);
    expect(gradRowProgram(3, 1500, true).variableNames).toEqual(['scores', 'alphas', 'rowStats', 'dy']);
    expect(gradProgram(3, 7).variableNames).toEqual(['scores', 'alphas', 'rowStats', 'dy', 'rowGrad']);
    expect([lit(1), lit(1 / 3), lit(-1e30), lit(-3.4028234663852886e38)]).toEqual([
      '1.000000000',
      '0.3333333433',
      '-1.000000015e+30',
      '-3.402823466e+38',
    ]);
    for (const v of [1 / 3, 0.1, Math.SQRT2, 1e-30, 3.4028234663852886e38])
      expect(Math.fround(Number(lit(v)))).toBe(Math.fround(v));
  });

  it('barriers only in uniform control flow: no return/break, loops with constant bounds around reductions', () => {
    for (const prog of [
      rowProgram(8, 300, 16),
      rowProgram(8, 9000, 16),
      gradRowProgram(8, 300, true),
      gradRowProgram(8, 300, false),
    ]) {
      const code = prog.getUserCode();
      const main = code.slice(code.indexOf('fn main'));
      expect(main).not.toMatch(/\breturn\b|\bbreak\b|\bcontinue\b/);
      expect(code.split('{').length).toBe(code.split('}').length);
      expect(main).toMatch(/for \(var it = 0; it < 16; it\+\+\)|entSum\(a1, tid\)/);
    }
  });
});

/**
 * The WGSL on the CPU: the full shader text tfjs-backend-webgpu compiles (its own makeShader, reached
 * through runWebGPUProgram on a stand-in backend whose device keeps the code) is parsed and run by
 * wgsl_reflect's interpreter. Its lockstep scheduler (detectRaces) shares user-function arguments
 * between invocations (wgsl_reflect 1.6), so the row programs run here with one thread per row
 * (sequential dispatch is exact then; the tree reduction is checked on its own under lockstep).
 */
describe('WGSL run by wgsl_reflect (CPU interpreter)', () => {
  type Wr = typeof import('wgsl_reflect');
  let wr: Wr;
  let runProgram: (p: EntmaxProgram, inputs: Float32Array[], shapes: number[][]) => string;
  beforeAll(async () => {
    wr = (await import('wgsl_reflect/wgsl_reflect.module.js' as string)) as Wr;
    const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
    runProgram = (p, inputs, shapes) => {
      let code = '';
      const stand = {
        device: {
          limits: { maxComputeWorkgroupsPerDimension: 65535 },
          createShaderModule: (d: { code: string }) => {
            code = d.code;
            return {};
          },
          createComputePipeline: () => ({}),
        },
        pipelineCache: {},
        uploadToGPU: () => undefined,
        recordAndSubmit: () => undefined,
        tensorMap: { get: () => ({ dtype: 'float32' }) },
        makeTensorInfo: (shape: number[], dtype: string) => ({ shape, dtype, dataId: {} }),
      };
      const run = (WebGPUBackend.prototype as unknown as { runWebGPUProgram: (...a: unknown[]) => unknown })
        .runWebGPUProgram;
      run.call(stand, p, shapes.map((shape) => ({ shape, dtype: 'float32', dataId: {} })), 'float32');
      return code;
    };
  });

  /** Executes a program on host arrays: uniforms laid out by the reflected struct, as tfjs fills them. */
  function exec(p: EntmaxProgram, inputs: Float32Array[], shapes: number[][]): Float32Array {
    const code = runProgram(p, inputs, shapes);
    const u = new wr.WgslReflect(code).uniforms[0];
    const view = new DataView(new ArrayBuffer(u.size + 16));
    const strides = (s: number[]) => s.slice(1).map((_, i) => s.slice(i + 1).reduce((a, b) => a * b, 1));
    const values: Record<string, number[]> = {
      outShape: p.outputShape,
      outShapeStrides: strides(p.outputShape),
      size: [p.outputShape.reduce((a, b) => a * b)],
    };
    p.variableNames.forEach((v, i) =>
      Object.assign(values, { [`${v}Shape`]: shapes[i], [`${v}ShapeStrides`]: strides(shapes[i]) }),
    );
    for (const m of u.members!) {
      if (m.name === 'NAN' || m.name === 'INFINITY') view.setFloat32(m.offset, m.name === 'NAN' ? NaN : Infinity, true);
      else (values[m.name] ?? []).forEach((v, i) => view.setInt32(m.offset + 4 * i, v, true));
    }
    const out = new Float32Array(p.outputShape.reduce((a, b) => a * b));
    const group: Record<number, unknown> = { 0: out, [inputs.length + 1]: new Uint8Array(view.buffer) };
    inputs.forEach((t, i) => (group[i + 1] = t));
    new wr.WgslExec(new wr.WgslParser().parse(code)).dispatchWorkgroups('_start', p.dispatch, { 0: group });
    return out;
  }

  it('every program parses as tfjs would compile it, with the expected bindings', () => {
    for (const [p, shapes] of [
      [rowProgram(64, 4096, 16), [[64, 4096], [64]]],
      [rowProgram(2, 9000, 16), [[2, 9000], [1]]],
      [probsProgram(8, 300), [[8, 300], [8], [8, 4]]],
      [gradRowProgram(8, 300, true), [[8, 300], [8], [8, 4], [8, 300]]],
      [gradProgram(8, 300), [[8, 300], [8], [8, 4], [8, 300], [8, 2]]],
    ] as Array<[EntmaxProgram, number[][]]>) {
      const refl = new wr.WgslReflect(runProgram(p, [], shapes));
      expect(refl.entry.compute.map((f) => f.name)).toEqual(['_start']);
      expect(refl.storage.map((s) => s.name)).toEqual(['result', ...p.variableNames]);
    }
  });

  it('naga (wgpu\'s shader validator, compiled to wasm) accepts every program: parse, types, bindings', async () => {
    const naga = await import('naga-wasm');
    const check = (code: string) => { naga.validate(naga.parseWgsl(code)); };
    const programs: Array<[EntmaxProgram, number[][]]> = [
      [rowProgram(64, 4096, 16), [[64, 4096], [64]]],
      [rowProgram(2, 9000, 16), [[2, 9000], [1]]],
      [probsProgram(8, 300), [[8, 300], [8], [8, 4]]],
      [gradRowProgram(8, 300, true), [[8, 300], [8], [8, 4], [8, 300]]],
      [gradRowProgram(8, 4096, false), [[8, 4096], [8], [8, 4], [8, 4096]]],
      [gradProgram(8, 300), [[8, 300], [8], [8, 4], [8, 300], [8, 2]]],
    ];
    for (const [p, shapes] of programs) check(runProgram(p, [], shapes));
    // The check can fail: a type error is rejected.
    const code = runProgram(rowProgram(8, 300, 16), [], [[8, 300], [8]]);
    expect(() => check(code.replace('let r = entRed[0];', 'let r : f32 = entRed[0];'))).toThrow(/f32/);
  });

  it('the workgroup tree reduction is race-free and exact under lockstep execution', () => {
    const user = rowProgram(1, 10, 16).getUserCode();
    const code = `${user.slice(0, user.indexOf('fn main'))}
@group(0) @binding(0) var<storage, read_write> out : array<f32>;
@compute @workgroup_size(64) fn k(@builtin(local_invocation_index) li : u32) {
  var v = vec4<f32>(0.0);
  for (var c = i32(li); c < 100; c += 64) { v = v + vec4<f32>(1.0, f32(c), f32(c * c), -f32(c)); }
  let s = entSum(v, li);
  let m = entMax(v, li);
  if (li == 0u) { out[0] = s.x; out[1] = s.y; out[2] = s.z; out[3] = m.y; out[4] = m.w; }
}`;
    const out = new Float32Array(5);
    const res = wr.detectRaces(code, 'k', [1, 1, 1], { 0: { 0: out } } as never);
    expect(res.races).toEqual([]);
    expect(Array.from(out)).toEqual([100, 4950, 328350, 134, -36]);   // max of the per-thread partial sums
  });

  it('forward and backward programs equal the mirror (same sums with one thread per row)', () => {
    const rows = 8;
    const alphas = Float32Array.of(1.3, 1.5, 2, 1.01, 2.6, 4, 2, 1.7);
    for (const n of [12, 40]) {                                        // 40 > MAX_CACHED: scores reread from memory
      const x = Float32Array.from(randomRows(91 + n, rows, n, 1.5).flat());
      x[3] = -Infinity;                                                // a masked entry
      x.fill(-Infinity, n, 2 * n);                                     // a fully masked row
      x[2 * n + 5] = NaN;                                              // an invalid row
      x.fill(0.25, 6 * n, 7 * n);                                      // ties: solved in w after the switch
      const dy = Float32Array.from(randomRows(92 + n, rows, n, 1).flat());
      const shapes = [[rows, n], [rows], [rows, 4], [rows, n], [rows, 2]];
      const stats = exec(rowProgram(rows, n, FUSED_NITER, 1), [x, alphas], shapes.slice(0, 2));
      const p = exec(probsProgram(rows, n), [x, alphas, stats], shapes.slice(0, 3));
      const want = entmaxForwardMirror(x, alphas, rows, n, FUSED_NITER, 1);
      expect(Array.from(stats.filter((_, i) => i % 4 === 3))).toEqual([0, 1, 2, 0, 3, 3, 3, 0]);
      expectClose(stats, want.stats, 1e-6, 1e-6);
      expectClose(p, want.p, 1e-6, 1e-6);
      const rowGrad = exec(gradRowProgram(rows, n, true, 1), [x, alphas, stats, dy], shapes.slice(0, 4));
      const dx = exec(gradProgram(rows, n), [x, alphas, stats, dy, rowGrad], shapes);
      const back = entmaxBackwardMirror(x, alphas, stats, dy, rows, n, true, 1);
      expectClose(rowGrad, back.rowGrad, 1e-6, 1e-5);
      expectClose(dx, back.dx, 1e-6, 1e-5);
      expectClose(p.subarray(0, n), entmaxRef(Array.from(x.subarray(0, n)), 1.3), 1e-6);
      expectClose(p.subarray(6 * n, 7 * n), new Array(n).fill(1 / n), 1e-7);
    }
  });
});
