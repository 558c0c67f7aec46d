/**
 * The Entropix sampler: config checks, disjoint branch regions, constructed logits that reach each
 * of the five branches with the reference code's settings, units of the attention metrics, the
 * best-of-n rule, and one test per defect of the reference code (min-p, top-p order, biased draw,
 * unreachable branch).
 */
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import {
  checkEntropixConfig,
  ENTROPIX_DEFAULTS,
  entropixSampling,
  entropixBranch,
  entropixProbs,
  entropixSampler,
  type EntropixBranch,
} from '../src/entropix.js';
import { Rng } from '../src/rng.js';
import { drawCategorical, softmax64 } from '../src/sample.js';
import type { AttentionSummary } from '../src/sampler_types.js';
import { chiSquare, describeBackends, drawCounts, expectJsonSafe, expectNoLeak } from './sampling_helpers.js';

const N = 20_000;
const P_MIN = 1e-4;
const T0 = ENTROPIX_DEFAULTS.temperature;

/** q on token 0 and 1 − q spread evenly over m tokens: H = h(q) + (1 − q) log₂ m bits, large V. */
const mixture = (q: number, m: number) => [Math.log(q), ...new Array<number>(m).fill(Math.log((1 - q) / m))];
/** Logits reaching each branch with the default thresholds (H, V in bits, bits² measured in the comments). */
const CASES: Record<EntropixBranch, number[]> = {
  argmax: [10, 0, 0, 0],                                                  // H 0.002, V 0.03
  careful: Array.from({ length: 16 }, (_, i) => -0.25 + (i * 0.5) / 15),   // H 3.98, V 0.05
  exploring: mixture(0.7, 1024),                                          // H 3.88, V 26.4
  resampling: mixture(0.5, 1024),                                         // H 6.00, V 25.0
  adaptive: [2.5, 0, -0.5, -1, -3, -3.5],                                 // H 0.84, V 2.37
};
/** Attention metrics in nats: entropy 2 bits, varentropy 1 bit², agreement 0.3, interaction 0.5. */
const ATTN: AttentionSummary = {
  entropy: 2 * Math.LN2,
  varentropy: Math.LN2 ** 2,
  agreement: 0.3,
  interactionStrength: 0.5,
};

function sampleOnce(branchCase: EntropixBranch, cfg = {}, attention?: AttentionSummary) {
  const x = tf.tensor1d(CASES[branchCase]);
  const out = entropixSampler(cfg)(x, { rng: new Rng(1), attention });
  x.dispose();
  return out;
}

describeBackends('entropix', () => {
  it('defaults and config checks', () => {
    expect(ENTROPIX_DEFAULTS).toMatchObject({ temperature: 0.666, topP: 0.9, topK: 27, minP: 0.03, lowEntropy: 0.1,
      lowVarentropy: 0.1, highEntropy: 3, resampleEntropy: 5, highVarentropy: 5, clarifyingToken: null, nSamples: 5 });
    expect(Object.isFrozen(ENTROPIX_DEFAULTS)).toBe(true);
    expect(checkEntropixConfig({ topK: 40 }).topK).toBe(40);
    expect(() => entropixSampler({ temp: 1 } as never)).toThrow(
      /unknown option 'temp'; valid options are temperature, topP/,
    );
    expect(() => entropixSampler({ temperature: 0 })).toThrow(/temperature must be a number in \(0, ∞\)/);
    expect(() => entropixSampler({ topP: 1.2 })).toThrow(/topP/);
    expect(() => entropixSampler({ topK: 2.5 })).toThrow(/topK must be an integer ≥ 1/);
    expect(() => entropixSampler({ nSamples: 0 })).toThrow(/nSamples/);
    expect(() => entropixSampler({ clarifyingToken: -1 })).toThrow(/clarifyingToken must be null or an integer/);
    expect(() => entropixSampler({ lowEntropy: 4 })).toThrow(/lowEntropy \(4\) must be ≤ highEntropy \(3\)/);
    expect(() => entropixSampler({ lowVarentropy: 6 })).toThrow(/lowVarentropy/);
  });

  it('the branch coefficients live in the config: an override changes the formula, unknown ones are rejected', () => {
    const m = {
      entropyBits: 4,
      varentropyBits: 0,
      attnEntropyBits: 1,
      attnVarentropyBits: 0,
      agreement: 0,
      interactionStrength: 0,
    };
    const def = entropixSampling('careful', m, checkEntropixConfig())!;
    expect(def.temperature).toBeCloseTo(Math.min(1.5, T0 * (1.3 + 0.2 * 1)), 12);
    const custom = entropixSampling(
      'careful',
      m,
      checkEntropixConfig({ coefficients: { carefulT0: 1, carefulTAttnH: 0.5 } as never }),
    )!;
    expect(custom.temperature).toBeCloseTo(Math.min(1.5, T0 * (1 + 0.5 * 1)), 12);
    expect(() => checkEntropixConfig({ coefficients: { carefulX: 1 } as never })).toThrow(
      /unknown coefficient 'carefulX'/,
    );
    expect(() => checkEntropixConfig({ coefficients: { carefulT0: NaN } as never })).toThrow(
      /carefulT0 must be a finite number/,
    );
  });

  it('defect 4 fixed: the four named regions are disjoint and each is reachable', () => {
    // The regions as the reference code's rules state them; at H = 5 exactly (high V) we assign 'resampling'.
    const regions: Array<[EntropixBranch, (h: number, v: number) => boolean]> = [
      ['argmax', (h, v) => h < 0.1 && v < 0.1],
      ['careful', (h, v) => h > 3 && v < 0.1],
      ['exploring', (h, v) => h < 5 && v > 5],
      ['resampling', (h, v) => h >= 5 && v > 5],
    ];
    const seen = new Set<EntropixBranch>();
    for (let h = 0; h <= 10; h += 0.05) {
      for (const v of [0, 0.05, 0.0999, 0.1, 0.5, 3, 5, 5.0001, 8, 30]) {
        const hits = regions.filter(([, inside]) => inside(h, v)).map(([b]) => b);
        expect(hits.length).toBeLessThanOrEqual(1);
        const b = entropixBranch(h, v);
        expect(b).toBe(hits[0] ?? 'adaptive');
        seen.add(b);
      }
    }
    expect([...seen].sort()).toEqual(['adaptive', 'argmax', 'careful', 'exploring', 'resampling']);
  });

  it('constructed logits reach each of the five branches', () => {
    for (const b of Object.keys(CASES) as EntropixBranch[]) expect(sampleOnce(b).record.branch).toBe(b);
  });

  it('argmax and clarifying-token branches', () => {
    expect(sampleOnce('argmax')).toMatchObject({ token: 0, record: { temperature: null, topK: null, kept: 1 } });
    const c = sampleOnce('careful', { clarifyingToken: 7 });
    expect(c.token).toBe(7);
    expect(c.record).toMatchObject({ branch: 'careful', clarifying: true, temperature: null });
    expect(() => sampleOnce('careful', { clarifyingToken: 16 })).toThrow(/outside the vocabulary/);
  });

  it('branch settings follow the reference code, with attention converted from nats to bits', () => {
    const r = (b: EntropixBranch, a?: AttentionSummary) => sampleOnce(b, {}, a).record;
    expect(r('careful', ATTN)).toMatchObject({
      attnEntropyBits: expect.closeTo(2, 12),
      attnVarentropyBits: expect.closeTo(1, 12),
      attention: 'given',
      temperature: expect.closeTo(Math.min(1.5, T0 * (1.3 + 0.2 * 2)), 12),
      topK: 27,
      topP: 0.9,
      minP: 0.03,
    });
    expect(r('careful')).toMatchObject({
      attention: 'missing',
      attnEntropyBits: 0,
      temperature: expect.closeTo(T0 * 1.3, 12),
    });
    expect(r('exploring', ATTN)).toMatchObject({
      temperature: expect.closeTo(T0 * (1.2 + 0.3 * 0.5), 12),
      topK: 36,
      topP: 0.9,
    });
    expect(r('exploring')).toMatchObject({ topK: 40 });                       // ⌊27 · 1.5⌋
    expect(r('resampling', ATTN)).toMatchObject({
      temperature: 2,
      topP: expect.closeTo(0.5, 12),
      topK: 27,
      minP: 0.03,
    });
    expect(r('resampling', { ...ATTN, varentropy: 4 * Math.LN2 ** 2 })).toMatchObject({
      temperature: expect.closeTo(T0 * 4, 12),
    });
    const a = r('adaptive', ATTN);
    const hv = (a.entropyBits as number) + (a.varentropyBits as number);
    expect(a).toMatchObject({
      temperature: expect.closeTo(T0 * (1 + 0.3 * hv + 0.2 * 3 - 0.2 * 0.3), 12),
      topP: expect.closeTo(0.9 * 1.1, 12),
      topK: Math.round(27 * (1 + 0.15 - 0.06)),
      minP: 0.01,                                                              // 0.03(1 − 0.5·3.2) < 0.01
    });
    expect(a.candidates).toHaveLength(5);
    expectJsonSafe(a);
  });

  it('defect 1 fixed: min-p removes tokens and the draw renormalises after it', () => {
    const q = entropixProbs([0.5, 0.48, 0.01, 0.01].map(Math.log), { temperature: 1, topK: 27, topP: 1, minP: 0.03 });
    expect(Array.from(q).map((v) => v > 0)).toEqual([true, true, false, false]);
    expect(q[0]).toBeCloseTo(0.5 / 0.98, 6);
    // Through the sampler, careful branch (T = 0.666·1.3): min-p 0.9 keeps z ≥ 0.25 − T ln(1/0.9), i.e. tokens 13–15.
    const x = tf.tensor1d(CASES.careful);
    const sampler = entropixSampler({ minP: 0.9, topP: 1 });
    const { record } = sampler(x, { rng: new Rng(0) });
    expect(record).toMatchObject({ branch: 'careful', minP: 0.9, kept: 3 });
    const counts = drawCounts(sampler, x, 5000, 21);
    expect(counts.slice(0, 13).every((c) => c === 0)).toBe(true);
    const p = entropixProbs(CASES.careful.map(Math.fround), record as never);
    expect(chiSquare(counts, p).pValue).toBeGreaterThan(P_MIN);
    x.dispose();
  });

  it('defect 2 fixed: top-p keeps the most probable tokens', () => {
    const probs = [0.4, ...new Array<number>(20).fill(0.03)];
    // The reference: top-k probabilities flipped to ascending order, cumsum, mask (cum − p) > top_p.
    const referenceTopP = (p: number[], topP: number) => {
      const asc = [...p].map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
      let c = 0;
      return asc
        .flatMap(([v, i]) => {
          const before = c;
          c += v;
          return before > topP ? [] : [i];
        })
        .sort((a, b) => a - b);
    };
    expect(referenceTopP(probs, 0.5)).not.toContain(0);                     // the mode is dropped
    const ours = entropixProbs(probs.map(Math.log), { temperature: 1, topK: 27, topP: 0.5, minP: 0 });
    const support = Array.from(ours).flatMap((v, i) => (v > 0 ? [i] : []));
    expect(support).toContain(0);
    expect(support).toHaveLength(5);                                           // 0.4 + 4·0.03 ≥ 0.5 > 0.4 + 3·0.03
  });

  it('defect 3 fixed: the draw is exact (argmax(p/U) gives 5/6 for p = (3/4, 1/4))', () => {
    const p = [0.75, 0.25];
    const [r1, r2] = [new Rng(31), new Rng(31)];
    let biased = 0;
    let exact = 0;
    for (let i = 0; i < N; i++) {
      biased += p[0] / r1.next() > p[1] / r1.next() ? 1 : 0;
      exact += drawCategorical(p, r2) === 0 ? 1 : 0;
    }
    const sd = (q: number) => Math.sqrt((q * (1 - q)) / N);
    expect(Math.abs(biased / N - 5 / 6)).toBeLessThan(5 * sd(5 / 6));        // ≈ 0.833
    expect(Math.abs(exact / N - 0.75)).toBeLessThan(5 * sd(0.75));            // ≈ 0.75
    expect(chiSquare([biased, N - biased], p).pValue).toBeLessThan(1e-50);
    expect(chiSquare([exact, N - exact], p).pValue).toBeGreaterThan(P_MIN);
    // The sampler's own draws match its distribution (careful branch: one draw, no best-of-n).
    const x = tf.tensor1d(CASES.careful);
    const sampler = entropixSampler();
    const counts = drawCounts(sampler, x, N, 32);
    const q = entropixProbs(CASES.careful.map(Math.fround), sampler(x, { rng: new Rng(0) }).record as never);
    expect(chiSquare(counts, q).pValue).toBeGreaterThan(P_MIN);
    x.dispose();
  });

  it('adaptive branch: best of n by model log-probability', () => {
    const z = CASES.adaptive.map(Math.fround);
    const x = tf.tensor1d(z);
    const model = softmax64(z);
    for (const n of [1, 5]) {
      const sampler = entropixSampler({ nSamples: n });
      const { record } = sampler(x, { rng: new Rng(0) });
      const q = entropixProbs(z, record as never);
      // Tokens ranked by model probability: P(best is the k-th) = (1 − F_{k−1})ⁿ − (1 − F_k)ⁿ.
      const order = Array.from(model.keys()).sort((i, j) => model[j] - model[i]);
      const expected = new Array<number>(z.length).fill(0);
      let f = 0;
      for (const i of order) { expected[i] = (1 - f) ** n - (1 - f - q[i]) ** n; f += q[i]; }
      const counts = drawCounts(sampler, x, N, 40 + n);
      expect(chiSquare(counts, expected).pValue).toBeGreaterThan(P_MIN);
      const best = (record.candidates as number[]).reduce((b, t) => (model[t] > model[b] ? t : b));
      expect(sampler(x, { rng: new Rng(0) }).token).toBe(best);
    }
    x.dispose();
  });

  it('rejects bad logits and attention; leaks no tensors', () => {
    const sampler = entropixSampler();
    const x = tf.tensor1d(CASES.adaptive);
    const rng = new Rng(0);
    expect(() => sampler(x, { rng, attention: { ...ATTN, entropy: NaN } })).toThrow(
      /attention.entropy must be a finite number/,
    );
    const m = tf.tensor2d([[1, 2]]);
    expect(() => sampler(m as unknown as tf.Tensor1D, { rng })).toThrow(/\[V\]/);
    m.dispose();
    for (const b of Object.keys(CASES) as EntropixBranch[]) {
      const y = tf.tensor1d(CASES[b]);
      expectNoLeak(() => { sampler(y, { rng, attention: ATTN }); });
      y.dispose();
    }
    x.dispose();
  });
});
