/**
 * An Entropix-style adaptive sampler (xjdr, Oct 2024): the entropy H and varentropy V of the
 * next-token distribution (and, when the model reports them, attention statistics) choose a
 * decoding strategy per step.
 *
 * Units: H = −Σ p log₂ p in bits, V = Σ p (log₂ p + H)² in bits² (computed in float64 on the host row).
 * Attention entropy arrives in nats (`AttentionSummary`) and is converted to bits (÷ ln 2), its
 * varentropy to bits² (÷ ln² 2); agreement and interaction strength are unit-free.
 *
 * Regions of the (H, V) plane, with the default thresholds (all in `EntropixConfig`):
 *   argmax      H < 0.1 and V < 0.1      take the most probable token
 *   careful     H > 3   and V < 0.1      emit `clarifyingToken` if set, else T = min(1.5, T₀(1.3 + 0.2·aH))
 *   exploring   H < 5   and V > 5        T = min(1.5, T₀(1.2 + 0.3·IS)), k = max(5, ⌊K₀(1 + 0.5(1 − agr))⌋)
 *   resampling  H ≥ 5   and V > 5        T = max(2, T₀(2 + 0.5·aV)), top-p = max(0.5, P₀ − 0.2·aH)
 *   adaptive    everything else          T = T₀(1 + 0.3(H + V) + 0.2(aH + aV) − 0.2·agr),
 *               top-p = clip(P₀(1 + 0.1·aV), 0.1, 1), k = clip(round(K₀(1 + 0.3·IS − 0.2·agr)), 1, 100),
 *               min-p = clip(m₀(1 − 0.5(H + V)), 0.01, 0.5); best of n draws by log-probability
 *               under the model's softmax.
 * The four named regions are disjoint whenever lowEntropy ≤ highEntropy and lowVarentropy ≤
 * highVarentropy (checked), so the order of the tests does not matter and every branch is reachable.
 *
 * Defects of the reference code that are fixed here (each has a test in entropix_test.ts):
 * 1. min-p set removed logits to −∞ but the draw used the probabilities computed before, so it had
 *    no effect. Here min-p is a stage of `filterLogits` and the draw renormalises after it.
 * 2. top-p was applied to the ascending order of the top-k probabilities, dropping the most
 *    probable tokens. Here top-p keeps the most probable (HF semantics).
 * 3. the draw was argmax(p / U) with U uniform, which over-samples the mode (5/6 instead of 3/4 for
 *    p = (0.75, 0.25)). Here the draw is the exact inverse CDF (`drawCategorical`).
 * 4. the branch conditions overlapped, so the order made one branch unreachable; here they are
 *    disjoint. (Also: bits and nats were mixed; here everything compared with a threshold is in bits.)
 *
 * The truncation order is `filterLogits`'s: temperature, top-k, top-p, min-p (the reference
 * applied min-p first; min-p's cut p ≥ m·p_max does not change under renormalisation, so only
 * top-p's set can differ).
 */
import { filterLogitsArray } from './filter_logits.js';
import { freeEnergyStats } from './free_energy.js';
import { drawCategorical, logitsRow, softmax64 } from './sample.js';
import type { AttentionSummary, Sampler } from './sampler_types.js';

/** Configuration of `entropixSampler`. Thresholds: entropy in bits, varentropy in bits². */
export interface EntropixConfig {
  /** Base temperature T₀. */
  temperature: number;
  /** Base nucleus mass P₀, in (0, 1]. */
  topP: number;
  /** Base top-k K₀ (integer ≥ 1). */
  topK: number;
  /** Base min-p m₀, in [0, 1]. */
  minP: number;
  /** Entropy (bits) below which, with low varentropy, the argmax is taken. */
  lowEntropy: number;
  /** Varentropy (bits²) below which a step counts as low-varentropy. */
  lowVarentropy: number;
  /** Entropy (bits) above which a low-varentropy step is 'careful'. */
  highEntropy: number;
  /** Entropy (bits) splitting high-varentropy steps: below, 'exploring'; at or above, 'resampling'. */
  resampleEntropy: number;
  /** Varentropy (bits²) above which a step counts as high-varentropy. */
  highVarentropy: number;
  /** Token emitted in the 'careful' branch (Llama 3 used id 2564); null: raise the temperature instead. */
  clarifyingToken: number | null;
  /** Draws in the 'adaptive' branch; the most probable one under the model is returned. */
  nSamples: number;
  /** Coefficients of the branch formulas (pass any subset to override). */
  coefficients: EntropixCoefficients;
}

/**
 * Coefficients of the branch formulas (Entropix reference values; dimensionless, the metrics they
 * multiply are in bits: aH attention entropy, aV attention varentropy, IS interaction strength,
 * agr agreement, H + V logit entropy + varentropy).
 *   careful:    T = min(carefulTMax, T₀(carefulT0 + carefulTAttnH·aH))
 *   exploring:  T = min(exploreTMax, T₀(exploreT0 + exploreTIS·IS)),
 *               k = max(exploreKMin, ⌊K₀(1 + exploreKAgree(1 − agr))⌋)
 *   resampling: T = max(resampleTMin, T₀(resampleT0 + resampleTAttnV·aV)),
 *               p = max(resamplePMin, P₀ − resamplePAttnH·aH)
 *   adaptive:   T = T₀(1 + adaptTLogit(H+V) + adaptTAttn(aH+aV) − adaptTAgree·agr),
 *               k = clip(round(K₀(1 + adaptKIS·IS − adaptKAgree·agr)), 1, adaptKMax),
 *               p = clip(P₀(1 + adaptPAttnV·aV), adaptPMin, 1),
 *               m = clip(m₀(1 − adaptMinPLogit(H+V)), adaptMinPLo, adaptMinPHi)
 */
export interface EntropixCoefficients {
  carefulT0: number;
  carefulTAttnH: number;
  carefulTMax: number;
  exploreT0: number;
  exploreTIS: number;
  exploreTMax: number;
  exploreKAgree: number;
  exploreKMin: number;
  resampleT0: number;
  resampleTAttnV: number;
  resampleTMin: number;
  resamplePAttnH: number;
  resamplePMin: number;
  adaptTLogit: number;
  adaptTAttn: number;
  adaptTAgree: number;
  adaptKIS: number;
  adaptKAgree: number;
  adaptKMax: number;
  adaptPAttnV: number;
  adaptPMin: number;
  adaptMinPLogit: number;
  adaptMinPLo: number;
  adaptMinPHi: number;
}

export const ENTROPIX_COEFFICIENTS: Readonly<EntropixCoefficients> = Object.freeze({
  carefulT0: 1.3, carefulTAttnH: 0.2, carefulTMax: 1.5,
  exploreT0: 1.2, exploreTIS: 0.3, exploreTMax: 1.5, exploreKAgree: 0.5, exploreKMin: 5,
  resampleT0: 2, resampleTAttnV: 0.5, resampleTMin: 2, resamplePAttnH: 0.2, resamplePMin: 0.5,
  adaptTLogit: 0.3, adaptTAttn: 0.2, adaptTAgree: 0.2, adaptKIS: 0.3, adaptKAgree: 0.2, adaptKMax: 100,
  adaptPAttnV: 0.1, adaptPMin: 0.1, adaptMinPLogit: 0.5, adaptMinPLo: 0.01, adaptMinPHi: 0.5,
});

/** The Entropix reference code's defaults (the file comment lists its branch rules). */
export const ENTROPIX_DEFAULTS: Readonly<EntropixConfig> = Object.freeze({
  temperature: 0.666, topP: 0.9, topK: 27, minP: 0.03,
  lowEntropy: 0.1, lowVarentropy: 0.1, highEntropy: 3, resampleEntropy: 5, highVarentropy: 5,
  clarifyingToken: null, nSamples: 5, coefficients: ENTROPIX_COEFFICIENTS,
});

export type EntropixBranch = 'argmax' | 'careful' | 'exploring' | 'resampling' | 'adaptive';

/** What the branch rules read: logit statistics in bits, attention statistics converted to bits. */
export interface EntropixMetrics {
  entropyBits: number;
  varentropyBits: number;
  attnEntropyBits: number;
  attnVarentropyBits: number;
  agreement: number;
  interactionStrength: number;
}

/** Truncation settings of one draw (the `filterLogits` options Entropix uses). */
export interface EntropixSampling {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
}

type Check = [(v: unknown) => boolean, string];
const num = (lo: number, hi = Infinity, open = false): Check => [
  (v) => typeof v === 'number' && (open ? v > lo : v >= lo) && v <= hi && Number.isFinite(v),
  `a number in ${open ? '(' : '['}${lo}, ${hi === Infinity ? '∞)' : `${hi}]`}`,
];
const int = (lo: number): Check => [(v) => Number.isInteger(v) && (v as number) >= lo, `an integer ≥ ${lo}`];
const CONFIG_RULES: Record<keyof EntropixConfig, Check> = {
  temperature: num(0, Infinity, true), topP: num(0, 1, true), topK: int(1), minP: num(0, 1),
  lowEntropy: num(0), lowVarentropy: num(0), highEntropy: num(0), resampleEntropy: num(0), highVarentropy: num(0),
  clarifyingToken: [(v) => v === null || (Number.isInteger(v) && (v as number) >= 0), 'null or an integer ≥ 0'],
  nSamples: int(1),
  coefficients: [(v) => typeof v === 'object' && v !== null, 'an object of numbers (see EntropixCoefficients)'],
};

/** Merges a partial config over the defaults and checks it (unknown keys, ranges, disjoint regions). */
export function checkEntropixConfig(config: Partial<EntropixConfig> = {}): Readonly<EntropixConfig> {
  for (const key of Object.keys(config)) {
    if (!Object.hasOwn(CONFIG_RULES, key)) {
      throw new RangeError(
        `entropix: unknown option '${key}'; valid options are ${Object.keys(CONFIG_RULES).join(', ')}`,
      );
    }
  }
  const coefficients = { ...ENTROPIX_COEFFICIENTS, ...config.coefficients };
  for (const [k, v] of Object.entries(coefficients)) {
    if (!Object.hasOwn(ENTROPIX_COEFFICIENTS, k))
      throw new RangeError(
        `entropix: unknown coefficient '${k}'; valid: ${Object.keys(ENTROPIX_COEFFICIENTS).join(', ')}`,
      );
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new RangeError(`entropix: coefficient ${k} must be a finite number, got ${String(v)}`);
  }
  const cfg = { ...ENTROPIX_DEFAULTS, ...config, coefficients: Object.freeze(coefficients) };
  for (const [key, [ok, what]] of Object.entries(CONFIG_RULES)) {
    const v = cfg[key as keyof EntropixConfig];
    if (!ok(v)) throw new RangeError(`entropix: ${key} must be ${what}, got ${String(v)}`);
  }
  // Without these the low/high regions overlap and the branch would depend on the test order.
  if (cfg.lowEntropy > cfg.highEntropy)
    throw new RangeError(`entropix: lowEntropy (${cfg.lowEntropy}) must be ≤ highEntropy (${cfg.highEntropy})`);
  if (cfg.lowVarentropy > cfg.highVarentropy) {
    throw new RangeError(
      `entropix: lowVarentropy (${cfg.lowVarentropy}) must be ≤ highVarentropy (${cfg.highVarentropy})`,
    );
  }
  return Object.freeze(cfg);
}

/** The region of (H bits, V bits²): the four named regions are disjoint, the rest is 'adaptive'. */
export function entropixBranch(
  entropyBits: number,
  varentropyBits: number,
  config: Readonly<EntropixConfig> = ENTROPIX_DEFAULTS,
): EntropixBranch {
  const [h, v, c] = [entropyBits, varentropyBits, config];
  const lowV = v < c.lowVarentropy;
  const highV = v > c.highVarentropy;
  if (lowV && h < c.lowEntropy) return 'argmax';
  if (lowV && h > c.highEntropy) return 'careful';
  if (highV && h < c.resampleEntropy) return 'exploring';
  if (highV && h >= c.resampleEntropy) return 'resampling';
  return 'adaptive';
}

const clip = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/** Truncation settings of a branch (see the file comment); null for 'argmax', which does not draw. */
export function entropixSampling(
  branch: EntropixBranch,
  m: EntropixMetrics,
  c: Readonly<EntropixConfig>,
): EntropixSampling | null {
  const base = { temperature: c.temperature, topK: c.topK, topP: c.topP, minP: c.minP };
  const { attnEntropyBits: aH, attnVarentropyBits: aV, agreement: agr, interactionStrength: is } = m;
  const k = c.coefficients;
  switch (branch) {
    case 'argmax':
      return null;
    case 'careful':
      return { ...base, temperature: Math.min(k.carefulTMax, c.temperature * (k.carefulT0 + k.carefulTAttnH * aH)) };
    case 'exploring':
      return {
        ...base,
        temperature: Math.min(k.exploreTMax, c.temperature * (k.exploreT0 + k.exploreTIS * is)),
        topK: Math.max(k.exploreKMin, Math.floor(c.topK * (1 + k.exploreKAgree * (1 - agr)))),
      };
    case 'resampling':
      return {
        ...base,
        temperature: Math.max(k.resampleTMin, c.temperature * (k.resampleT0 + k.resampleTAttnV * aV)),
        topP: Math.max(k.resamplePMin, c.topP - k.resamplePAttnH * aH),
      };
    case 'adaptive': {
      const logitU = m.entropyBits + m.varentropyBits;
      // agreement ≤ 2 (a mean absolute difference of probabilities), so with the defaults the factor stays ≥ 0.6.
      const t = c.temperature * (1 + k.adaptTLogit * logitU + k.adaptTAttn * (aH + aV) - k.adaptTAgree * agr);
      return {
        temperature: Math.max(t, 1e-3 * c.temperature),
        topK: clip(Math.round(c.topK * (1 + k.adaptKIS * is - k.adaptKAgree * agr)), 1, k.adaptKMax),
        topP: clip(c.topP * (1 + k.adaptPAttnV * aV), k.adaptPMin, 1),
        minP: clip(c.minP * (1 - k.adaptMinPLogit * logitU), k.adaptMinPLo, k.adaptMinPHi),
      };
    }
  }
}

/** The distribution Entropix draws from: softmax of `filterLogits(row, sampling)`, in float64. */
export function entropixProbs(row: ArrayLike<number>, s: EntropixSampling): Float64Array {
  return softmax64(filterLogitsArray(row, { temperature: s.temperature, topK: s.topK, topP: s.topP, minP: s.minP }));
}

/** Logit metrics from the logits, attention metrics from the context (zeros when absent). */
function metricsOf(row: Float32Array, attention: AttentionSummary | undefined): EntropixMetrics {
  const { entropy, varentropy } = freeEnergyStats(row, 1);             // nats, float64
  const [h, v] = [entropy / Math.LN2, varentropy / Math.LN2 ** 2];
  const a = attention ?? { entropy: 0, varentropy: 0, agreement: 0, interactionStrength: 0 };
  for (const [k, x] of Object.entries(a)) {
    if (typeof x !== 'number' || !Number.isFinite(x))
      throw new RangeError(`entropixSampler: attention.${k} must be a finite number, got ${String(x)}`);
  }
  return {
    entropyBits: h, varentropyBits: v,
    attnEntropyBits: a.entropy / Math.LN2, attnVarentropyBits: a.varentropy / Math.LN2 ** 2,
    agreement: a.agreement, interactionStrength: a.interactionStrength,
  };
}

/**
 * The Entropix sampler: measures H and V of the logits, picks the branch and draws exactly.
 * The record holds the branch, the metrics (bits), `attention: 'given' | 'missing'` (missing
 * attention statistics are taken as zeros), the truncation settings used (null for argmax and for
 * the clarifying token), `kept` (tokens surviving truncation), `p` (drawn token's probability in
 * the truncated distribution), `pModel` (its probability under softmax(logits)) and, in the
 * adaptive branch, the `candidates` drawn.
 * @example
 * const sample = entropixSampler({clarifyingToken: 2564});
 * const {token, record} = sample(logits, {rng: new Rng(7), attention});
 */
export function entropixSampler(config: Partial<EntropixConfig> = {}): Sampler {
  const cfg = checkEntropixConfig(config);
  return (logits, ctx) => {
    const row = logitsRow(logits, 'entropixSampler');
    const m = metricsOf(row, ctx.attention);
    const branch = entropixBranch(m.entropyBits, m.varentropyBits, cfg);
    const record: Record<string, unknown> = {
      sampler: 'entropix', branch, ...m, attention: ctx.attention ? 'given' : 'missing',
      temperature: null, topK: null, topP: null, minP: null,
    };
    const model = softmax64(row);
    if (branch === 'argmax') {
      let token = 0;                                         // the first maximum
      for (let i = 1; i < model.length; i++) if (model[i] > model[token]) token = i;
      return { token, record: { ...record, kept: 1, p: 1, pModel: model[token] } };
    }
    if (branch === 'careful' && cfg.clarifyingToken !== null) {
      // The reference emitted it only if the previous token was not already the clarifying one. A
      // Sampler sees no history, so that guard belongs to the caller (e.g. after emitting it, use
      // a second entropixSampler without clarifyingToken for the next step).
      const token = cfg.clarifyingToken;
      if (token >= row.length)
        throw new RangeError(`entropixSampler: clarifyingToken ${token} is outside the vocabulary (V = ${row.length})`);
      return { token, record: { ...record, clarifying: true, kept: null, p: null, pModel: model[token] } };
    }
    const s = entropixSampling(branch, m, cfg) as EntropixSampling;
    const p = entropixProbs(row, s);
    let token = drawCategorical(p, ctx.rng);
    if (branch === 'adaptive') {
      // Best of n by log-probability under the untruncated softmax at T = 1 (first drawn wins ties).
      const candidates = [token];
      for (let i = 1; i < cfg.nSamples; i++) candidates.push(drawCategorical(p, ctx.rng));
      token = candidates.reduce((best, t) => (model[t] > model[best] ? t : best));
      record.candidates = candidates;
    }
    const kept = p.reduce((n, v) => n + (v > 0 ? 1 : 0), 0);
    return { token, record: { ...record, ...s, kept, p: p[token], pModel: model[token] } };
  };
}
