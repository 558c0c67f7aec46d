/**
 * Exact draws and the basic samplers: frequencies against the intended distribution with a
 * chi-square test (fixed seeds, 20 000 draws, p > 1e-4: stable, yet the biased argmax(p/U) draw
 * fails it with p < 1e-100), exact zeros never drawn, records, errors and leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { entmax } from '@aes/attention';
import { expect, it } from 'vitest';
import { filterLogits } from '../src/filter_logits.js';
import { Rng } from '../src/rng.js';
import {
  drawCategorical, entmaxSampler, filteredSampler, greedySampler, plainSampler, sampleFromLogits, softmax64,
} from '../src/sample.js';
import {
  chiSquare,
  describeBackends,
  gammaQ,
  drawCounts,
  expectJsonSafe,
  expectNoLeak,
  randomLogits,
  softmaxRef,
} from './sampling_helpers.js';

const N = 20_000;
const P_MIN = 1e-4;

describeBackends('samplers', () => {
  it('the chi-square p-value matches tabulated quantiles', () => {
    // χ²(1) 0.95 quantile 3.8415; χ²(10) 0.95 quantile 18.307; χ²(4) 0.999 quantile 18.467.
    expect(gammaQ(1 / 2, 3.8415 / 2)).toBeCloseTo(0.05, 5);
    expect(gammaQ(10 / 2, 18.307 / 2)).toBeCloseTo(0.05, 5);
    expect(gammaQ(4 / 2, 18.467 / 2)).toBeCloseTo(0.001, 6);
    const two = chiSquare([5000 + 98, 5000 - 98], [0.5, 0.5]);       // stat = 2·98²/5000 = 3.8416
    expect(two.df).toBe(1);
    expect(two.pValue).toBeCloseTo(0.05, 4);
    expect(chiSquare([3, 0], [1, 0]).pValue).toBe(1);
    expect(chiSquare([3, 1], [1, 0]).pValue).toBe(0);                  // a draw where p = 0
  });

  it('drawCategorical matches the probabilities and never draws an exact zero', () => {
    const p = [0.5, 0, 0.2, 0.2, 0.1, 0];
    const counts = new Array(p.length).fill(0);
    const rng = new Rng(11);
    for (let i = 0; i < N; i++) counts[drawCategorical(p, rng)]++;
    expect(counts[1]).toBe(0);
    expect(counts[5]).toBe(0);
    expect(chiSquare(counts, p).pValue).toBeGreaterThan(P_MIN);
    // Unnormalised weights and Float32Array input.
    const w = new Float32Array([3, 1]);
    const rng2 = new Rng(12);
    let first = 0;
    for (let i = 0; i < N; i++) first += drawCategorical(w, rng2) === 0 ? 1 : 0;
    expect(chiSquare([first, N - first], [0.75, 0.25]).pValue).toBeGreaterThan(P_MIN);
  });

  it('the test has power: the biased argmax(p/U) draw fails it', () => {
    const p = [0.75, 0.25];
    const rng = new Rng(13);
    let first = 0;
    for (let i = 0; i < N; i++) first += p[0] / rng.next() > p[1] / rng.next() ? 1 : 0;
    expect(chiSquare([first, N - first], p).pValue).toBeLessThan(1e-100);
  });

  it('drawCategorical is deterministic given the seed and rejects bad input', () => {
    const seq = (seed: number) => {
      const r = new Rng(seed);
      return Array.from({ length: 20 }, () => drawCategorical([1, 2, 3, 4], r));
    };
    expect(seq(5)).toEqual(seq(5));
    expect(seq(5)).not.toEqual(seq(6));
    const rng = new Rng(0);
    expect(() => drawCategorical([0.5, -0.1], rng)).toThrow(/finite and ≥ 0/);
    expect(() => drawCategorical([0.5, NaN], rng)).toThrow(/finite and ≥ 0/);
    expect(() => drawCategorical([0, 0], rng)).toThrow(/sum to 0/);
    expect(() => drawCategorical([], rng)).toThrow(/sum to 0/);
  });

  it('sampleFromLogits draws from softmax(logits)', () => {
    const z = randomLogits(3, 8, 1.5);
    const x = tf.tensor1d(z);
    const rng = new Rng(14);
    const counts = new Array(8).fill(0);
    for (let i = 0; i < N; i++) counts[sampleFromLogits(x, rng)]++;
    expect(chiSquare(counts, softmaxRef(z)).pValue).toBeGreaterThan(P_MIN);
    x.dispose();
  });

  it('greedySampler takes the first maximum and uses no randomness', () => {
    const x = tf.tensor1d([0.1, 2, 2, -Infinity]);
    const rng = new Rng(1);
    const before = rng.state();
    const { token, record } = greedySampler()(x, { rng });
    expect(token).toBe(1);
    expect(rng.state()).toEqual(before);
    expect(record).toEqual({ sampler: 'greedy', p: softmax64(new Float32Array([0.1, 2, 2, -Infinity]))[1] });
    x.dispose();
  });

  it('plainSampler draws from softmax(logits / T)', () => {
    const z = randomLogits(4, 10, 2);
    const x = tf.tensor1d(z);
    const counts = drawCounts(plainSampler({ temperature: 0.6 }), x, N, 15);
    expect(chiSquare(counts, softmaxRef(z.map((v) => v / 0.6))).pValue).toBeGreaterThan(P_MIN);
    const { record } = plainSampler()(x, { rng: new Rng(0) });
    expect(record.temperature).toBe(1);
    expectJsonSafe(record);
    x.dispose();
  });

  it('filteredSampler draws from the filtered, renormalised distribution', () => {
    const z = randomLogits(5, 12, 1.5);
    const x = tf.tensor1d(z);
    const opts = { temperature: 0.9, topK: 6, topP: 0.8, minP: 0.05 };
    const filtered = tf.tidy(() => Array.from(filterLogits(x, opts).dataSync()));
    const q = softmaxRef(filtered);
    const sampler = filteredSampler(opts);
    const counts = drawCounts(sampler, x, N, 16);
    for (let i = 0; i < z.length; i++) if (q[i] === 0) expect(counts[i]).toBe(0);
    expect(chiSquare(counts, q).pValue).toBeGreaterThan(P_MIN);
    const { token, record } = sampler(x, { rng: new Rng(1) });
    expect(record).toMatchObject({
      sampler: 'topk+topp+minp',
      ...opts,
      minTokensToKeep: 1,
      kept: q.filter((v) => v > 0).length,
    });
    expect(record.p).toBeCloseTo(q[token], 6);
    expectJsonSafe(record);
    expect(filteredSampler({})(x, { rng: new Rng(1) }).record.sampler).toBe('plain');
    expect(filteredSampler({ topP: 1, typicalP: 0.9 })(x, { rng: new Rng(1) }).record.sampler).toBe('typical');
    x.dispose();
  });

  for (const alpha of [1.5, 2, 1.25]) {
    it(`entmaxSampler(α = ${alpha}) draws from α-entmax and never draws an exact zero`, () => {
      const z = randomLogits(6, 12, 1.5);
      const x = tf.tensor1d(z);
      const p = tf.tidy(() => Array.from(entmax(tf.div(x, 0.8), alpha).dataSync()));
      expect(p.filter((v) => v === 0).length).toBeGreaterThan(3);        // a genuinely sparse case
      const sampler = entmaxSampler({ alpha, temperature: 0.8 });
      // α = 1.25 runs the bisection (~1 ms a call on cpu), so fewer draws there.
      const counts = drawCounts(sampler, x, alpha === 1.25 ? 3000 : N, 17);
      for (let i = 0; i < p.length; i++) if (p[i] === 0) expect(counts[i]).toBe(0);
      expect(chiSquare(counts, p).pValue).toBeGreaterThan(P_MIN);
      const { record } = sampler(x, { rng: new Rng(2) });
      expect(record).toMatchObject({ sampler: 'entmax', alpha, temperature: 0.8, kept: p.filter((v) => v > 0).length });
      expectJsonSafe(record);
      x.dispose();
    });
  }

  it('entmaxSampler at α = 2 on a hand-worked row: sparsemax(1.2, 1, 0.1, −1) = (0.6, 0.4, 0, 0)', () => {
    const x = tf.tensor1d([1.2, 1, 0.1, -1]);
    const counts = drawCounts(entmaxSampler({ alpha: 2 }), x, N, 18);
    expect(counts[2] + counts[3]).toBe(0);
    expect(chiSquare(counts, [0.6, 0.4, 0, 0]).pValue).toBeGreaterThan(P_MIN);
    x.dispose();
  });

  it('rejects bad options and bad logits', () => {
    expect(() => plainSampler({ temperature: 0 })).toThrow(/temperature must be a finite number > 0/);
    expect(() => entmaxSampler({ alpha: 0.5 })).toThrow(/alpha must be a finite number ≥ 1/);
    expect(() => entmaxSampler({ alpha: 1.5, temperature: -1 })).toThrow(/temperature/);
    expect(() => filteredSampler({ topP: 2 })).toThrow(/filteredSampler: topP must be in \(0, 1\]/);
    expect(() => filteredSampler({ foo: 1 } as never)).toThrow(/unknown option 'foo'/);
    const rng = new Rng(0);
    const m = tf.tensor2d([[1, 2]]);
    const i = tf.tensor1d([1, 2], 'int32');
    const masked = tf.tensor1d([-Infinity, -Infinity]);
    expect(() => plainSampler()(m as unknown as tf.Tensor1D, { rng })).toThrow(/\[V\]/);
    expect(() => greedySampler()(i, { rng })).toThrow(/float32/);
    expect(() => filteredSampler({ topK: 1 })(masked, { rng })).toThrow(/every logit is -Infinity/);
    tf.dispose([m, i, masked]);
  });

  it('samplers leak no tensors', () => {
    const x = tf.tensor1d(randomLogits(7, 16));
    const rng = new Rng(3);
    for (const s of [
      greedySampler(),
      plainSampler(),
      filteredSampler({ topK: 4 }),
      entmaxSampler({ alpha: 1.5 }),
      entmaxSampler({ alpha: 1 }),
    ]) {
      expectNoLeak(() => {
        s(x, { rng });
      });
    }
    x.dispose();
  });
});
