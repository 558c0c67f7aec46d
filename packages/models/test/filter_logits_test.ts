/**
 * filterLogits: each stage against hand-worked rows, the edge cases (ties at the cut, k ≥ V,
 * top-p = 1, a single finite entry, minTokensToKeep > 1), the order of the stages, option
 * checking, and a literal float64 transcription of the HF warpers as a second oracle on random rows.
 */
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { filterLogits, FILTER_LOGITS_KEYS, type FilterLogitsArgs } from '../src/filter_logits.js';
import { Rng } from '../src/rng.js';
import { softmax64 } from '../src/sample.js';
import { describeBackends, expectNoLeak } from './sampling_helpers.js';

const NEG = -Infinity;
/** Logits whose softmax is p = (0.5, 0.3, 0.15, 0.05). */
const P4 = [0.5, 0.3, 0.15, 0.05].map(Math.log);

function run(rows: number[][], opts: FilterLogitsArgs): number[][] {
  return tf.tidy(() => filterLogits(tf.tensor2d(rows), opts).arraySync() as number[][]);
}
/** Indices a stage kept in a one-row input. */
function kept(row: number[], opts: FilterLogitsArgs): number[] {
  return run([row], opts)[0].flatMap((v, i) => (v > NEG ? [i] : []));
}

// ---- The oracle: the HF warpers transcribed op by op (sort, cumsum, scatter, masked_fill) in float64.
const argsortStable = (a: number[], desc = false) =>
  a.map((v, i) => [v, i] as const).sort((x, y) => (desc ? y[0] - x[0] : x[0] - y[0]) || x[1] - y[1]).map(([, i]) => i);
const softmax = (a: number[]) => {
  const m = Math.max(...a);
  const e = a.map((v) => Math.exp(v - m));
  const s = e.reduce((x, y) => x + y, 0);
  return e.map((v) => v / s);
};
const cumsum = (a: number[]) => { let c = 0; return a.map((v) => (c += v)); };
const maskedFill = (s: number[], remove: boolean[]) => s.map((v, i) => (remove[i] ? NEG : v));
const scatter = (sortedIdx: number[], vals: boolean[]) => {
  const out = new Array<boolean>(vals.length);
  sortedIdx.forEach((j, r) => {
    out[j] = vals[r];
  });
  return out;
};
const topkLast = (s: number[], k: number) => [...s].sort((a, b) => b - a)[k - 1];

function hfWarp(scores0: number[], o: FilterLogitsArgs): number[] {
  const mtk = o.minTokensToKeep ?? 1;
  let s = [...scores0];
  const V = s.length;
  if (o.temperature !== undefined && o.temperature !== 1) s = s.map((v) => v / o.temperature!);
  if (o.topK) { const kth = topkLast(s, Math.min(Math.max(o.topK, mtk), V)); s = maskedFill(s, s.map((v) => v < kth)); }
  if (o.topP !== undefined && o.topP < 1) {
    const idx = argsortStable(s);
    const cum = cumsum(softmax(idx.map((i) => s[i])));
    const rm = cum.map((c) => c <= 1 - o.topP!);
    for (let r = Math.max(0, V - mtk); r < V; r++) rm[r] = false;
    s = maskedFill(s, scatter(idx, rm));
  }
  if (o.minP !== undefined) {
    const p = softmax(s);
    const top = Math.max(...p);
    const rm = p.map((v) => v < o.minP! * top);
    for (const i of argsortStable(p, true).slice(0, Math.min(mtk, V))) rm[i] = false;
    s = maskedFill(s, rm);
  }
  if (o.typicalP !== undefined && o.typicalP < 1) {
    const m = Math.max(...s);
    const lse = m + Math.log(s.reduce((a, v) => a + Math.exp(v - m), 0));
    const norm = s.map((v) => v - lse);
    const p = norm.map(Math.exp);
    const ent = -norm.reduce((a, v, i) => { const t = v * p[i]; return Number.isNaN(t) ? a : a + t; }, 0);   // nansum
    const shifted = norm.map((v) => Math.abs(-v - ent));
    const idx = argsortStable(shifted);
    const sortedScores = idx.map((i) => shifted[i]);
    const cum = cumsum(softmax(idx.map((i) => s[i])));
    const last = Math.min(cum.filter((c) => c < o.typicalP!).length, V - 1);
    const rm = sortedScores.map((v, r) => r >= mtk && v > sortedScores[last]);
    s = maskedFill(s, scatter(idx, rm));
  }
  const cutAt = (eps: number) => {
    const p = softmax(s);
    const kth = topkLast(s, Math.min(mtk, V));
    s = maskedFill(s, p.map((v, i) => v < eps && s[i] < kth));
  };
  if (o.epsilon) cutAt(o.epsilon);
  if (o.eta) {
    const p = softmax(s);
    const h = -p.reduce((a, v) => a + (v > 0 ? v * Math.log(v) : 0), 0);
    cutAt(Math.min(o.eta, Math.sqrt(o.eta) * Math.exp(-h)));
  }
  return s;
}

describeBackends('filterLogits', () => {
  it('temperature divides the logits', () => {
    expect(run([[2, 1, 0]], { temperature: 0.5 })).toEqual([[4, 2, 0]]);
    expect(run([[2, 1, NEG]], { temperature: 2 })).toEqual([[1, 0.5, NEG]]);
  });

  it('topK keeps the k largest, ties at the cut kept; k ≥ V and k = 0 are no-ops', () => {
    expect(kept([3, 1, 2, 0], { topK: 2 })).toEqual([0, 2]);
    expect(kept([1, 2, 2, 0], { topK: 2 })).toEqual([1, 2]);
    expect(kept([2, 2, 2, 0], { topK: 2 })).toEqual([0, 1, 2]);        // HF: scores < k-th value removed
    expect(run([[3, 1, 2, 0]], { topK: 4 })).toEqual([[3, 1, 2, 0]]);
    expect(run([[3, 1, 2, 0]], { topK: 10 })).toEqual([[3, 1, 2, 0]]);
    expect(run([[3, 1, 2, 0]], { topK: 0 })).toEqual([[3, 1, 2, 0]]);
    expect(kept([3, 1, 2, 0], { topK: 1, minTokensToKeep: 3 })).toEqual([0, 1, 2]);
  });

  it('topP keeps the smallest most-probable set with mass ≥ topP', () => {
    expect(kept(P4, { topP: 0.9 })).toEqual([0, 1, 2]);               // 0.5 + 0.3 + 0.15 ≥ 0.9
    expect(kept(P4, { topP: 0.75 })).toEqual([0, 1]);
    expect(kept(P4, { topP: 0.4 })).toEqual([0]);
    expect(kept(P4, { topP: 0.4, minTokensToKeep: 3 })).toEqual([0, 1, 2]);
    const x = [[0.3, -1, 2, 0.7]];
    expect(run(x, { topP: 1 })).toEqual(run(x, {}));
    // Ties at the cut: four equal logits (p = 1/4 exactly), topP 0.5 keeps exactly two; HF's
    // ascending stable order removes the lower indices first.
    expect(kept([0, 0, 0, 0], { topP: 0.5 })).toEqual([2, 3]);
    expect(kept([0, 0, 0, 0], { topP: 0.51 })).toEqual([1, 2, 3]);
  });

  it('minP keeps p ≥ minP·p_max, on the temperature-scaled distribution', () => {
    expect(kept(P4, { minP: 0.2 })).toEqual([0, 1, 2]);               // cut 0.1
    expect(kept(P4, { minP: 0.5 })).toEqual([0, 1]);                  // cut 0.25
    expect(kept(P4, { minP: 1 })).toEqual([0]);
    expect(kept(P4, { minP: 1, minTokensToKeep: 2 })).toEqual([0, 1]);
    expect(kept(P4, { minP: 0 })).toEqual([0, 1, 2, 3]);
    expect(kept([1, 1, 0], { minP: 1 })).toEqual([0, 1]);               // p = minP·p_max is kept (HF: p < cut removed)
    // T = 2 flattens p ∝ √p: ratios to the max 1, 0.77, 0.55, 0.32, so 0.5 now keeps three.
    expect(kept(P4, { temperature: 2, minP: 0.5 })).toEqual([0, 1, 2]);
  });

  it('typicalP keeps the tokens whose surprisal is closest to the entropy', () => {
    // H = 1.1421 nats; |−ln p − H| = (0.449, 0.062, 0.755, 1.854); order 1, 0, 2, 3; mass 0.3, 0.8, 0.95, 1.
    expect(kept(P4, { typicalP: 0.5 })).toEqual([0, 1]);
    expect(kept(P4, { typicalP: 0.9 })).toEqual([0, 1, 2]);
    expect(kept(P4, { typicalP: 0.2 })).toEqual([1]);                 // the mode itself is dropped
    expect(kept(P4, { typicalP: 0.2, minTokensToKeep: 2 })).toEqual([0, 1]);
    expect(kept(P4, { typicalP: 1 })).toEqual([0, 1, 2, 3]);
    // Mass exactly equal to the first token's probability: HF counts cumsum < mass, so that token alone suffices.
    const p1 = softmax64(Float32Array.from(P4))[1];
    expect(kept(P4, { typicalP: p1 })).toEqual([1]);
  });

  it('epsilon keeps p ≥ ε, and at least the minTokensToKeep largest', () => {
    expect(kept(P4, { epsilon: 0.1 })).toEqual([0, 1, 2]);
    expect(kept(P4, { epsilon: 0.6 })).toEqual([0]);
    expect(kept(P4, { epsilon: 0.6, minTokensToKeep: 2 })).toEqual([0, 1]);
  });

  it('eta cuts at min(η, √η·e^{−H}) as HF computes it', () => {
    // e^{−H} = 0.3191: η = 0.1 → cut 0.1; η = 0.5 → cut √0.5·0.3191 = 0.2257 (√(η e^{−H}) would be 0.40).
    expect(kept(P4, { eta: 0.1 })).toEqual([0, 1, 2]);
    expect(kept(P4, { eta: 0.5 })).toEqual([0, 1]);
    expect(kept(P4, { eta: 0.9, minTokensToKeep: 3 })).toEqual([0, 1, 2]);
  });

  it('applies the stages in order, each on the renormalised output of the last', () => {
    // topK 2 first → (0.625, 0.375); then topP 0.6 keeps only the first. topP first would keep two.
    expect(kept(P4, { topK: 2, topP: 0.6 })).toEqual([0]);
    // After topK 2, p = 0.375 ≥ ε = 0.35 survives; on the unfiltered row p = 0.3 would not.
    expect(kept(P4, { topK: 2, epsilon: 0.35 })).toEqual([0, 1]);
    expect(kept(P4, { epsilon: 0.35 })).toEqual([0]);
    expect(FILTER_LOGITS_KEYS).toEqual([
      'temperature',
      'topK',
      'topP',
      'minP',
      'typicalP',
      'epsilon',
      'eta',
      'minTokensToKeep',
    ]);
  });

  it('a row with one finite entry keeps it under every option; a fully masked row stays masked', () => {
    const all: FilterLogitsArgs = {
      temperature: 0.7,
      topK: 1,
      topP: 0.1,
      minP: 0.9,
      typicalP: 0.1,
      epsilon: 0.5,
      eta: 0.5,
    };
    expect(run([[NEG, 2, NEG]], all)).toEqual([[NEG, 2 / 0.7, NEG].map(Math.fround)]);
    expect(run([[NEG, NEG]], all)).toEqual([[NEG, NEG]]);
  });

  it('handles rank 1 and rows independently', () => {
    const y = filterLogits(tf.tensor1d(P4), { topP: 0.75 });
    expect(y.shape).toEqual([4]);
    expect(Array.from(y.dataSync()).map((v) => v > NEG)).toEqual([true, true, false, false]);
    y.dispose();
    expect(run([P4, [0, 0, 0, 0], [5, NEG, 1, 0]], { topK: 1 }).map((r) => r.filter((v) => v > NEG).length)).toEqual([
      1, 4, 1,
    ]);
  });

  it('matches the transcribed HF warpers on random rows and options', () => {
    const rng = new Rng(2024);
    const pick = <T>(xs: T[]) => xs[rng.int(xs.length)];
    for (let t = 0; t < 150; t++) {
      const V = 2 + rng.int(40);
      const scale = pick([0.3, 1, 3]);
      const row = Array.from({ length: V }, () => (rng.next() < 0.1 ? NEG : Math.fround(scale * rng.normal())));
      if (row.every((v) => v === NEG)) row[0] = 0;
      const o: FilterLogitsArgs = { minTokensToKeep: pick([1, 1, 2, 3]) };
      if (rng.next() < 0.5) o.temperature = pick([0.5, 0.9, 1.7]);
      if (rng.next() < 0.4) o.topK = pick([1, 3, 10, 50]);
      if (rng.next() < 0.5) o.topP = pick([0.3, 0.8, 0.95]);
      if (rng.next() < 0.4) o.minP = pick([0.02, 0.1, 0.4]);
      if (rng.next() < 0.3) o.typicalP = pick([0.2, 0.7, 0.95]);
      if (rng.next() < 0.3) o.epsilon = pick([3e-4, 0.02, 0.2]);
      if (rng.next() < 0.3) o.eta = pick([4e-3, 0.05, 0.3]);
      const got = run([row], o)[0];
      const want = hfWarp(row, o).map(Math.fround);
      expect(got, `row ${t}: ${JSON.stringify({ row, o })}`).toEqual(want);
    }
  });

  it('rejects bad options and bad logits with clear errors', () => {
    const x = tf.tensor2d([[1, 2, 3]]);
    const bad: Array<[unknown, RegExp]> = [
      [{ temperature: 0 }, /temperature must be a finite number > 0/],
      [{ temperature: -1 }, /temperature/],
      [{ temperature: NaN }, /temperature/],
      [{ topP: 0 }, /topP must be in \(0, 1\]/],
      [{ topP: 1.5 }, /topP/],
      [{ minP: -0.1 }, /minP must be in \[0, 1\]/],
      [{ minP: 1.1 }, /minP/],
      [{ topK: 1.5 }, /topK must be an integer ≥ 0/],
      [{ topK: -1 }, /topK/],
      [{ typicalP: 0 }, /typicalP/],
      [{ epsilon: 1 }, /epsilon/],
      [{ eta: -0.1 }, /eta/],
      [{ minTokensToKeep: 0 }, /minTokensToKeep must be an integer ≥ 1/],
      [{ topP: '0.9' }, /topP/],
      [
        { top_p: 0.9 },
        new RegExp("unknown option 'top_p'; valid options are temperature, topK, topP, minP, typicalP, " +
          'epsilon, eta, minTokensToKeep'),
      ],
    ];
    for (const [o, re] of bad) expect(() => filterLogits(x, o as FilterLogitsArgs)).toThrow(re);
    expect(() => filterLogits(tf.tensor2d([[1, 2]], undefined, 'int32'), {})).toThrow(/float32/);
    expect(() => filterLogits(tf.zeros([1, 2, 3]), {})).toThrow(/\[N, V\] or \[V\]/);
    expect(() => filterLogits(tf.tensor2d([[1, NaN]]), {})).toThrow(/finite or -Infinity/);
    expect(() => filterLogits(tf.tensor2d([[1, Infinity]]), {})).toThrow(/finite or -Infinity/);
    expect(() => filterLogits([1, 2] as unknown as tf.Tensor, {})).toThrow(/tf.Tensor/);
    tf.dispose(x);
  });

  it('leaks no tensors', () => {
    const x = tf.tensor2d([P4, [0, 1, 2, 3]]);
    expectNoLeak(() => filterLogits(x, { temperature: 0.8, topK: 3, topP: 0.9, minP: 0.05 }).dispose());
    x.dispose();
  });
});
