/**
 * Choosing a normaliser: `entmax(x, α)` dispatches a number α to the exact map when one exists, and
 * `parseNormaliser` turns the user-facing spec of a head (`'softmax'`, `{alpha: 1.3}`, `'learned'`,
 * `'aes'`, …) into one checked, canonical form.
 */
import * as tf from '@tensorflow/tfjs';
import type { AesScheduleArgs } from './aes_schedule';
import { entmax15 } from './entmax15';
import { checkAlphaNumber, entmaxBisect, type EntmaxBisectArgs } from './entmax_bisect';
import { entmaxFused, fusedEntmaxAvailable } from './fused/entmax_fused';
import { softmax } from './softmax';
import { sparsemax } from './sparsemax';

/**
 * α-entmax with the exact map where one exists: α = 1 softmax, 1.5 entmax15, 2 sparsemax (number α);
 * any other α, or a tensor α, goes to `entmaxBisect`. On the webgpu backend every α ≠ 1 goes to the
 * fused kernels instead (`entmaxFused`: one workgroup per row, exact at 1.5 and 2; `args` then do not
 * apply), unless they were unregistered.
 * @example
 * entmax(scores, 2);                       // same as sparsemax(scores)
 * entmax(scores, tf.scalar(1.7));          // bisection, differentiable in α
 */
export function entmax(x: tf.Tensor, alpha: number | tf.Tensor, args: EntmaxBisectArgs = {}): tf.Tensor {
  if (typeof alpha === 'number') {
    checkAlphaNumber(alpha, 'entmax');
    if (alpha === 1) return softmax(x);
  }
  if (tf.getBackend() === 'webgpu' && fusedEntmaxAvailable()) return entmaxFused(x, alpha);
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
export const AES_DEFAULTS: Readonly<Required<Omit<AesArgs, keyof AesScheduleArgs>>> = Object.freeze({
  varentropyThreshold: 0.5, momentum: 0.1, measureOn: 'softmax' as const, gradient: 'stop' as const,
});

/** What a head can be given. Strings `'alpha=1.3'` and `'learned'` are accepted for CLIs. */
export type NormaliserSpec =
  | 'softmax' | 'sparsemax' | 'entmax15' | 'learned' | 'aes' | `alpha=${number}`
  | { alpha: number } | { alpha: 'learned' } | { aes: AesArgs };

/** The checked form of a spec. */
export type Normaliser =
  | { kind: 'softmax' | 'sparsemax' | 'entmax15' | 'learned' }
  | { kind: 'fixed'; alpha: number }
  | { kind: 'aes'; aes: AesArgs };

const NAMES = `'softmax', 'sparsemax', 'entmax15', 'alpha=<x>', {alpha: x}, 'learned', {alpha: 'learned'}, 'aes', {aes: {...}}`;

/** Checks a spec and returns its canonical form; a clear error names what is allowed. */
export function parseNormaliser(spec: NormaliserSpec): Normaliser {
  if (typeof spec === 'string') {
    if (spec === 'softmax' || spec === 'sparsemax' || spec === 'entmax15' || spec === 'learned') return { kind: spec };
    if (spec === 'aes') return { kind: 'aes', aes: {} };
    const m = /^alpha=(.+)$/.exec(spec);
    if (m) return fixed(Number(m[1]));
  } else if (spec !== null && typeof spec === 'object') {
    if ('alpha' in spec) return spec.alpha === 'learned' ? { kind: 'learned' } : fixed(spec.alpha);
    if ('aes' in spec) return { kind: 'aes', aes: checkAes(spec.aes) };
  }
  throw new RangeError(`unknown attention normaliser ${JSON.stringify(spec)}; use one of ${NAMES}`);
}

function fixed(alpha: number): Normaliser {
  if (typeof alpha !== 'number' || Number.isNaN(alpha)) throw new RangeError(`normaliser alpha must be a number, got ${String(alpha)}`);
  checkAlphaNumber(alpha, 'normaliser');
  return { kind: 'fixed', alpha };
}

const AES_KEYS = ['S0', 'Smax', 'zmax', 'shape', ...Object.keys(AES_DEFAULTS)];

function checkAes(a: AesArgs): AesArgs {
  const unknown = Object.keys(a ?? {}).filter((k) => !AES_KEYS.includes(k));
  if (unknown.length) throw new RangeError(`unknown aes option(s) ${unknown.join(', ')}; valid: ${AES_KEYS.join(', ')}`);
  const { varentropyThreshold: v, momentum, measureOn, gradient } = { ...AES_DEFAULTS, ...a };
  if (!(v >= 0)) throw new RangeError(`aes.varentropyThreshold must be ≥ 0, got ${v}`);
  if (!(momentum > 0 && momentum <= 1)) throw new RangeError(`aes.momentum must be in (0, 1], got ${momentum}`);
  if (measureOn !== 'softmax' && measureOn !== 'output') throw new RangeError(`aes.measureOn must be 'softmax' or 'output', got ${String(measureOn)}`);
  if (gradient !== 'stop' && gradient !== 'schedule') throw new RangeError(`aes.gradient must be 'stop' or 'schedule', got ${String(gradient)}`);
  return a;
}
