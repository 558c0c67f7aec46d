/**
 * Adaptive entropy sparsity (AES) schedule: per attention head, a sparsity level ζ ∈ [0, ζmax]
 * chosen from the head's normalised Shannon entropy S = H / ln(n) ∈ [0, 1] (n visible keys).
 * A confident head (low S) gets ζ = ζmax, i.e. sparsemax, which prunes the tail; a diffuse head
 * (high S) gets ζ = 0, i.e. softmax, which keeps every key. Between S0 and Smax a continuous,
 * monotone non-increasing D(S) interpolates, and the entmax exponent is α = 1 + ζ/ζmax ∈ [1, 2]:
 *
 *     ζ(S) = ζmax for S ≤ S0,   D(S) for S0 < S < Smax,   0 for S ≥ Smax.
 *
 * Every shape, built-in or user-supplied, is a mathjs formula in S, S0, Smax, zmax, so there is
 * one code path: the formula is parsed once, numbers come from the compiled mathjs expression and
 * tensors from a walk of the same tree mapped onto tf ops (differentiable in S). Because configs
 * arrive from JSON and the CLI, the formula is checked on a grid at construction (finite, within
 * [0, ζmax], non-increasing, meeting ζmax at S0 and 0 at Smax) instead of failing mid-training.
 */
import * as tf from '@tensorflow/tfjs';
import { compileFormula, type Value } from './formula.js';

/** Built-in D(S) shapes; any other string is read as a formula. */
export type ScheduleShape = 'linear' | 'cosine' | 'logistic';

export interface AesScheduleArgs {
  /** At or below this normalised entropy ζ = zmax (sparsemax). In [0, Smax). */
  S0?: number;
  /** At or above this normalised entropy ζ = 0 (softmax). In (S0, 1]. */
  Smax?: number;
  /** Largest sparsity level ζmax, finite and > 0; α = 1 + ζ/ζmax, so it scales ζ only. */
  zmax?: number;
  /** A built-in name, or a mathjs formula for D(S) in S, S0, Smax, zmax. */
  shape?: ScheduleShape | string;
}
export const AES_SCHEDULE_DEFAULTS: Readonly<Required<AesScheduleArgs>> = Object.freeze({
  S0: 0.1, Smax: 0.6, zmax: 1, shape: 'cosine',
});

/**
 * Built-in formulas. The logistic step 1/(1 + exp(k(S − c))), c = (S0+Smax)/2, k = 10/(Smax−S0),
 * equals (1 − tanh(k(S − c)/2))/2; dividing the tanh by its endpoint value tanh(2.5) rescales the
 * step affinely so it hits zmax at S0 and 0 at Smax exactly (plain tanh(±2.5) would miss by ~0.7%).
 */
const BUILTIN: ReadonlyMap<string, string> = new Map([
  ['linear', 'zmax * (Smax - S) / (Smax - S0)'],
  ['cosine', 'zmax * (1 + cos(pi * (S - S0) / (Smax - S0))) / 2'],
  ['logistic', 'zmax * (1 - tanh(2.5 * (2 * S - S0 - Smax) / (Smax - S0)) / tanh(2.5)) / 2'],
]);

export interface AesSchedule {
  readonly args: Readonly<Required<AesScheduleArgs>>;
  /** The D(S) formula actually used (a built-in name expands to its formula). */
  readonly formula: string;
  /** ζ(S): zmax for S ≤ S0, 0 for S ≥ Smax, D(S) between; NaN propagates. */
  zeta(S: number): number;
  /** α(S) = 1 + ζ(S)/zmax ∈ [1, 2]: 2 is sparsemax, 1 softmax. */
  alpha(S: number): number;
  /** ζ elementwise on a float32 tensor, differentiable in S (zero gradient on the flat parts). */
  zetaTensor(S: tf.Tensor): tf.Tensor;
  /**
   * ζ with the interval [S0, Smax] replaced by [lo, hi] (numbers or tensors that broadcast to S,
   * lo ≤ hi; lo = hi is a step from zmax to 0 there), differentiable in S, lo and hi.
   */
  zetaWithin(S: tf.Tensor, lo: Value, hi: Value): tf.Tensor;
  /** α elementwise on a float32 tensor, differentiable in S. */
  alphaTensor(S: tf.Tensor): tf.Tensor;
}

/** Merges args over the defaults, rejecting unknown keys, wrong types and inconsistent ranges. */
function checkArgs(args: AesScheduleArgs): Readonly<Required<AesScheduleArgs>> {
  const keys = Object.keys(AES_SCHEDULE_DEFAULTS);
  const unknown = Object.keys(args).filter((k) => !keys.includes(k));
  if (unknown.length) {
    throw new Error(`aesSchedule: unknown arg(s) ${unknown.join(', ')}; valid keys: ${keys.join(', ')}`);
  }
  const a = { ...AES_SCHEDULE_DEFAULTS, ...args };
  for (const k of ['S0', 'Smax', 'zmax'] as const) {
    if (typeof a[k] !== 'number' || !Number.isFinite(a[k])) {
      throw new RangeError(`aesSchedule: ${k} must be a finite number, got ${String(a[k])}`);
    }
  }
  if (typeof a.shape !== 'string') throw new TypeError(`aesSchedule: shape must be a string, got ${typeof a.shape}`);
  if (!(a.S0 >= 0 && a.S0 < a.Smax && a.Smax <= 1)) {
    throw new RangeError(`aesSchedule: need 0 ≤ S0 < Smax ≤ 1, got S0 = ${a.S0}, Smax = ${a.Smax}`);
  }
  if (!(a.zmax > 0)) throw new RangeError(`aesSchedule: zmax must be > 0, got ${a.zmax}`);
  return Object.freeze(a);
}

/**
 * Checks D on 201 points of [S0, Smax]: finite, within [0, zmax] (tolerance 1e-6·zmax), monotone
 * non-increasing (1e-9·zmax), then D(S0) = zmax and D(Smax) = 0 (1e-6·zmax) so ζ is continuous.
 * A grid cannot prove monotonicity, but it catches the wrong-sign and oscillating formulas.
 */
function checkFormula(D: (S: number) => number, { S0, Smax, zmax }: Required<AesScheduleArgs>, src: string): void {
  const bad = (what: string): never => {
    throw new RangeError(`aesSchedule: formula "${src}" ${what} (S0 = ${S0}, Smax = ${Smax}, zmax = ${zmax})`);
  };
  const n = 200;
  let prev = { S: NaN, v: Infinity };
  for (let i = 0; i <= n; i++) {
    const S = i === n ? Smax : S0 + ((Smax - S0) * i) / n;
    const v = D(S);
    if (!Number.isFinite(v)) bad(`is not finite (${v}) at S = ${S}`);
    if (v < -1e-6 * zmax || v > zmax * (1 + 1e-6)) bad(`is outside [0, zmax] (${v}) at S = ${S}`);
    if (v > prev.v + 1e-9 * zmax) bad(`is not monotone non-increasing: ${v} at S = ${S} > ${prev.v} at S = ${prev.S}`);
    prev = { S, v };
  }
  const [top, end] = [D(S0), D(Smax)];
  if (Math.abs(top - zmax) > 1e-6 * zmax) bad(`misses the endpoint: ${top} ≠ zmax at S = S0 = ${S0} (ζ would jump)`);
  if (Math.abs(end) > 1e-6 * zmax) bad(`misses the endpoint: ${end} ≠ 0 at S = Smax = ${Smax} (ζ would jump)`);
}

/**
 * Builds an AES schedule; throws on unknown keys, bad ranges or an invalid formula.
 *
 * @example
 * const s = aesSchedule({S0: 0.2, Smax: 0.9, shape: 'zmax * ((Smax - S) / (Smax - S0))^2'});
 * s.alpha(0.1);                                      // 2: sparsemax for a confident head
 * const alpha = s.alphaTensor(tf.tensor1d([0.1, 0.5, 0.95]));   // [3], differentiable in S
 */
export function aesSchedule(args: AesScheduleArgs = {}): AesSchedule {
  return buildSchedule(checkArgs(args));
}

function buildSchedule(a: ReturnType<typeof checkArgs>): AesSchedule {
  const { S0, Smax, zmax } = a;
  const src = BUILTIN.get(a.shape) ?? a.shape;
  const names = [...BUILTIN.keys()].join(', ');
  if (!src.trim()) throw new Error(`aesSchedule: empty shape; use a formula or one of ${names}`);
  const formula = (() => {
    try {
      return compileFormula(src, ['S', 'S0', 'Smax', 'zmax'], 'aesSchedule');
    } catch (e) {
      throw new Error(`${(e as Error).message}; built-in shapes ${names}`);
    }
  })();
  const D = (S: number): number => formula.number({ S0, Smax, zmax, S });
  checkFormula(D, a, src);
  const zeta = (S: number) => (S <= S0 ? zmax : S >= Smax ? 0 : D(S));

  const zetaWithin = (S: tf.Tensor, lo: Value, hi: Value): tf.Tensor => {
    if (!(S instanceof tf.Tensor) || S.dtype !== 'float32') {
      throw new TypeError('aesSchedule.zetaTensor: S must be a float32 tensor');
    }
    return tf.tidy(() => {
      const mid = tf.div(tf.add(lo, hi), 2);
      // Masks from tf.step (x > 0 ↦ 1), which has a zero gradient; tf.greater has none and tf.grad throws.
      const inside = tf.cast(tf.mul(tf.step(tf.sub(S, lo)), tf.step(tf.sub(hi, S))), 'bool');   // lo < S < hi
      const upper = tf.cast(tf.step(tf.sub(S, mid)), 'bool');            // used outside only: S ≥ hi
      // Outside the interval D sees the midpoint instead of S: D may be NaN or have an infinite
      // derivative there (e.g. sqrt(S − S0) below S0), and the where-gradient 0·NaN would be NaN.
      // A zero-width interval keeps a tiny width in D, where no S lands.
      const Sin = tf.where(inside, S, tf.broadcastTo(mid, S.shape));
      const d = formula.tensor({ S0: lo, Smax: tf.maximum(hi, tf.add(lo, 1e-6)), zmax, S: Sin });
      const dT = typeof d === 'number' ? tf.fill(S.shape, d) : tf.broadcastTo(d, S.shape);
      return tf.where(inside, dT, tf.where(upper, tf.zerosLike(S), tf.fill(S.shape, zmax)));
    });
  };
  const zetaTensor = (S: tf.Tensor) => zetaWithin(S, S0, Smax);
  return Object.freeze({
    args: a, formula: src, zeta,
    alpha: (S: number) => 1 + zeta(S) / zmax,
    zetaTensor,
    zetaWithin,
    alphaTensor: (S: tf.Tensor) => tf.tidy(() => tf.add(1, tf.div(zetaTensor(S), zmax))),
  });
}
