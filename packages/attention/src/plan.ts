/**
 * The attention plan: the normaliser of every head, resolved once, and the learned per-head
 * parameters those normalisers need. A Layer or a model builds it at construction (so a bad spec
 * fails there, not at the first call), creates one variable `[H]` per parameter the plan lists, and
 * hands both to every call of `attention()`; a call given raw specs resolves them on that call.
 */
import * as tf from '@tensorflow/tfjs';
import type { Formula } from './formula.js';
import { parseNormaliser, type AesArgs, type Normaliser, type NormaliserSpec } from './normaliser.js';
import type { AesSchedule } from './aes_schedule.js';

/** AES heads that share their options, gated together as one vector. */
export interface AesGroup {
  /** Head indices, ascending. */
  readonly heads: readonly number[];
  readonly aes: Readonly<Required<AesArgs>>;
  readonly schedule: AesSchedule;
  readonly width: Formula;
}

/** How a learned per-head parameter starts (a random start takes the owner's seed). */
export type ParamInit = { constant: number } | { uniform: [number, number] } | { normal: [number, number] };

/** A learned parameter: one value per head, `[H]` (heads that do not use it ignore their entry). */
export interface ParamSpec {
  readonly name: 'alpha' | 'aesShift' | 'ssmaxS' | 'asentBeta' | 'asentGamma';
  readonly init: ParamInit;
}

export interface AttentionPlan {
  /** Head h's resolved normaliser. A head with a learned parameter reads entry h of it. */
  readonly heads: readonly Normaliser[];
  /** The specs it was made from, one per head (JSON, for configs and serialisation). */
  readonly specs: readonly NormaliserSpec[];
  /** The learned parameters the heads need (the caller passes them as `params`). */
  readonly params: readonly ParamSpec[];
  /** Whether some head learns α (parameter 'alpha'). */
  readonly learned: boolean;
  /** AES heads grouped by identical options; empty when no head is AES (no state needed). */
  readonly aesGroups: readonly AesGroup[];
}

/**
 * Resolves one spec for every head, or one per head, into a plan; throws on a bad spec or a wrong
 * number of them. `alphaInit` (default 1.5) is where learned α starts.
 * @example
 * const plan = planAttention(['softmax', 'learned', 'aes', {alpha: 1.3}], {heads: 4});
 * attention(q, k, v, {plan, params: {alpha: alphaRaw}, state});
 */
export function planAttention(spec: NormaliserSpec | readonly NormaliserSpec[],
  { heads, alphaInit = 1.5 }: { heads: number; alphaInit?: number }): AttentionPlan {
  if (!Number.isInteger(heads) || heads < 1)
    throw new RangeError(`planAttention: heads must be a positive integer, got ${heads}`);
  if (!(alphaInit > 1 && alphaInit < 2))
    throw new RangeError(`planAttention: alphaInit must be in (1, 2), got ${alphaInit}`);
  const specs: NormaliserSpec[] = Array.isArray(spec) ? [...spec] : Array(heads).fill(spec);
  if (specs.length !== heads) throw new RangeError(`attention: ${specs.length} normalisers for ${heads} heads`);
  const resolved = specs.map(parseNormaliser);
  const groups = new Map<
    string,
    { heads: number[]; aes: Readonly<Required<AesArgs>>; schedule: AesSchedule; width: Formula }
  >();
  resolved.forEach((n, h) => {
    if (n.kind !== 'aes') return;
    const key = JSON.stringify(n.aes);
    if (!groups.has(key)) groups.set(key, { heads: [], aes: n.aes, schedule: n.schedule, width: n.width });
    groups.get(key)!.heads.push(h);
  });
  const learnsAlpha = resolved.some((n) => n.kind === 'learned' || (n.kind === 'asentmax' && n.alpha === 'learned'));
  const ssmax = resolved.find((n) => n.kind === 'ssmax');
  const params: ParamSpec[] = [
    ...(learnsAlpha
      ? [{ name: 'alpha' as const, init: { constant: Math.log((alphaInit - 1) / (2 - alphaInit)) } }]
      : []),
    ...(resolved.some((n) => n.kind === 'aes' && n.aes.learn)
      ? [{ name: 'aesShift' as const, init: { constant: 0 } }]
      : []),
    ...(ssmax?.kind === 'ssmax' ? [{ name: 'ssmaxS' as const, init: { constant: ssmax.init } }] : []),
    ...(resolved.some((n) => n.kind === 'asentmax')
      ? [
          { name: 'asentBeta' as const, init: { uniform: [0.1, 1] as [number, number] } },
          { name: 'asentGamma' as const, init: { normal: [0, 0.1] as [number, number] } },
        ]
      : []),
  ];
  return Object.freeze({
    heads: Object.freeze(resolved),
    specs: Object.freeze(specs),
    params: Object.freeze(params),
    learned: learnsAlpha,
    aesGroups: Object.freeze([...groups.values()].map((g) => Object.freeze(g))),
  });
}

/** A parameter's initial values `[H]`, random ones from `seed` (tfjs treats seed 0 as none: pass ≥ 1). */
export function initialParam(p: ParamSpec, heads: number, seed: number): tf.Tensor1D {
  const { init } = p;
  if ('constant' in init) return tf.fill([heads], init.constant) as tf.Tensor1D;
  if ('uniform' in init)
    return tf.randomUniform([heads], init.uniform[0], init.uniform[1], 'float32', seed) as tf.Tensor1D;
  return tf.randomNormal([heads], init.normal[0], init.normal[1], 'float32', seed) as tf.Tensor1D;
}

/**
 * α of head h as a number, from host values of its parameters: a learned head from its raw α, an
 * AES head from the running ζ of the state (NaN before any estimate; per-row heads: the head's
 * running value), the softmax-based maps 1.
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
    case 'asentmax':
      return head.alpha === 'learned' ? 1 + 1 / (1 + Math.exp(-values.alphaRaw![h])) : head.alpha;
    case 'ssmax':
    case 'adaptive-temp':
      return 1;
  }
}

/** α of a learned head as a scalar tensor (differentiable in the raw parameter `alphaRaw[h]`). */
export function learnedAlpha(alphaRaw: tf.Tensor, h: number): tf.Tensor {
  return learnedAlphas(tf.reshape(tf.slice(alphaRaw, [h], [1]), []));
}

/** α = 1 + sigmoid(a) of raw parameters, elementwise (every head of `alphaRaw` at once). */
export function learnedAlphas(alphaRaw: tf.Tensor): tf.Tensor {
  return tf.add(1, tf.sigmoid(alphaRaw));
}

/** A fresh AES state for a plan: ζ = NaN (no estimate yet) for every head, `[H]`. */
export function initialAesState(plan: AttentionPlan): tf.Tensor1D {
  return tf.fill([plan.heads.length], NaN) as tf.Tensor1D;
}
