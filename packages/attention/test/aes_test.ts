/**
 * AES (aes_gate.ts) against a float64 reference of its definition: S = (e^H − 1)/(n − 1) per row (rows with one
 * visible key left out), the head means S̄, V̄, the varentropy width g(V) = V/(V + 1) of the
 * interval around the centre of [S0, Smax], the cosine D, the gate (running ζ̄ used below the
 * varentropy threshold, ζ̄ following the fresh ζ in every training call), per-row AES, the learned
 * threshold shift and 'schedule' gradients (finite differences), the legacy 'log-n' scale, and the
 * length behaviour on Gaussian rows.
 */
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { attention, type AttentionArgs, type NormaliserSpec } from '../src/index.js';
import { describeAllBackends, directional, expectClose, value, values } from './helpers.js';
import { entmaxRef, entropyRef, mulberry32, randn, softmaxRef, varentropyRef } from './reference.js';

const [B, H, T, D] = [2, 3, 6, 4];
type Arr4 = number[][][][];
const rand4 = (seed: number, shape: number[], scale = 1): Arr4 => {
  const rng = mulberry32(seed);
  const make = (i: number): unknown =>
    i === shape.length ? scale * randn(rng) : Array.from({ length: shape[i] }, () => make(i + 1));
  return make(0) as Arr4;
};

/** Causal score rows of head h, float64: rows[b][i] over keys j ≤ i (the others −∞). */
function scoreRows(q: Arr4, k: Arr4, h: number): number[][][] {
  return q.map((qb, b) => qb[h].map((qi, i) => k[b][h].map((kj, j) =>
    (j > i ? -Infinity : qi.reduce((a, x, c) => a + x * kj[c], 0) / Math.sqrt(D)))));
}

/** The AES definition in float64, default options (S0 0.1, Smax 0.6, ζmax 1, cosine, width V/(V+1)). */
const REF = { S0: 0.1, Smax: 0.6, zmax: 1 };
function zetaRef(S: number, V: number, width = (v: number) => v / (v + 1)): number {
  const c = (REF.S0 + REF.Smax) / 2, half = (REF.Smax - REF.S0) / 2, g = width(V);
  const [lo, hi] = [c - g * half, c + g * half];
  if (S <= lo) return REF.zmax;
  if (S >= hi) return 0;
  return (REF.zmax / 2) * (1 + Math.cos((Math.PI * (S - lo)) / (hi - lo)));
}
function rowRef(row: number[]): { S: number; V: number; n: number } {
  const n = row.filter(Number.isFinite).length;
  const p = softmaxRef(row);
  return { S: (Math.exp(entropyRef(p)) - 1) / (n - 1), V: varentropyRef(p), n };
}
/** Head means of S and V over rows with ≥ 2 visible keys. */
function headRef(rows: number[][][]): { S: number; V: number } {
  const rs = rows.flat().map(rowRef).filter((r) => r.n >= 2);
  return { S: rs.reduce((a, r) => a + r.S, 0) / rs.length, V: rs.reduce((a, r) => a + r.V, 0) / rs.length };
}

for (const layout of ['perHead', 'batched'] as const) describeAllBackends(`AES (${layout})`, (backend) => {
  // A device backend reads nothing back, so no head learns its mode on the host (aes_gate.ts).
  const mode = (m: string) => (backend === 'webgpu' ? 'device' : m);
  const q = rand4(1, [B, H, T, D], 1.6), k = rand4(2, [B, H, T, D], 1.6), v = rand4(3, [B, H, T, D]);
  const run = (args: AttentionArgs, qq: Arr4 = q, kk: Arr4 = k) =>
    attention(tf.tensor4d(qq), tf.tensor4d(kk), tf.tensor4d(v), { layout, causal: true, returnStats: true, ...args });

  it('per head: α = 1 + ζ(S̄; c ± g(V̄)·h) of the float64 reference, and the output is α-entmax attention',
    async () => {
    const r = run({ normaliser: 'aes' });
    const want = Array.from({ length: H }, (_, h) => {
      const m = headRef(scoreRows(q, k, h));
      return 1 + zetaRef(m.S, m.V);
    });
    expect(want.some((a) => a > 1.05 && a < 1.95)).toBe(true);                 // the test exercises the interior
    expectClose(await values(r.stats!.alpha), want, 2e-4);
    expect(r.modes).toEqual(Array(H).fill(mode('adaptive')));
    expectClose(await values(r.state!), want.map((a) => a - 1), 2e-4);       // first call: ζ̄ = ζ
    const ref = q.flatMap((_, b) => Array.from({ length: H }, (_, h) => scoreRows(q, k, h)[b].map((row) => {
      const p = want[h] === 1 ? softmaxRef(row) : entmaxRef(row, want[h]);
      return v[b][h][0].map((_, c) => p.reduce((a, pj, j) => a + pj * v[b][h][j][c], 0));
    })));
    expectClose(await values(r.output), ref.flat(2), 5e-4);
  });

  it('extremes: near-uniform rows give exactly softmax, peaked rows exactly sparsemax', async () => {
    const flatQ = rand4(4, [B, H, T, D], 0.01);
    const hi = run({ normaliser: 'aes' }, flatQ);
    expect(await values(hi.stats!.alpha)).toEqual(Array(H).fill(1));
    expectClose(await values(hi.output), await values(run({ normaliser: 'softmax' }, flatQ).output), 1e-6);
    const sharp = rand4(5, [B, H, T, D], 10);
    const lo = run({ normaliser: 'aes' }, sharp, sharp);
    expect(await values(lo.stats!.alpha)).toEqual(Array(H).fill(2));
    expectClose(await values(lo.output), await values(run({ normaliser: 'sparsemax' }, sharp, sharp).output), 1e-6);
  });

  it('gate: below the varentropy threshold a head uses ζ̄, which still follows the fresh ζ (nothing freezes)',
    async () => {
    const m = Array.from({ length: H }, (_, h) => headRef(scoreRows(q, k, h)));
    const order = m.map((_, h) => h).sort((a, b) => m[a].V - m[b].V);
    const threshold = (m[order[0]].V + m[order[1]].V) / 2;                   // only the lowest-V head is "fixed"
    const state = tf.tensor1d(Array(H).fill(0.25));
    const r = run({ normaliser: { aes: { varentropyThreshold: threshold, momentum: 0.5 } }, state });
    const low = order[0];
    expect(r.modes[low]).toBe(mode('fixed'));
    expect(r.modes[order[1]]).toBe(mode('adaptive'));
    expect((await values(r.stats!.alpha))[low]).toBeCloseTo(1.25, 6);
    const zeta = await values(r.state!);
    for (let h = 0; h < H; h++) expect(zeta[h]).toBeCloseTo(0.5 * 0.25 + 0.5 * zetaRef(m[h].S, m[h].V), 4);
    // Always "fixed" (threshold ∞): ζ̄ still converges to the fresh ζ over training calls.
    let s: tf.Tensor = tf.tensor1d(Array(H).fill(0));
    for (let i = 0; i < 40; i++)
      s = run({ normaliser: { aes: { varentropyThreshold: 1e9, momentum: 0.2 } }, state: s }).state!;
    expectClose(await values(s), m.map((x) => zetaRef(x.S, x.V)), 1e-3);
    // Evaluation ('frozen'): ζ̄ is used as it is and is not changed; no estimate yet → measured.
    const frozen = run({ normaliser: 'aes', state: tf.tensor1d([0.25, NaN, 0.25]), aesMode: 'frozen' });
    expect(frozen.modes).toEqual(['fixed', 'adaptive', 'fixed'].map(mode));
    expectClose(await values(frozen.stats!.alpha), [1.25, 1 + zetaRef(m[1].S, m[1].V), 1.25], 2e-4);
    expectClose(await values(frozen.state!), [0.25, zetaRef(m[1].S, m[1].V), 0.25], 2e-4);
  });

  it("width: '0' snaps ζ to an endpoint at the centre, '1' keeps [S0, Smax] for every V", async () => {
    const m = Array.from({ length: H }, (_, h) => headRef(scoreRows(q, k, h)));
    const snap = run({ normaliser: { aes: { width: '0' } } });
    expect(await values(snap.stats!.alpha)).toEqual(m.map((x) => (x.S <= 0.35 ? 2 : 1)));
    const full = run({ normaliser: { aes: { width: '1' } } });
    expectClose(await values(full.stats!.alpha), m.map((x) => 1 + zetaRef(x.S, x.V, () => 1)), 2e-4);
  });

  it('per row: each row its own α from its own S and V; one-key rows α = 1; output from per-row maps', async () => {
    const r = run({ normaliser: 'aes-row' });
    const rowAlpha = await values(r.stats!.rowAlpha);                         // [B, H, T]
    const want = q.flatMap((_, b) => Array.from({ length: H }, (_, h) => scoreRows(q, k, h)[b].map((row) => {
      const x = rowRef(row);
      return x.n < 2 ? 1 : 1 + zetaRef(x.S, x.V);
    }))).flat();
    expectClose(rowAlpha, want, 2e-4);
    expect(new Set(want.map((a) => a.toFixed(3))).size).toBeGreaterThan(4);      // α really varies by row
    const ref = q.flatMap((_, b) => Array.from({ length: H }, (_, h) => scoreRows(q, k, h)[b].map((row, i) => {
      const a = want[(b * H + h) * T + i];
      const p = a === 1 ? softmaxRef(row) : entmaxRef(row, a);
      return v[b][h][0].map((_, c) => p.reduce((acc, pj, j) => acc + pj * v[b][h][j][c], 0));
    })));
    expectClose(await values(r.output), ref.flat(2), 5e-4);
    expect(r.modes).toEqual(Array(H).fill(mode('row')));
  });

  it("gradients: 'schedule' and the learned shift match finite differences; 'stop' treats α as a constant",
    async () => {
    const w = tf.tensor4d(rand4(9, [B, H, T, D]));
    const [kt, vt, q0] = [tf.tensor4d(k), tf.tensor4d(v), tf.tensor4d(q)];
    const loss = (spec: NormaliserSpec | NormaliserSpec[], params?: Record<string, tf.Tensor>) => (qq: tf.Tensor) =>
      tf.sum(tf.mul(w, attention(qq, kt, vt, { layout, normaliser: spec, causal: true, params }).output));
    const dir = tf.tensor4d(rand4(10, [B, H, T, D]));
    const sched: NormaliserSpec = { aes: { gradient: 'schedule', width: '1', S0: 0, Smax: 1, shape: 'linear' } };
    const fd = await directional(loss(sched), q0, dir);
    const g = await value(tf.sum(tf.mul(tf.grad(loss(sched))(q0), dir)));
    expect(Math.abs(g - fd)).toBeLessThan(1e-2 * (1 + Math.abs(fd)));
    // learned shift: d loss / d shift
    const learn: NormaliserSpec = { aes: { learn: true, width: '1', S0: 0, Smax: 1, shape: 'linear' } };
    const byShift = (sh: tf.Tensor) => loss(learn, { aesShift: sh })(q0);
    const s0 = tf.tensor1d([0.1, -0.2, 0.3]), u = tf.tensor1d([1, -0.5, 0.7]);
    const gs = await value(tf.sum(tf.mul(tf.grad(byShift)(s0), u)));
    expect(gs).toBeCloseTo(await directional(byShift, s0, u), 2);
    expect(Math.abs(gs)).toBeGreaterThan(1e-3);
    // 'stop': the gradient of attention with the same α held fixed per head
    const alphas = await values(
      attention(q0, kt, vt, { layout, normaliser: 'aes', causal: true, returnStats: true }).stats!.alpha,
    );
    const fixed = alphas.map((a) => ({ alpha: a }));
    expectClose(await values(tf.grad(loss('aes'))(q0)), await values(tf.grad(loss(fixed))(q0)), 1e-5);
  });

  it("measureOn 'output' measures the running α's map; scale 'log-n' reads S = H / ln n", async () => {
    const out = run({
      normaliser: { aes: { measureOn: 'output', varentropyThreshold: 0 } },
      state: tf.tensor1d([0.6, 0.6, 0.6]),
    });
    const viaOutput = Array.from({ length: H }, (_, h) => {
      const rs = scoreRows(q, k, h).flat().map((row) => {
        const p = entmaxRef(row, 1.6), n = row.filter(Number.isFinite).length;
        return { S: (Math.exp(entropyRef(p)) - 1) / (n - 1), V: varentropyRef(p), n };
      }).filter((x) => x.n >= 2);
      const S = rs.reduce((a, x) => a + x.S, 0) / rs.length, V = rs.reduce((a, x) => a + x.V, 0) / rs.length;
      return 0.9 * 0.6 + 0.1 * zetaRef(S, V);
    });
    expectClose(await values(out.state!), viaOutput, 2e-4);
    const logn = run({ normaliser: { aes: { scale: 'log-n' } } });
    const want = Array.from({ length: H }, (_, h) => {
      const rs = scoreRows(q, k, h).flat().filter((row) => row.filter(Number.isFinite).length >= 2);
      const S =
        rs.reduce((a, row) => a + entropyRef(softmaxRef(row)) / Math.log(row.filter(Number.isFinite).length), 0) /
        rs.length;
      const V = rs.reduce((a, row) => a + varentropyRef(softmaxRef(row)), 0) / rs.length;
      return 1 + zetaRef(S, V);
    });
    expectClose(await values(logn.stats!.alpha), want, 2e-4);
  });
});

describeAllBackends('AES and the length of the context', () => {
  it("Gaussian rows at a fixed score scale: the 'support' α does not fall as n grows 128 → 4096; 'log-n' does",
    async () => {
    // 8 queries against n keys, scores ~ N(0, 2²) (d = 64, non-causal), one head.
    const at = async (n: number, scale: 'support' | 'log-n') => {
      const q = tf.randomNormal([1, 1, 8, 64], 0, 1, 'float32', 11);
      const k = tf.randomNormal([1, 1, n, 64], 0, 2, 'float32', 12);
      const v = tf.zeros([1, 1, n, 1]);
      const aes = scale === 'log-n' ? { scale, S0: 0.3, Smax: 0.8 } : { scale };
      return value(attention(q, k, v, { normaliser: { aes }, returnStats: true }).stats!.alpha);
    };
    const ns = [128, 512, 2048, 4096];
    const support = await Promise.all(ns.map((n) => at(n, 'support')));
    // 'log-n' with the thresholds it was designed with (S0 0.3, Smax 0.8)
    const logn = await Promise.all(ns.map((n) => at(n, 'log-n')));
    expect(support[0]).toBeGreaterThan(1.5);                                 // std 2 is a focused row
    expect(support.at(-1)!).toBeGreaterThanOrEqual(support[0] - 0.02);
    expect(Math.max(...support) - Math.min(...support)).toBeLessThan(0.1);
    expect(logn.at(-1)!).toBeLessThan(logn[0] - 0.05);                        // the old scale drifts to softmax
  });
});
