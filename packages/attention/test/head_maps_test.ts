/**
 * The length- and entropy-aware maps of the literature (head_maps.ts), each with three oracles:
 * known values (where the map reduces to softmax / entmax15, or a uniform row), a float64
 * reference of the whole attention on causal rows (n = position + 1), and finite differences in q
 * and in every learned parameter.
 */
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { ADAPTIVE_TEMP_POLY, attention, type AttentionArgs, type NormaliserSpec } from '../src/index.js';
import { describeAllBackends, directional, expectClose, value, values } from './helpers.js';
import { entmaxRef, entropyRef, mulberry32, randn, softmaxRef } from './reference.js';

const [B, H, T, D] = [2, 2, 7, 4];
type Arr4 = number[][][][];
const rand4 = (seed: number, shape: number[], scale = 1): Arr4 => {
  const rng = mulberry32(seed);
  const make = (i: number): unknown =>
    i === shape.length ? scale * randn(rng) : Array.from({ length: shape[i] }, () => make(i + 1));
  return make(0) as Arr4;
};
const polyRef = (h: number) => ADAPTIVE_TEMP_POLY.reduce((acc, a) => acc * h + a, 0);

/** float64 attention output with row map p = f(scores of the row, n visible keys, head). */
function reference(q: Arr4, k: Arr4, v: Arr4, map: (row: number[], n: number, h: number) => number[]): number[] {
  return q.flatMap((qb, b) => qb.flatMap((qh, h) => qh.map((qi, i) => {
    const row = k[b][h].map((kj, j) => (j > i ? -Infinity : qi.reduce((a, x, c) => a + x * kj[c], 0) / Math.sqrt(D)));
    const p = map(row, i + 1, h);
    return v[b][h][0].map((_, c) => p.reduce((a, pj, j) => a + pj * v[b][h][j][c], 0));
  }))).flat();
}
const scaled = (row: number[], c: number) => row.map((x) => x * Math.max(c, 1e-3));

describeAllBackends('SSMax, ASEntmax, adaptive temperature', () => {
  const q = rand4(1, [B, H, T, D], 1.5), k = rand4(2, [B, H, T, D], 1.5), v = rand4(3, [B, H, T, D]);
  const run = (args: AttentionArgs, qq: tf.Tensor = tf.tensor4d(q)) =>
    attention(qq, tf.tensor4d(k), tf.tensor4d(v), { causal: true, ...args });
  const ss = [0.35, 0.8], beta = [0.4, 0.9], gamma = [0.1, -0.05];
  const params = () => ({
    ssmaxS: tf.tensor1d(ss),
    asentBeta: tf.tensor1d(beta),
    asentGamma: tf.tensor1d(gamma),
    alpha: tf.tensor1d([0.3, -0.4]),
  });
  const ln2 = (n: number) => Math.log(Math.max(n, 2));

  it('known values: SSMax, s = 1/ln n, is softmax; ASEntmax, β = 0, is entmax15; uniform rows stay uniform',
    async () => {
    const [qt, kt, vt] = [
      tf.randomNormal([1, 2, 5, 4], 0, 1, 'float32', 1),
      tf.randomNormal([1, 2, 9, 4], 0, 1, 'float32', 2),
      tf.randomNormal([1, 2, 9, 3], 0, 1, 'float32', 3),
    ];
    const s = tf.fill([2], 1 / Math.log(9)); // non-causal: n = 9 on every row
    const softmax = attention(qt, kt, vt, { normaliser: 'softmax' }).output;
    expectClose(
      await values(attention(qt, kt, vt, { normaliser: 'ssmax', params: { ssmaxS: s } }).output),
      await values(softmax),
      1e-5,
    );
    const zero = { asentBeta: tf.zeros([2]), asentGamma: tf.zeros([2]) };
    expectClose(
      await values(attention(qt, kt, vt, { normaliser: 'asentmax', params: zero }).output),
      await values(attention(qt, kt, vt, { normaliser: 'entmax15' }).output),
      1e-5,
    );
    const flat = tf.zeros([1, 2, 5, 4]); // all scores 0: uniform rows
    for (const spec of ['ssmax', 'asentmax', 'adaptive-temp'] as NormaliserSpec[]) {
      const out = await values(attention(flat, kt, vt, { normaliser: spec, params: params() }).output);
      expectClose(out, await values(attention(flat, kt, vt, { normaliser: 'softmax' }).output), 1e-5);
    }
    expect(polyRef(Math.log(4))).toBeCloseTo(1.7498, 3); // β of a uniform 4-key row
  });

  it('SSMax equals the float64 reference softmax(s_h · ln n · scores)', async () => {
    const got = await values(run({ normaliser: 'ssmax', params: params() }).output);
    expectClose(got, reference(q, k, v, (row, n, h) => softmaxRef(scaled(row, ss[h] * ln2(n)))), 2e-5);
  });

  it('ASEntmax equals the float64 reference entmax_α((δ + β_h (ln n)^γ_h) · scores), α fixed and learned', async () => {
    const c = (n: number, h: number) => 1 + beta[h] * Math.log(Math.max(n, 2)) ** gamma[h];
    expectClose(await values(run({ normaliser: 'asentmax', params: params() }).output),
      reference(q, k, v, (row, n, h) => entmaxRef(scaled(row, c(n, h)), 1.5)), 5e-5);
    const alphas = [0.3, -0.4].map((a) => 1 + 1 / (1 + Math.exp(-a)));
    const learned = run({ normaliser: { asentmax: { alpha: 'learned', delta: 0.5 } }, params: params() });
    expectClose(await values(learned.output),
      reference(q, k, v, (row, n, h) => entmaxRef(scaled(row, c(n, h) - 0.5), alphas[h])), 5e-5);
  });

  it('adaptive temperature equals the float64 reference: softmax(β · scores), β = max(1, poly(H)) if H > 0.5',
    async () => {
    const want = reference(q, k, v, (row) => {
      const H = entropyRef(softmaxRef(row));
      return softmaxRef(scaled(row, H > 0.5 ? Math.max(1, polyRef(H)) : 1));
    });
    expectClose(await values(run({ normaliser: 'adaptive-temp' }).output), want, 2e-5);
    // the data reaches both sides of the cut and a β above 1
    const Hs = q.flatMap((qb, b) =>
      qb.flatMap((qh, h) =>
        qh.map((qi, i) =>
          entropyRef(
            softmaxRef(
              k[b][h].map((kj, j) => (j > i ? -Infinity : qi.reduce((a, x, c) => a + x * kj[c], 0) / Math.sqrt(D))),
            ),
          ),
        ),
      ),
    );
    expect(Hs.some((x) => x <= 0.5) && Hs.some((x) => x > 0.5 && polyRef(x) > 1.05)).toBe(true);
  });

  it('finite differences in q and in every learned parameter', async () => {
    const w = tf.tensor4d(rand4(7, [B, H, T, D]));
    const cases: Array<[NormaliserSpec, string[]]> = [
      ['ssmax', ['ssmaxS']],
      [{ asentmax: { alpha: 'learned' } }, ['asentBeta', 'asentGamma', 'alpha']],
      ['adaptive-temp', []],
    ];
    for (const [spec, names] of cases) {
      const base = params();
      const loss = (qq: tf.Tensor, over: Record<string, tf.Tensor> = {}) =>
        tf.sum(tf.mul(w, run({ normaliser: spec, params: { ...base, ...over } }, qq).output));
      const q0 = tf.tensor4d(q), dir = tf.tensor4d(rand4(8, [B, H, T, D]));
      const fd = await directional((x) => loss(x), q0, dir);
      const g = await value(tf.sum(tf.mul(tf.grad((x: tf.Tensor) => loss(x))(q0), dir)));
      expect(Math.abs(g - fd)).toBeLessThan(1e-2 * (1 + Math.abs(fd)));
      for (const name of names) {
        const u = tf.tensor1d([0.7, -1.1]);
        const f = (p: tf.Tensor) => loss(q0, { [name]: p });
        const gp = await value(tf.sum(tf.mul(tf.grad(f)(base[name as keyof typeof base]), u)));
        const fdp = await directional(f, base[name as keyof typeof base], u);
        expect(Math.abs(gp - fdp)).toBeLessThan(1e-2 * (1 + Math.abs(fdp)));
        expect(Math.abs(gp)).toBeGreaterThan(1e-4);
      }
    }
  });

  it('missing parameters are named', async () => {
    expect(() => run({ normaliser: 'ssmax' })).toThrow(/params\.ssmaxS, a float32 tensor \[2\]/);
    expect(() => run({ normaliser: 'asentmax', params: { asentBeta: tf.zeros([2]) } })).toThrow(/params\.asentGamma/);
  });
});
