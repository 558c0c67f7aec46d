/**
 * Truncation filters for sampling, with the semantics of the Hugging Face transformers logits
 * warpers: temperature, top-k, top-p (nucleus; Holtzman et al. 2020), min-p (Nguyen et al. 2024),
 * typical (Meister et al. 2023), ε- and η-sampling (Hewitt et al. 2022). A removed entry becomes
 * −Infinity, so `softmax` of the result is the filtered, renormalised distribution.
 *
 * Order (fixed, the order in which `generate` builds them): temperature, topK, topP, minP,
 * typicalP, epsilon, eta. Each filter sees the previous one's output, so probabilities are
 * recomputed (renormalised) after every stage.
 *
 * Rules per row, with p = softmax(x) of the row as it reaches the stage:
 * - temperature: x ← x / T.
 * - topK: keep x ≥ (k-th largest x), k = min(max(topK, minTokensToKeep), V); ties at the cut are kept.
 * - topP: sort ascending (stable: among equal logits the lower index comes first), c = cumsum(p);
 *   remove c ≤ 1 − topP except the last minTokensToKeep. This keeps the smallest set of most
 *   probable tokens whose mass is ≥ topP. At a tie across the cut HF's result depends on the order
 *   torch.sort gives equal values, which it does not promise; we fix the stable order, so the
 *   higher indices survive.
 * - minP: remove p < minP · max p, except the minTokensToKeep most probable (lower index first at ties).
 * - typicalP: s = |−ln p − H|, sort s ascending (stable), c = cumsum(p in that order),
 *   cut = s at position #(c < typicalP) (capped at V − 1); remove s > cut except the first
 *   minTokensToKeep positions.
 * - epsilon: remove p < ε unless x ≥ (minTokensToKeep-th largest x).
 * - eta: the same with cut-off min(η, √η · e^{−H}) (H in nats), as HF's code computes it (its
 *   docstring says √(η e^{−H})).
 *
 * Arithmetic is float64 on the row's data (the result is rounded to float32 once, at the end); HF
 * works in the logits' dtype, so the two can differ only when a cumulative sum falls within
 * rounding of a cut. The filters read the data synchronously (`dataSync`): they are for sampling on
 * the cpu and wasm backends, where V is a vocabulary row, not for graph building.
 */
import * as tf from '@tensorflow/tfjs';

/** Options of `filterLogits`. Leave an option out (or `undefined`) to skip its stage. */
export interface FilterLogitsArgs {
  /** Divide the logits by T > 0 first (T = 1: no change). */
  temperature?: number;
  /** Keep the k largest logits (ties at the k-th kept); integer ≥ 0, 0 disables; k ≥ V is a no-op. */
  topK?: number;
  /** Nucleus mass in (0, 1]; 1 is a no-op. */
  topP?: number;
  /** Keep p ≥ minP · p_max; in [0, 1], 0 is a no-op. */
  minP?: number;
  /** Typical-decoding mass in (0, 1]; 1 is a no-op. */
  typicalP?: number;
  /** ε-sampling: keep p ≥ ε; in [0, 1), 0 is a no-op. */
  epsilon?: number;
  /** η-sampling: keep p ≥ min(η, √η e^{−H}); in [0, 1), 0 is a no-op. */
  eta?: number;
  /** Lower bound on the number of tokens the truncating stages keep; integer ≥ 1, default 1. */
  minTokensToKeep?: number;
}

/** The option names, in the order their stages are applied (minTokensToKeep last: not a stage). */
export const FILTER_LOGITS_KEYS: readonly (keyof FilterLogitsArgs)[] = Object.freeze([
  'temperature', 'topK', 'topP', 'minP', 'typicalP', 'epsilon', 'eta', 'minTokensToKeep',
] as const);

export const FILTER_LOGITS_DEFAULTS: Readonly<Pick<Required<FilterLogitsArgs>, 'minTokensToKeep'>> =
  Object.freeze({ minTokensToKeep: 1 });

type Check = (v: number) => boolean;
const RULES: Record<keyof FilterLogitsArgs, [Check, string]> = {
  temperature: [(v) => v > 0 && Number.isFinite(v), 'a finite number > 0'],
  topK: [(v) => Number.isInteger(v) && v >= 0, 'an integer ≥ 0 (0 disables)'],
  topP: [(v) => v > 0 && v <= 1, 'in (0, 1]'],
  minP: [(v) => v >= 0 && v <= 1, 'in [0, 1]'],
  typicalP: [(v) => v > 0 && v <= 1, 'in (0, 1]'],
  epsilon: [(v) => v >= 0 && v < 1, 'in [0, 1) (0 disables)'],
  eta: [(v) => v >= 0 && v < 1, 'in [0, 1) (0 disables)'],
  minTokensToKeep: [(v) => Number.isInteger(v) && v >= 1, 'an integer ≥ 1'],
};

/**
 * Checks filter options and returns them with `minTokensToKeep` filled in. Throws a RangeError
 * naming the option and its allowed range, or listing the valid keys for an unknown one.
 */
export function checkFilterLogitsArgs(
  opts: FilterLogitsArgs,
  op = 'filterLogits',
): FilterLogitsArgs & { minTokensToKeep: number } {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) {
    throw new TypeError(`${op}: options must be an object with keys ${FILTER_LOGITS_KEYS.join(', ')}`);
  }
  for (const [key, value] of Object.entries(opts)) {
    if (!Object.hasOwn(RULES, key)) {
      throw new RangeError(`${op}: unknown option '${key}'; valid options are ${FILTER_LOGITS_KEYS.join(', ')}`);
    }
    if (value === undefined) continue;
    const [ok, what] = RULES[key as keyof FilterLogitsArgs];
    if (typeof value !== 'number' || !ok(value)) {
      throw new RangeError(`${op}: ${key} must be ${what}, got ${String(value)}`);
    }
  }
  return { ...FILTER_LOGITS_DEFAULTS, ...dropUndefined(opts) };
}

function dropUndefined(o: FilterLogitsArgs): FilterLogitsArgs {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as FilterLogitsArgs;
}

/**
 * Applies temperature and the truncation filters to rows of logits (see the file comment for each
 * rule and the order).
 *
 * @param logits float32 `[N, V]` (or `[V]`); entries are finite or −Infinity (masked).
 * @returns a new float32 tensor of the same shape: scaled logits, removed entries −Infinity. A row
 *   with one finite entry keeps it; a fully masked row stays fully masked.
 * @example
 * const x = tf.tensor2d([[3, 2, 1, 0]]);
 * filterLogits(x, {temperature: 0.7, topK: 3, topP: 0.9}).print();
 */
export function filterLogits(logits: tf.Tensor, opts: FilterLogitsArgs): tf.Tensor {
  const args = checkFilterLogitsArgs(opts);
  if (!(logits instanceof tf.Tensor)) throw new TypeError('filterLogits: logits must be a tf.Tensor');
  if (logits.dtype !== 'float32') throw new TypeError(`filterLogits: logits must be float32, got ${logits.dtype}`);
  if ((logits.rank !== 1 && logits.rank !== 2) || logits.shape[logits.rank - 1] === 0) {
    throw new RangeError(`filterLogits: logits must be [N, V] or [V] with V ≥ 1, got shape [${logits.shape}]`);
  }
  const v = logits.shape[logits.rank - 1];
  const data = logits.dataSync();
  const out = new Float32Array(data.length);
  for (let start = 0; start < data.length; start += v) out.set(filterRow(data.subarray(start, start + v), args), start);
  return tf.tensor(out, logits.shape, 'float32');
}

/**
 * `filterLogits` on one row given as numbers, in float64, without tensors (what the samplers use).
 * Options are checked here too. Throws on NaN or +Infinity entries.
 */
export function filterLogitsArray(row: ArrayLike<number>, opts: FilterLogitsArgs): Float64Array {
  return filterRow(row, checkFilterLogitsArgs(opts, 'filterLogitsArray'));
}

function filterRow(row: ArrayLike<number>, a: FilterLogitsArgs & { minTokensToKeep: number }): Float64Array {
  const x = Float64Array.from(row);
  for (const value of x) {
    if (Number.isNaN(value) || value === Infinity) {
      throw new RangeError(`filterLogits: logits must be finite or -Infinity, got ${value}`);
    }
  }
  if (!x.some(Number.isFinite)) return x;                  // nothing to keep; leave the row masked
  const n = a.minTokensToKeep;
  if (a.temperature !== undefined && a.temperature !== 1) for (let i = 0; i < x.length; i++) x[i] /= a.temperature;
  if (a.topK) topK(x, Math.max(a.topK, n));
  if (a.topP !== undefined && a.topP < 1) topP(x, a.topP, n);
  if (a.minP) minP(x, a.minP, n);
  if (a.typicalP !== undefined && a.typicalP < 1) typical(x, a.typicalP, n);
  if (a.epsilon) probCut(x, a.epsilon, n);
  if (a.eta) probCut(x, Math.min(a.eta, Math.sqrt(a.eta) * Math.exp(-entropyOf(softmaxOf(x)))), n);
  return x;
}

/** softmax of a float64 row with −Infinity entries (at least one finite). */
function softmaxOf(x: Float64Array): Float64Array {
  let m = -Infinity;
  for (const v of x) m = Math.max(m, v);
  const p = x.map((v) => Math.exp(v - m));
  let sum = 0;
  for (const v of p) sum += v;
  return p.map((v) => v / sum);
}

/** Shannon entropy in nats of a probability row (0 ln 0 = 0). */
function entropyOf(p: Float64Array): number {
  let h = 0;
  for (const v of p) if (v > 0) h -= v * Math.log(v);
  return h;
}

/** Indices of `key` sorted ascending, ties by index (a stable sort). */
function argsortAsc(key: Float64Array): number[] {
  return Array.from(key.keys()).sort((i, j) => key[i] - key[j] || i - j);
}

/** Value of the k-th largest entry (k ≥ 1, capped at the length). */
function kthLargest(x: Float64Array, k: number): number {
  const sorted = Float64Array.from(x).sort();              // typed-array sort is numeric, ascending
  return sorted[sorted.length - Math.min(k, sorted.length)];
}

function topK(x: Float64Array, k: number): void {
  const cut = kthLargest(x, k);
  for (let i = 0; i < x.length; i++) if (x[i] < cut) x[i] = -Infinity;
}

function topP(x: Float64Array, mass: number, n: number): void {
  const order = argsortAsc(x);
  const p = softmaxOf(x);
  let c = 0;
  // The last n positions of the ascending order (the n most probable) are never removed.
  for (let r = 0; r < order.length - n; r++) {
    c += p[order[r]];
    if (c <= 1 - mass) x[order[r]] = -Infinity;
  }
}

function minP(x: Float64Array, minp: number, n: number): void {
  const p = softmaxOf(x);
  let pMax = 0;
  for (const v of p) pMax = Math.max(pMax, v);
  const protect = new Set(argsortAsc(p.map((v) => -v)).slice(0, n));   // n most probable, lower index first
  for (let i = 0; i < x.length; i++) if (p[i] < minp * pMax && !protect.has(i)) x[i] = -Infinity;
}

function typical(x: Float64Array, mass: number, n: number): void {
  const p = softmaxOf(x);
  const h = entropyOf(p);
  // Distance of each surprisal from the entropy; masked entries (p = 0) get +Infinity and sort last.
  const s = p.map((v) => (v > 0 ? Math.abs(-Math.log(v) - h) : Infinity));
  const order = argsortAsc(s);
  let c = 0;
  let below = 0;                                           // #(cumulative mass < typicalP)
  for (const i of order) {
    c += p[i];
    if (c < mass) below++;
  }
  const cut = s[order[Math.min(below, order.length - 1)]];
  for (let r = n; r < order.length; r++) if (s[order[r]] > cut) x[order[r]] = -Infinity;
}

/** ε/η rule: remove p < cut unless the logit is at least the n-th largest (ties kept). */
function probCut(x: Float64Array, cut: number, n: number): void {
  const p = softmaxOf(x);
  const keepFrom = kthLargest(x, n);
  for (let i = 0; i < x.length; i++) if (p[i] < cut && x[i] < keepFrom) x[i] = -Infinity;
}
