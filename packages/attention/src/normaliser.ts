/**
 * Choosing a normaliser: `entmax(x, α)` dispatches a number α to the exact map when one exists, and
 * `parseNormaliser` turns the user-facing spec of a head (`'softmax'`, `{alpha: 1.3}`, `'learned'`,
 * `'aes'`, …) into one checked, resolved form (plan.ts resolves every head of a layer once).
 */
import * as tf from '@tensorflow/tfjs';
import { aesSchedule, AES_SCHEDULE_DEFAULTS, type AesSchedule, type AesScheduleArgs } from './aes_schedule.js';
import { readsAreCheap } from './capabilities.js';
import { entmax15 } from './entmax15.js';
import { checkAlphaNumber, entmaxBisect, type EntmaxBisectArgs } from './entmax_bisect.js';
import { entmaxFused, fusedEntmaxAvailable } from './fused/entmax_fused.js';
import { softmax } from './softmax.js';
import { sparsemax } from './sparsemax.js';

/**
 * α-entmax with the exact map where one exists: α = 1 softmax, 1.5 entmax15, 2 sparsemax (number α);
 * any other α, or a tensor α, goes to `entmaxBisect`. On device backends (webgpu; capabilities.ts)
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
  if (typeof alpha === 'number') {
    if (alpha === 1.5) return entmax15(x);
    if (alpha === 2) return sparsemax(x);
  }
  return entmaxBisect(x, alpha, args);
}

/** AES options of one head: the schedule ζ(S) plus how it is measured, gated and differentiated. */
export interface AesArgs extends AesScheduleArgs {
  /**
   * Head varentropy (nats², mean over rows) below which ζ stays fixed at its running estimate;
   * at or above it ζ is recomputed from the current entropy on every call. Default 0.5.
   */
  varentropyThreshold?: number;
  /** Weight of the newest ζ in the running estimate (exponential moving average). Default 0.1. */
  momentum?: number;
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
  varentropyThreshold: 0.5,
  momentum: 0.1,
  measureOn: 'softmax' as const,
  gradient: 'stop' as const,
});

/** What a head can be given. Strings `'alpha=1.3'` and `'learned'` are accepted for CLIs. */
export type NormaliserSpec =
  | 'softmax' | 'sparsemax' | 'entmax15' | 'learned' | 'aes' | `alpha=${number}`
  | { alpha: number } | { alpha: 'learned' } | { aes: AesArgs };

/**
 * The checked, resolved form of a spec: a fixed α (named after the exact map it dispatches to), a
 * learned α, or AES with every option filled in and its schedule built (once, here).
 */
export type Normaliser =
  | { kind: 'fixed'; name: 'softmax' | 'sparsemax' | 'entmax15' | 'fixed'; alpha: number }
  | { kind: 'learned' }
  | { kind: 'aes'; aes: Readonly<Required<AesArgs>>; schedule: AesSchedule };

const NAMES = `'softmax', 'sparsemax', 'entmax15', 'alpha=<x>', {alpha: x}, 'learned', {alpha: 'learned'}, ` +
  `'aes', {aes: {...}}`;
const EXACT = { softmax: 1, entmax15: 1.5, sparsemax: 2 } as const;

/** Checks a spec and returns its resolved form; a clear error names what is allowed. */
export function parseNormaliser(spec: NormaliserSpec): Normaliser {
  if (typeof spec === 'string') {
    if (spec === 'softmax' || spec === 'sparsemax' || spec === 'entmax15')
      return { kind: 'fixed', name: spec, alpha: EXACT[spec] };
    if (spec === 'learned') return { kind: 'learned' };
    if (spec === 'aes') return aes({});
    const m = /^alpha=(.+)$/.exec(spec);
    if (m) return fixed(Number(m[1]));
  } else if (spec !== null && typeof spec === 'object') {
    if ('alpha' in spec) return spec.alpha === 'learned' ? { kind: 'learned' } : fixed(spec.alpha);
    if ('aes' in spec) return aes(spec.aes);
  }
  throw new RangeError(`unknown attention normaliser ${JSON.stringify(spec)}; use one of ${NAMES}`);
}

function fixed(alpha: number): Normaliser {
  if (typeof alpha !== 'number' || Number.isNaN(alpha))
    throw new RangeError(`normaliser alpha must be a number, got ${String(alpha)}`);
  checkAlphaNumber(alpha, 'normaliser');
  return { kind: 'fixed', name: 'fixed', alpha };
}

function aes(a: AesArgs): Normaliser {
  const keys = Object.keys(AES_DEFAULTS);
  const unknown = Object.keys(a ?? {}).filter((k) => !keys.includes(k));
  if (unknown.length) throw new RangeError(`unknown aes option(s) ${unknown.join(', ')}; valid: ${keys.join(', ')}`);
  const opts = Object.freeze({ ...AES_DEFAULTS, ...a });
  const { varentropyThreshold: v, momentum, measureOn, gradient, S0, Smax, zmax, shape } = opts;
  if (!(v >= 0)) throw new RangeError(`aes.varentropyThreshold must be ≥ 0, got ${v}`);
  if (!(momentum > 0 && momentum <= 1)) throw new RangeError(`aes.momentum must be in (0, 1], got ${momentum}`);
  if (measureOn !== 'softmax' && measureOn !== 'output')
    throw new RangeError(`aes.measureOn must be 'softmax' or 'output', got ${String(measureOn)}`);
  if (gradient !== 'stop' && gradient !== 'schedule')
    throw new RangeError(`aes.gradient must be 'stop' or 'schedule', got ${String(gradient)}`);
  return { kind: 'aes', aes: opts, schedule: aesSchedule({ S0, Smax, zmax, shape }) };
}
