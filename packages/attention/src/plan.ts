/**
 * The attention plan: the normaliser of every head, resolved once. A Layer or a model builds it at
 * construction (so a bad spec fails there, not at the first call) and hands it to every call of
 * `attention()`; a call given raw specs resolves them on that call.
 */
import * as tf from '@tensorflow/tfjs';
import { parseNormaliser, type AesArgs, type Normaliser, type NormaliserSpec } from './normaliser.js';
import type { AesSchedule } from './aes_schedule.js';

/** AES heads that share their options, gated together as one vector. */
export interface AesGroup {
  /** Head indices, ascending. */
  readonly heads: readonly number[];
  readonly aes: Readonly<Required<AesArgs>>;
  readonly schedule: AesSchedule;
}

export interface AttentionPlan {
  /** Head h's resolved normaliser. A 'learned' head reads its raw α at index h of `alphaRaw` `[H]`. */
  readonly heads: readonly Normaliser[];
  /** The specs it was made from, one per head (JSON, for configs and serialisation). */
  readonly specs: readonly NormaliserSpec[];
  /** Whether some head is 'learned' (the caller then passes `alphaRaw`). */
  readonly learned: boolean;
  /** AES heads grouped by identical options; empty when no head is AES (no state needed). */
  readonly aesGroups: readonly AesGroup[];
}

/**
 * Resolves one spec for every head, or one per head, into a plan; throws on a bad spec or a wrong
 * number of them.
 * @example
 * const plan = planAttention(['softmax', 'learned', 'aes', {alpha: 1.3}], {heads: 4});
 * attention(q, k, v, {plan, alphaRaw, state});
 */
export function planAttention(
  spec: NormaliserSpec | readonly NormaliserSpec[],
  { heads }: { heads: number },
): AttentionPlan {
  if (!Number.isInteger(heads) || heads < 1)
    throw new RangeError(`planAttention: heads must be a positive integer, got ${heads}`);
  const specs: NormaliserSpec[] = Array.isArray(spec) ? [...spec] : Array(heads).fill(spec);
  if (specs.length !== heads) throw new RangeError(`attention: ${specs.length} normalisers for ${heads} heads`);
  const resolved = specs.map(parseNormaliser);
  const groups = new Map<string, { heads: number[]; aes: Readonly<Required<AesArgs>>; schedule: AesSchedule }>();
  resolved.forEach((n, h) => {
    if (n.kind !== 'aes') return;
    const key = JSON.stringify(n.aes);
    if (!groups.has(key)) groups.set(key, { heads: [], aes: n.aes, schedule: n.schedule });
    groups.get(key)!.heads.push(h);
  });
  return Object.freeze({
    heads: Object.freeze(resolved),
    specs: Object.freeze(specs),
    learned: resolved.some((n) => n.kind === 'learned'),
    aesGroups: Object.freeze([...groups.values()].map((g) => Object.freeze(g))),
  });
}

/**
 * α of head h as a number, from host values of its parameters: a learned head from its raw α, an
 * AES head from the running ζ of the state (NaN before any estimate).
 */
export function alphaOf(
  head: Normaliser,
  h: number,
  values: { alphaRaw?: ArrayLike<number>; state?: ArrayLike<number> },
): number {
  switch (head.kind) {
    case 'fixed':
      return head.alpha;
    case 'learned':
      return 1 + 1 / (1 + Math.exp(-values.alphaRaw![h]));
    case 'aes':
      return 1 + values.state![h] / head.aes.zmax;
  }
}

/** α of a learned head as a scalar tensor (differentiable in the raw parameter `alphaRaw[h]`). */
export function learnedAlpha(alphaRaw: tf.Tensor, h: number): tf.Tensor {
  return tf.add(1, tf.sigmoid(tf.reshape(tf.slice(alphaRaw, [h], [1]), [])));
}

/** A fresh AES state for a plan: ζ = NaN (no estimate yet) for every head, `[H]`. */
export function initialAesState(plan: AttentionPlan): tf.Tensor1D {
  return tf.fill([plan.heads.length], NaN) as tf.Tensor1D;
}
