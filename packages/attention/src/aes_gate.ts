/**
 * The AES gate: per AES head, the mean normalised entropy S̄ ∈ [0, 1] of its rows (entropy /
 * ln #visible keys) picks ζ = ζ(S̄) by the head's schedule (aes_schedule.ts), α = 1 + ζ/ζmax, and
 * the head's mean varentropy V̄ decides whether that fresh ζ is used: below the threshold, and once
 * a running estimate exists, ζ stays at the estimate; otherwise ζ is recomputed and the estimate
 * moves by an exponential moving average.
 *
 * State: a float32 tensor `[H]` of running ζ (NaN: no estimate yet, or not an AES head), owned by
 * the caller (a non-trainable variable of the Layer or model) and returned updated. The update is
 * tensor ops on every backend. Where reads are cheap (capabilities.ts) the gate also reads its
 * result once, so that a head's α is a number and dispatches to the exact map (softmax at α = 1).
 */
import * as tf from '@tensorflow/tfjs';
import { readsAreCheap } from './capabilities.js';
import { logitStats, probStats } from './entropy.js';
import { unstack0 } from './matmul.js';
import { entmax } from './normaliser.js';
import type { AesGroup, AttentionPlan } from './plan.js';
import type { HeadRows } from './scores.js';

export interface AesChoice {
  /** α per head (undefined for non-AES heads): a number, or a scalar tensor (device, or 'schedule' gradients). */
  alpha: Array<number | tf.Tensor | undefined>;
  /** The updated state `[H]`. */
  state: tf.Tensor;
  /** Per AES head: 'fixed' (running estimate) or 'adaptive' (fresh ζ); 'device' where nothing was read. */
  modes: Array<string | undefined>;
}

/**
 * α of every AES head of `plan` from its score rows, and the new state.
 * @param scores the heads' masked scores; visible: visible-key counts per block (scores.ts)
 * @param frozen evaluation: a head with an estimate uses it whatever the varentropy
 */
export function aesChoice(plan: AttentionPlan, scores: HeadRows[], visible: () => tf.Tensor[],
  state: tf.Tensor | undefined, frozen: boolean): AesChoice {
  const H = plan.heads.length;
  const prev = state ?? tf.fill([H], NaN);
  const prevHost = readsAreCheap() ? prev.dataSync() : null;
  const prevHeads = unstack0(prev);                                         // H scalars
  const zeta: tf.Tensor[] = [...prevHeads];
  const choice: AesChoice = { alpha: Array(H).fill(undefined), state: prev, modes: Array(H).fill(undefined) };
  const pending: Array<{ group: AesGroup; alpha: tf.Tensor; adaptive: tf.Tensor }> = [];
  for (const group of plan.aesGroups) {
    const { heads, aes } = group;
    const known = prevHost ? heads.map((h) => !Number.isNaN(prevHost[h])) : null;
    if (frozen && known?.every(Boolean)) {
      // Evaluation with every estimate in hand: nothing to measure.
      heads.forEach((h) => { choice.alpha[h] = 1 + prevHost![h] / aes.zmax; choice.modes[h] = 'fixed'; });
      continue;
    }
    const p = tf.stack(heads.map((h) => prevHeads[h]));                     // [n]
    const measured = heads.map((h, j) => {
      // measureOn 'output' measures the running α's map (softmax before any estimate)
      const prevAlpha = aes.measureOn === 'softmax' ? 1 : prevHost ? (known![j] ? 1 + prevHost[h] / aes.zmax : 1)
        : tf.add(1, tf.div(nanToZero(prevHeads[h]), aes.zmax));
      return headEntropy(scores[h], aes.measureOn, prevAlpha, visible());
    });
    const g = gate(group, p, tf.stack(measured.map((m) => m.sBar)), tf.stack(measured.map((m) => m.vBar)), frozen);
    unstack0(g.zeta).forEach((z, j) => { zeta[heads[j]] = z; });
    if (aes.gradient === 'schedule' || !prevHost) unstack0(g.alpha).forEach((a, j) => { choice.alpha[heads[j]] = a; });
    pending.push({ group, alpha: g.alpha, adaptive: g.adaptive });
  }
  choice.state = tf.stack(zeta);
  if (!pending.length) return choice;
  if (!prevHost) {
    for (const { group } of pending) for (const h of group.heads) choice.modes[h] = 'device';
    return choice;
  }
  // One read for every group: α (where it becomes a number) and which heads adapted.
  const host = tf.concat(pending.flatMap(({ alpha, adaptive }) => [alpha, adaptive])).dataSync();
  let o = 0;
  for (const { group } of pending) {
    const n = group.heads.length;
    group.heads.forEach((h, j) => {
      choice.alpha[h] ??= host[o + j];
      choice.modes[h] = host[o + n + j] ? 'adaptive' : 'fixed';
    });
    o += 2 * n;
  }
  return choice;
}

/**
 * The gate on the n heads of one group, as tensors: running ζ `p` (NaN: none yet), S̄ and V̄ `[n]`.
 * Returns α, the new ζ and 1/0 for "adapted" (each `[n]`). Under 'stop' no gradient reaches S̄.
 */
function gate(group: AesGroup, p: tf.Tensor, sBar: tf.Tensor, vBar: tf.Tensor, frozen: boolean) {
  const { aes, schedule } = group;
  const known = tf.isFinite(p);
  const pSafe = tf.where(known, p, tf.zerosLike(p));
  // Keep the estimate (1) or take the fresh ζ (0), as a float blended arithmetically: a boolean
  // computed from the scores would put comparisons (no gradient in tfjs) on the tape.
  const keep = withoutGradient(vBar, (v) =>
    tf.cast(frozen ? known : tf.logicalAnd(known, tf.less(v, aes.varentropyThreshold)), 'float32'));
  const z = schedule.zetaTensor(aes.gradient === 'schedule' ? sBar : withoutGradient(sBar, tf.clone));
  const next = tf.where(known, tf.add(tf.mul(pSafe, 1 - aes.momentum), tf.mul(z, aes.momentum)), z);
  const blend = (a: tf.Tensor, b: tf.Tensor) => tf.add(tf.mul(keep, a), tf.mul(tf.sub(1, keep), b));
  const alphaOf = (zeta: tf.Tensor) => tf.add(1, tf.div(zeta, aes.zmax));
  return { alpha: blend(alphaOf(pSafe), alphaOf(z)), zeta: blend(pSafe, next), adaptive: tf.sub(1, keep) };
}

/**
 * Mean over the rows that see some key of the entropy normalised by ln(#visible keys) (S̄) and of
 * the varentropy (V̄), measured on the softmax of the scores or on the output of α = `prevAlpha`.
 * `visible`: visible-key counts of each block (from the masks, so no gradient runs through
 * comparisons, which tfjs cannot differentiate). Scalars.
 */
function headEntropy(blocks: HeadRows, measureOn: 'softmax' | 'output', prevAlpha: number | tf.Tensor,
  visible: tf.Tensor[]): { sBar: tf.Tensor; vBar: tf.Tensor } {
  const parts = blocks.map((s, i) => {
    const st = measureOn === 'softmax' ? logitStats(s) : probStats(entmax(s, prevAlpha));
    const n = tf.reshape(visible[i], [-1]);
    const logN = tf.where(tf.greater(n, 1), tf.log(tf.maximum(n, 1)), tf.onesLike(n));     // one key: S̄ = 0
    const sNorm = tf.div(tf.reshape(st.entropy, [-1]), logN);
    return { sNorm, v: tf.reshape(st.varentropy, [-1]), w: tf.cast(tf.greater(n, 0), 'float32') };
  });
  const w = tf.concat(parts.map((r) => r.w));
  const mean = (key: 'sNorm' | 'v') =>
    tf.div(tf.sum(tf.mul(tf.concat(parts.map((r) => r[key])), w)), tf.maximum(tf.sum(w), 1));
  return { sBar: mean('sNorm'), vBar: mean('v') };
}

function nanToZero(x: tf.Tensor): tf.Tensor {
  return tf.where(tf.isFinite(x), x, tf.zerosLike(x));
}

/** f(x) computed off the gradient tape, with a zero gradient wrt x (tfjs has no stop-gradient op). */
function withoutGradient(x: tf.Tensor, f: (x: tf.Tensor) => tf.Tensor): tf.Tensor {
  return tf.customGrad((...a: Array<tf.Tensor | tf.GradSaveFunc>) =>
    ({ value: f(a[0] as tf.Tensor), gradFunc: () => tf.zerosLike(a[0] as tf.Tensor) }))(x);
}
