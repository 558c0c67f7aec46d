/**
 * Choosing a normaliser: `entmax(x, α)` dispatches a number α to the exact map when one exists, and
 * `parseNormaliser` turns the user-facing spec of a head (`'softmax'`, `{alpha: 1.3}`, `'learned'`,
 * `'aes'`, …) into one checked, resolved form (plan.ts resolves every head of a layer once).
 */
import * as tf from '@tensorflow/tfjs';
import { aesSchedule, AES_SCHEDULE_DEFAULTS, type AesSchedule, type AesScheduleArgs } from './aes_schedule.js';
import { compileFormula, type Formula } from './formula.js';
import { readsAreCheap } from './capabilities.js';
import { entmax15 } from './entmax15.js';
import { checkAlphaNumber, entmaxBisect, type EntmaxBisectArgs } from './entmax_bisect.js';
import { entmaxFused, fusedEntmaxAvailable } from './fused/entmax_fused.js';
import { hostEntmax, hostEntmaxAvailable } from './host_entmax.js';
import { softmax } from './softmax.js';
import { sparsemax } from './sparsemax.js';

/**
 * α-entmax with the exact map where one exists: α = 1 softmax, 1.5 entmax15, 2 sparsemax (number α);
 * any other α, or a tensor α, goes to `entmaxBisect` — on wasm and cpu, one α for all rows (a number,
 * or a head's one-element α) goes to the row kernel on the backend's memory instead (`hostEntmax`;
 * unless `args` ask for a solver). On device backends (webgpu; capabilities.ts)
 * every α ≠ 1 goes to the fused kernels instead (`entmaxFused`: one workgroup per row, exact at 1.5
 * and 2; `args` then do not apply), unless they were unregistered.
 * @example
 * entmax(scores, 2);                       // same as sparsemax(scores)
 * entmax(scores, tf.scalar(1.7));          // bisection, differentiable in α
 */
export function entmax(x: tf.Tensor, alpha: number | tf.Tensor, args: EntmaxBisectArgs = {}): tf.Tensor {
  if (typeof alpha === 'number') {
    checkAlphaNumber(alpha, 'entmax');
    if (alpha === 1) return softmax(x);
  }
  if (!readsAreCheap() && fusedEntmaxAvailable()) return entmaxFused(x, alpha);
  const oneAlpha = typeof alpha === 'number' || alpha.size === 1;
  const solverAsked = args.nIter !== undefined || args.solver !== undefined;
  if (oneAlpha && hostEntmaxAvailable() && !solverAsked) return hostEntmax(x, alpha);
  if (typeof alpha === 'number') {
    if (alpha === 1.5) return entmax15(x);
    if (alpha === 2) return sparsemax(x);
  }
  return entmaxBisect(x, alpha, args);
}

/** AES options of one head: the schedule ζ(S) plus how S is measured, gated and differentiated. */
export interface AesArgs extends AesScheduleArgs {
  /**
   * The entropy scale S ∈ [0, 1] the schedule reads. 'support' (default): S = (e^H − 1)/(n − 1),
   * the effective number of keys a row attends to (its perplexity e^H) beyond the first, as a share
   * of the n − 1 others: 0 for one key, 1 for uniform, and for Gaussian scores of a fixed scale
   * nearly the same at every n. 'log-n': S = H / ln n, the first version, which drifts to 1
   * (softmax) as n grows at a fixed score scale.
   */
  scale?: 'support' | 'log-n';
  /** 'head' (default): one α per head from the mean S of its rows; 'row': each query row its own α. */
  per?: 'head' | 'row';
  /**
   * Varentropy (nats²) below which the head (or row) uses the running ζ̄ instead of the fresh ζ(S)
   * — "fixed" — once ζ̄ exists; ζ̄ itself follows the fresh ζ in every training call. Default 0.5.
   */
  varentropyThreshold?: number;
  /** Weight of the newest ζ in the running estimate ζ̄ (exponential moving average). Default 0.1. */
  momentum?: number;
  /**
   * Width g(V) ∈ [0, 1] of the interval where D(S) moves between sparsemax and softmax, as a
   * formula in the varentropy V (nats²), non-decreasing: the interval is [c − g·h, c + g·h] around
   * the centre c of [S0, Smax] (half-width h). g = 0 snaps ζ to an endpoint (a step at c); '1'
   * keeps [S0, Smax] for every V. Default 'V / (V + 1)'.
   */
  width?: string;
  /** Learn a per-head shift of the thresholds by SGD (S read as S·e^{shift}, parameter 'aesShift'). */
  learn?: boolean;
  /**
   * Where S and V are measured: 'softmax' (default) of the scores, which needs no α and so no
   * circularity; or 'output', the current α's output (α from the running estimate; one more map).
   */
  measureOn?: 'softmax' | 'output';
  /** 'stop' (default): α is a constant per call. 'schedule': gradients flow through S → ζ → α. */
  gradient?: 'stop' | 'schedule';
}
/** Every AES default in one place: the schedule's and the gate's. */
export const AES_DEFAULTS: Readonly<Required<AesArgs>> = Object.freeze({
  ...AES_SCHEDULE_DEFAULTS,
  scale: 'support' as const,
  per: 'head' as const,
  varentropyThreshold: 0.5,
  momentum: 0.1,
  width: 'V / (V + 1)',
  learn: false,
  measureOn: 'softmax' as const,
  gradient: 'stop' as const,
});

/** ASEntmax options: α-entmax of (δ + β·(ln n)^γ)·scores, β and γ learned per head. */
export interface AsentmaxArgs {
  /** α, fixed (default 1.5) or 'learned' (parameter 'alpha', as for learned heads). */
  alpha?: number | 'learned';
  /** The constant δ of the scale. Default 1. */
  delta?: number;
}
/** SSMax options: softmax of s·ln(n)·scores, s learned per head. */
export interface SsmaxArgs {
  /** Initial s. Default 1/ln 64: SSMax starts as softmax at n = 64. */
  init?: number;
}

/** What a head can be given. Strings `'alpha=1.3'`, `'learned'`, `'ssmax'`, … are accepted for CLIs. */
export type NormaliserSpec =
  | 'softmax' | 'sparsemax' | 'entmax15' | 'learned' | 'aes' | 'aes-row' | `alpha=${number}`
  | 'ssmax' | 'asentmax' | 'adaptive-temp'
  | { alpha: number } | { alpha: 'learned' } | { aes: AesArgs } | { ssmax: SsmaxArgs } | { asentmax: AsentmaxArgs };

/**
 * The checked, resolved form of a spec: a fixed α (named after the exact map it dispatches to), a
 * learned α, AES with every option filled in and its formulas built (once, here), or one of the
 * length- and entropy-aware maps of the literature (SSMax, ASEntmax, adaptive temperature).
 */
export type Normaliser =
  | { kind: 'fixed'; name: 'softmax' | 'sparsemax' | 'entmax15' | 'fixed'; alpha: number }
  | { kind: 'learned' }
  | { kind: 'aes'; aes: Readonly<Required<AesArgs>>; schedule: AesSchedule; width: Formula }
  | { kind: 'ssmax'; init: number }
  | { kind: 'asentmax'; alpha: number | 'learned'; delta: number }
  | { kind: 'adaptive-temp' };

const NAMES = `'softmax', 'sparsemax', 'entmax15', 'alpha=<x>', {alpha: x}, 'learned', {alpha: 'learned'}, ` +
  `'aes', 'aes-row', {aes: {...}}, 'ssmax', {ssmax: {init}}, 'asentmax', {asentmax: {alpha, delta}}, 'adaptive-temp'`;
const EXACT = { softmax: 1, entmax15: 1.5, sparsemax: 2 } as const;

/** Checks a spec and returns its resolved form; a clear error names what is allowed. */
export function parseNormaliser(spec: NormaliserSpec): Normaliser {
  if (typeof spec === 'string') {
    if (spec === 'softmax' || spec === 'sparsemax' || spec === 'entmax15')
      return { kind: 'fixed', name: spec, alpha: EXACT[spec] };
    if (spec === 'learned') return { kind: 'learned' };
    if (spec === 'aes') return aes({});
    if (spec === 'aes-row') return aes({ per: 'row' });
    if (spec === 'ssmax') return ssmax({});
    if (spec === 'asentmax') return asentmax({});
    if (spec === 'adaptive-temp') return { kind: 'adaptive-temp' };
    const m = /^alpha=(.+)$/.exec(spec);
    if (m) return fixed(Number(m[1]));
  } else if (spec !== null && typeof spec === 'object') {
    if ('alpha' in spec) return spec.alpha === 'learned' ? { kind: 'learned' } : fixed(spec.alpha);
    if ('aes' in spec) return aes(spec.aes);
    if ('ssmax' in spec) return ssmax(spec.ssmax);
    if ('asentmax' in spec) return asentmax(spec.asentmax);
  }
  throw new RangeError(`unknown attention normaliser ${JSON.stringify(spec)}; use one of ${NAMES}`);
}

function fixed(alpha: number): Normaliser {
  if (typeof alpha !== 'number' || Number.isNaN(alpha))
    throw new RangeError(`normaliser alpha must be a number, got ${String(alpha)}`);
  checkAlphaNumber(alpha, 'normaliser');
  return { kind: 'fixed', name: 'fixed', alpha };
}

function checkKeys(what: string, given: object | undefined, valid: string[]): void {
  const unknown = Object.keys(given ?? {}).filter((k) => !valid.includes(k));
  if (unknown.length)
    throw new RangeError(`unknown ${what} option(s) ${unknown.join(', ')}; valid: ${valid.join(', ')}`);
}

function ssmax(a: SsmaxArgs): Normaliser {
  checkKeys('ssmax', a, ['init']);
  const init = a?.init ?? 1 / Math.log(64);
  if (!(Number.isFinite(init) && init > 0)) throw new RangeError(`ssmax.init must be a finite number > 0, got ${init}`);
  return { kind: 'ssmax', init };
}

function asentmax(a: AsentmaxArgs): Normaliser {
  checkKeys('asentmax', a, ['alpha', 'delta']);
  const alpha = a?.alpha ?? 1.5;
  const delta = a?.delta ?? 1;
  if (alpha !== 'learned') checkAlphaNumber(alpha, 'asentmax');
  if (!(Number.isFinite(delta) && delta >= 0))
    throw new RangeError(`asentmax.delta must be a finite number ≥ 0, got ${delta}`);
  return { kind: 'asentmax', alpha, delta };
}

function aes(a: AesArgs): Normaliser {
  checkKeys('aes', a, Object.keys(AES_DEFAULTS));
  const opts = Object.freeze({ ...AES_DEFAULTS, ...a });
  const { varentropyThreshold: v, momentum, measureOn, gradient, S0, Smax, zmax, shape, scale, per, learn } = opts;
  const bad = (msg: string): never => { throw new RangeError(`aes.${msg}`); };
  if (!(v >= 0)) bad(`varentropyThreshold must be ≥ 0, got ${v}`);
  if (!(momentum > 0 && momentum <= 1)) bad(`momentum must be in (0, 1], got ${momentum}`);
  if (measureOn !== 'softmax' && measureOn !== 'output')
    bad(`measureOn must be 'softmax' or 'output', got ${String(measureOn)}`);
  if (gradient !== 'stop' && gradient !== 'schedule')
    bad(`gradient must be 'stop' or 'schedule', got ${String(gradient)}`);
  if (scale !== 'support' && scale !== 'log-n') bad(`scale must be 'support' or 'log-n', got ${String(scale)}`);
  if (per !== 'head' && per !== 'row') bad(`per must be 'head' or 'row', got ${String(per)}`);
  if (typeof learn !== 'boolean') bad(`learn must be true or false, got ${String(learn)}`);
  if (per === 'row' && measureOn === 'output')
    bad("measureOn 'output' needs per 'head' (a row's own α is what it measures)");
  return { kind: 'aes', aes: opts, schedule: aesSchedule({ S0, Smax, zmax, shape }), width: widthFormula(opts.width) };
}

/** g(V): a formula in V checked on V ∈ [0, 50] to stay in [0, 1] and never decrease. */
function widthFormula(src: string): Formula {
  if (typeof src !== 'string') throw new TypeError(`aes.width must be a formula string, got ${typeof src}`);
  const g = compileFormula(src, ['V'], 'aes.width');
  let prev = -Infinity;
  for (let i = 0; i <= 200; i++) {
    const V = i / 4;
    const w = g.number({ V });
    if (!(w >= -1e-9 && w <= 1 + 1e-9)) throw new RangeError(`aes.width "${src}" is ${w} at V = ${V}, outside [0, 1]`);
    if (w < prev - 1e-9) throw new RangeError(`aes.width "${src}" decreases: ${w} at V = ${V} < ${prev}`);
    prev = w;
  }
  return g;
}
