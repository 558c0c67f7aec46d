/**
 * Exact draws from a categorical distribution with a seeded `Rng`, and the basic samplers built on
 * them: greedy, plain (temperature), filtered (HF-style truncation, see `filter_logits.ts`) and
 * α-entmax (Peters, Niculae & Martins 2019), whose sparse output is a truncation without a cut-off
 * parameter.
 *
 * A draw is the inverse CDF in float64: with u ~ U[0, 1) and S = Σ p, return the first i with
 * p_i > 0 and u·S < Σ_{j ≤ i} p_j. So P(i) = p_i / S up to float64 rounding (≈1e-16), and an entry
 * that is exactly 0 can never be drawn. (Entropix drew argmax(p / U) with uniform U, which is
 * biased: for p = (0.75, 0.25) it returns the first token with probability 5/6; see entropix.ts.)
 *
 * Every sampler returns `{token, record}`; the record holds plain numbers and strings only, so it
 * can go straight into a JSON trace.
 */
import * as tf from '@tensorflow/tfjs';
import { entmaxRows, readsAreCheap } from '@aes/attention';
import { checkFilterLogitsArgs, filterLogitsArray, type FilterLogitsArgs } from './filter_logits.js';
import type { Rng } from './rng.js';
import type { Sampler } from './sampler_types.js';

/**
 * Draws index i with probability p_i / Σp by the inverse CDF (float64). Exact zeros are never drawn.
 * @param probs non-negative weights, not necessarily normalised; at least one > 0.
 * @example
 * drawCategorical([0.75, 0.25], new Rng(0));   // 0 three times in four
 */
export function drawCategorical(probs: ArrayLike<number>, rng: Rng): number {
  let total = 0;
  for (let i = 0; i < probs.length; i++) {
    const v = probs[i];
    if (!(v >= 0 && v < Infinity))
      throw new RangeError(`drawCategorical: probabilities must be finite and ≥ 0, got ${v} at ${i}`);
    total += v;
  }
  if (!(total > 0)) throw new RangeError('drawCategorical: probabilities sum to 0 (nothing to draw)');
  // Scaling u by the total instead of dividing every p keeps one rounding per comparison.
  const u = rng.next() * total;
  let c = 0;
  let last = -1;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] === 0) continue;
    c += probs[i];
    last = i;
    if (u < c) return i;
  }
  return last;                                             // u ≥ c only through rounding of the sum
}

/** softmax of a row in float64; −Infinity entries get exactly 0. Throws on NaN/+∞ or a fully masked row. */
export function softmax64(row: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) {
    if (Number.isNaN(row[i]) || row[i] === Infinity)
      throw new RangeError(`softmax64: logits must be finite or -Infinity, got ${row[i]}`);
    m = Math.max(m, row[i]);
  }
  if (m === -Infinity) throw new RangeError('softmax64: every logit is -Infinity (nothing to draw)');
  const p = Float64Array.from(row, (v) => Math.exp(v - m));
  let sum = 0;
  for (const v of p) sum += v;
  return p.map((v) => v / sum);
}

/**
 * The values of one row of logits `[V]`: a Float32Array as it is, or a float32 tensor's data read
 * synchronously (host backends; on webgpu pass `await logits.data()` instead). Checks the shape.
 */
export function logitsRow(logits: tf.Tensor | Float32Array, op: string): Float32Array {
  if (logits instanceof Float32Array) {
    if (logits.length === 0) throw new RangeError(`${op}: logits must hold at least one value`);
    return logits;
  }
  if (!(logits instanceof tf.Tensor)) throw new TypeError(`${op}: logits must be a tf.Tensor or a Float32Array`);
  if (logits.dtype !== 'float32') throw new TypeError(`${op}: logits must be float32, got ${logits.dtype}`);
  if (logits.rank !== 1 || logits.shape[0] === 0)
    throw new RangeError(`${op}: logits must be [V] with V ≥ 1, got shape [${logits.shape}]`);
  if (!readsAreCheap()) {
    throw new Error(
      `${op}: the '${tf.getBackend()}' backend has no synchronous read; pass the values (await logits.data())`,
    );
  }
  return logits.dataSync() as Float32Array;
}

/** Draws a token from softmax(logits) exactly (float64 softmax, inverse CDF). @param logits float32 `[V]`. */
export function sampleFromLogits(logits: tf.Tensor1D | Float32Array, rng: Rng): number {
  return drawCategorical(softmax64(logitsRow(logits, 'sampleFromLogits')), rng);
}

function checkTemperature(t: number, op: string): void {
  if (typeof t !== 'number' || !(t > 0) || !Number.isFinite(t))
    throw new RangeError(`${op}: temperature must be a finite number > 0, got ${String(t)}`);
}

/** The most probable token (the first one at a tie); uses no randomness. */
export function greedySampler(): Sampler {
  return (logits) => {
    const p = softmax64(logitsRow(logits, 'greedySampler'));
    let token = 0;
    for (let i = 1; i < p.length; i++) if (p[i] > p[token]) token = i;
    return { token, record: { sampler: 'greedy', p: p[token] } };
  };
}

/** Options of `plainSampler`. */
export interface PlainSamplerArgs {
  /** Softmax temperature, > 0. Default 1. */
  temperature?: number;
}

/** Ancestral sampling from softmax(logits / T), with no truncation. */
export function plainSampler(args: PlainSamplerArgs = {}): Sampler {
  const { temperature = 1 } = args;
  checkTemperature(temperature, 'plainSampler');
  return (logits, ctx) => {
    const row = logitsRow(logits, 'plainSampler');
    const p = softmax64(Float64Array.from(row, (v) => v / temperature));
    const token = drawCategorical(p, ctx.rng);
    return { token, record: { sampler: 'plain', temperature, p: p[token] } };
  };
}

/** Record name of each truncating option, when it is active (not at its no-op value). */
const STAGE_NAMES: Array<[keyof FilterLogitsArgs, string, (v: number) => boolean]> = [
  ['topK', 'topk', (v) => v > 0],
  ['topP', 'topp', (v) => v < 1],
  ['minP', 'minp', (v) => v > 0],
  ['typicalP', 'typical', (v) => v < 1],
  ['epsilon', 'epsilon', (v) => v > 0],
  ['eta', 'eta', (v) => v > 0],
];

/**
 * `filterLogits` (same options, same semantics, on the row in float64), then an exact draw from
 * the renormalised survivors. The record's `sampler` names the active filters, e.g. 'topk+topp'
 * ('plain' when none is active); `kept` is how many tokens survived and `p` the drawn token's
 * probability after filtering.
 * @example
 * const sample = filteredSampler({temperature: 0.8, topP: 0.9});
 * const {token, record} = sample(logits, {rng: new Rng(1)});
 */
export function filteredSampler(args: FilterLogitsArgs): Sampler {
  const opts = checkFilterLogitsArgs(args, 'filteredSampler');
  const active = STAGE_NAMES.filter(([k, , on]) => opts[k] !== undefined && on(opts[k] as number)).map(
    ([, name]) => name,
  );
  const name = active.length > 0 ? active.join('+') : 'plain';
  return (logits, ctx) => {
    const x = filterLogitsArray(logitsRow(logits, 'filteredSampler'), opts);
    const p = softmax64(x);
    const token = drawCategorical(p, ctx.rng);
    const kept = x.reduce((n, v) => n + (v > -Infinity ? 1 : 0), 0);
    return { token, record: { sampler: name, ...opts, kept, p: p[token] } };
  };
}

/** Options of `entmaxSampler`. */
export interface EntmaxSamplerArgs {
  /** α ≥ 1: 1 softmax, 1.5 entmax15, 2 sparsemax; larger α is sparser. */
  alpha: number;
  /** Scores are logits / T, T > 0. Default 1. */
  temperature?: number;
}

/**
 * Draws from α-entmax(logits / T), computed on the host (`entmaxRows` from @aes/attention: float64
 * solve, float32 values; softmax64 at α = 1). Entries outside the support are exactly 0 and are
 * never drawn; `kept` in the record is the support size.
 */
export function entmaxSampler(args: EntmaxSamplerArgs): Sampler {
  const { alpha, temperature = 1 } = args ?? ({} as EntmaxSamplerArgs);
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha < 1) {
    throw new RangeError(
      `entmaxSampler: alpha must be a finite number ≥ 1 (1 = softmax, 2 = sparsemax), got ${String(alpha)}`,
    );
  }
  checkTemperature(temperature, 'entmaxSampler');
  return (logits, ctx) => {
    const z = Float32Array.from(logitsRow(logits, 'entmaxSampler'), (v) => v / temperature);
    const p = alpha === 1 ? softmax64(z) : Float64Array.from(entmaxRows(z, 1, z.length, alpha));
    const token = drawCategorical(p, ctx.rng);
    const kept = p.reduce((n, v) => n + (v > 0 ? 1 : 0), 0);
    return { token, record: { sampler: 'entmax', alpha, temperature, kept, p: p[token] } };
  };
}
