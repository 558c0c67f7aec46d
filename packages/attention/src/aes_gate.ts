/**
 * The AES gate (docs/math.md §6). Per AES head, or per query row with `per: 'row'`:
 *
 *   S = (e^H − 1)/(n − 1) (default scale 'support'; H the entropy of the row's softmax, n its
 *       visible keys: the effective number of keys beyond the first, as a share of n − 1)
 *   g = width(V),  [lo, hi] = c ± g·h  (c, h: centre and half-width of [S0, Smax])
 *   ζ = D(S; lo, hi),  α = 1 + ζ_used/ζmax
 *
 * and the varentropy V picks ζ_used: below the threshold, once a running estimate ζ̄ exists, the
 * head (row) uses ζ̄ ("fixed"); otherwise the fresh ζ ("adaptive"). ζ̄ follows the fresh ζ by an
 * exponential moving average in every training call, so no state is frozen; evaluation ('frozen')
 * uses ζ̄ for per-head AES and leaves it as it is. Rows with fewer than two visible keys carry no
 * information about focus and are left out of every mean.
 *
 * State: a float32 tensor `[H]` of ζ̄ (NaN: no estimate yet, or not an AES head), owned by the caller
 * and returned updated, computed by tensor ops on every backend. Where reads are cheap
 * (capabilities.ts) the gate reads its result once per call so that α is a number and dispatches
 * to the exact map (softmax at α = 1), unless gradients must reach α.
 */
import * as tf from '@tensorflow/tfjs';
import { readsAreCheap } from './capabilities.js';
import { logitStats, probStats } from './entropy.js';
import { unstack0 } from './matmul.js';
import { entmax } from './normaliser.js';
import type { AesGroup, AttentionPlan } from './plan.js';
import type { HeadRows } from './scores.js';

/** The rows a head is measured on: score blocks and their visible-key counts (blocks of [..., T]). */
export interface MeasuredRows { blocks: HeadRows; visible: tf.Tensor[] }

/** Softmax entropy and varentropy of R rows of every head `[B, H, R]`, and their visible keys `[B, 1, R]`. */
export interface HeadEntropy { entropy: tf.Tensor; varentropy: tf.Tensor; visible: tf.Tensor }

export interface AesChoice {
  /**
   * α per head (undefined for non-AES heads): a number, a scalar tensor (device backends, or when
   * gradients reach α), or for per-row heads one tensor `[..., T, 1]` per score block.
   */
  alpha: Array<number | tf.Tensor | tf.Tensor[] | undefined>;
  /** The updated state `[H]`. */
  state: tf.Tensor;
  /** Per AES head: 'fixed' | 'adaptive' (per head), 'row' (per row), or 'device' where nothing was read. */
  modes: Array<string | undefined>;
}

export interface AesGateArgs {
  plan: AttentionPlan;
  /** Head h's score rows (per-row AES, and measuring on another map's output). */
  rows: (h: number) => MeasuredRows;
  /** Every head's softmax statistics at once (per-head AES; possibly on a sample of rows). */
  all: () => HeadEntropy;
  state?: tf.Tensor;
  /** Evaluation: per-head heads use ζ̄; no head updates it. */
  frozen: boolean;
  /** Learned threshold shifts `[H]` (heads with `learn`). */
  shift?: tf.Tensor;
}

type Stats = { S: tf.Tensor; V: tf.Tensor; w: tf.Tensor };

/** α of every AES head and the new state. */
export function aesChoice({ plan, rows, all, state, frozen, shift }: AesGateArgs): AesChoice {
  const H = plan.heads.length;
  const prev = state ?? tf.fill([H], NaN);
  const prevHost = readsAreCheap() ? prev.dataSync() : null;
  const prevHeads = unstack0(prev);                                         // H scalars
  const shifts = shift ? unstack0(shift) : null;
  const zeta: tf.Tensor[] = [...prevHeads];
  const choice: AesChoice = { alpha: Array(H).fill(undefined), state: prev, modes: Array(H).fill(undefined) };
  const toRead: Pending[] = [];
  for (const group of plan.aesGroups) {
    const { heads, aes } = group;
    const known = prevHost ? heads.map((h) => !Number.isNaN(prevHost[h])) : null;
    const numeric = !!prevHost && aes.gradient === 'stop' && !aes.learn;    // α may become a number
    if (aes.per === 'head' && frozen && known?.every(Boolean)) {
      // Evaluation with every estimate in hand: nothing to measure.
      heads.forEach((h) => { choice.alpha[h] = 1 + prevHost![h] / aes.zmax; choice.modes[h] = 'fixed'; });
      continue;
    }
    const measure = (h: number, j: number) => {
      const prevAlpha = aes.measureOn === 'softmax' ? 1 : prevHost ? (known![j] ? 1 + prevHost[h] / aes.zmax : 1)
        : tf.add(1, tf.div(nanToZero(prevHeads[h]), aes.zmax));
      const measured = rows(h);
      return {
        measured,
        st: measured.blocks.map((s, i) => rowStats(s, measured.visible[i], aes.measureOn, prevAlpha, aes.scale)),
      };
    };
    const shiftOf = (hs: readonly number[]) => (aes.learn && shifts ? tf.stack(hs.map((h) => shifts[h])) : undefined);
    if (aes.per === 'head') {
      // One gate for the group's heads, as vectors [n].
      // (gradients through S̄ need every row: 'schedule' measures the full rows of each head)
      const { S, V } =
        aes.measureOn === 'softmax' && aes.gradient === 'stop'
          ? headMeans(all(), heads, aes.scale)
          : (() => {
              const st = heads.map((h, j) => measure(h, j).st);
              const mean = (key: 'S' | 'V') =>
                tf.stack(
                  st.map((b) =>
                    weightedMean(
                      b.map((x) => x[key]),
                      b.map((x) => x.w),
                    ),
                  ),
                );
              return { S: mean('S'), V: mean('V') };
            })();
      const g = gate(group, tf.stack(heads.map((h) => prevHeads[h])), S, V, frozen, shiftOf(heads));
      const [alphas, zetas] = [unstack0(g.alpha), unstack0(g.zeta)];
      heads.forEach((h, j) => {
        zeta[h] = zetas[j];
        if (!numeric) choice.alpha[h] = tf.reshape(alphas[j], []);
        if (!prevHost) choice.modes[h] = 'device';
      });
      if (prevHost) toRead.push({ heads, alpha: g.alpha, adaptive: g.adaptive });
      continue;
    }
    for (const [j, h] of heads.entries()) {
      const { measured, st } = measure(h, j);
      const perBlock = st.map((b, i) => rowGate(group, prevHeads[h], b, measured.blocks[i].shape, shiftOf([h])));
      const fresh = weightedMean(perBlock.map((b) => b.fresh), st.map((b) => b.w));
      zeta[h] = frozen ? prevHeads[h] : ema(prevHeads[h], fresh, aes.momentum);
      choice.alpha[h] = perBlock.map((b) => b.alpha);
      choice.modes[h] = prevHost ? 'row' : 'device';
      if (numeric) toRead.push({ heads: [h], alpha: tf.concat(perBlock.map((b) => tf.reshape(b.alpha, [-1]))) });
    }
  }
  choice.state = tf.stack(zeta);
  if (toRead.length) readBack(toRead, choice);
  return choice;
}

/** Gate results that wait on one read: a per-head group (α and adapted flags `[n]`) or one per-row head's α. */
type Pending = { heads: readonly number[]; alpha: tf.Tensor; adaptive?: tf.Tensor };

/**
 * One read for every head that waits on host values: a per-head α becomes a number (when no
 * gradient must reach it) and its mode is known; a per-row head whose rows all have α = 1 runs
 * as plain softmax.
 */
function readBack(items: Pending[], choice: AesChoice): void {
  const host = tf.concat(items.flatMap(({ alpha, adaptive }) => (adaptive ? [alpha, adaptive] : [alpha]))).dataSync();
  let o = 0;
  for (const { heads, alpha, adaptive } of items) {
    if (adaptive) {
      const n = heads.length;
      heads.forEach((h, j) => {
        choice.alpha[h] ??= host[o + j];
        choice.modes[h] = host[o + n + j] ? 'adaptive' : 'fixed';
      });
      o += 2 * n;
    } else {
      if (host.subarray(o, o + alpha.size).every((a) => a === 1)) choice.alpha[heads[0]] = 1;
      o += alpha.size;
    }
  }
}

/**
 * Per row of one score block: S on the chosen scale, the varentropy V and the weight w (1 for
 * rows with at least two visible keys), each `[rows]`.
 */
function rowStats(s: tf.Tensor, visible: tf.Tensor, measureOn: 'softmax' | 'output', prevAlpha: number | tf.Tensor,
  scale: 'support' | 'log-n'): Stats {
  const st = measureOn === 'softmax' ? logitStats(s) : probStats(entmax(s, prevAlpha));
  const n = tf.reshape(visible, [-1]);
  const H = tf.reshape(st.entropy, [-1]);
  return { S: scaleOf(H, n, scale), V: tf.reshape(st.varentropy, [-1]), w: tf.cast(tf.greater(n, 1), 'float32') };
}

/** S on the chosen scale from entropies H and visible keys n (broadcasting), clipped to [0, 1]. */
function scaleOf(H: tf.Tensor, n: tf.Tensor, scale: 'support' | 'log-n'): tf.Tensor {
  return scale === 'support' ? tf.clipByValue(tf.div(tf.sub(tf.exp(H), 1), tf.maximum(tf.sub(n, 1), 1)), 0, 1)
    : tf.div(H, tf.log(tf.maximum(n, 2)));
}

/** The mean S and V of the given heads, over rows with ≥ 2 visible keys: `[n]` each. */
function headMeans(
  a: HeadEntropy,
  heads: readonly number[],
  scale: 'support' | 'log-n',
): { S: tf.Tensor; V: tf.Tensor } {
  const w = tf.cast(tf.greater(a.visible, 1), 'float32'); // [B, 1, R]
  const total = tf.maximum(tf.sum(w), 1);
  const idx = tf.tensor1d(heads as number[], 'int32');
  const mean = (x: tf.Tensor) => tf.gather(tf.div(tf.sum(tf.mul(x, w), [0, 2]), total), idx);
  return { S: mean(scaleOf(a.entropy, a.visible, scale)), V: mean(a.varentropy) };
}

function weightedMean(xs: tf.Tensor[], ws: tf.Tensor[]): tf.Tensor {
  const w = tf.concat(ws);
  return tf.div(tf.sum(tf.mul(tf.concat(xs), w)), tf.maximum(tf.sum(w), 1));
}

/** The fresh ζ of S (any shape) with the varentropy-dependent bounds; S, V off the tape unless 'schedule'. */
function freshZeta(group: AesGroup, S: tf.Tensor, V: tf.Tensor, shift?: tf.Tensor): tf.Tensor {
  const { aes, schedule, width } = group;
  const grad = aes.gradient === 'schedule';
  let s = grad ? S : withoutGradient(S, tf.clone);
  if (shift) s = tf.minimum(tf.mul(s, tf.exp(shift)), 1);
  const g = width.tensor({ V: withoutGradient(V, tf.clone) });
  const c = (aes.S0 + aes.Smax) / 2, half = (aes.Smax - aes.S0) / 2;
  return schedule.zetaWithin(s, tf.sub(c, tf.mul(g, half)), tf.add(c, tf.mul(g, half)));
}

/**
 * The per-head gate on a group's n heads: running ζ̄ `p` `[n]` (NaN: none yet), the heads' mean S
 * and V `[n]`. Returns α, the new ζ̄ and 1/0 for "adapted", each `[n]`.
 */
function gate(group: AesGroup, p: tf.Tensor, S: tf.Tensor, V: tf.Tensor, frozen: boolean, shift?: tf.Tensor) {
  const { aes } = group;
  const known = tf.isFinite(p);
  const pSafe = nanToZero(p);
  const z = freshZeta(group, S, V, shift);
  // Keep the estimate (1) or take the fresh ζ (0), as a float blended arithmetically: a boolean
  // computed from the scores would put comparisons (no gradient in tfjs) on the tape.
  const keep = withoutGradient(V, (v) =>
    tf.cast(frozen ? known : tf.logicalAnd(known, tf.less(v, aes.varentropyThreshold)), 'float32'));
  const used = tf.add(tf.mul(keep, pSafe), tf.mul(tf.sub(1, keep), z));
  return {
    alpha: tf.add(1, tf.div(used, aes.zmax)),
    zeta: frozen ? tf.where(known, p, z) : ema(p, z, aes.momentum),
    adaptive: tf.sub(1, keep),
  };
}

/**
 * The per-row gate on one score block of `shape` `[..., T, S]`: α `[..., T, 1]` (1 on rows without
 * information) and the fresh ζ per row.
 */
function rowGate(group: AesGroup, p: tf.Tensor, st: Stats, shape: number[], shift?: tf.Tensor) {
  const { aes } = group;
  const fresh = freshZeta(group, st.S, st.V, shift);
  const known = tf.isFinite(p);
  const keep = withoutGradient(st.V, (v) =>
    tf.cast(tf.logicalAnd(known, tf.less(v, aes.varentropyThreshold)), 'float32'),
  );
  const used = tf.add(tf.mul(keep, nanToZero(p)), tf.mul(tf.sub(1, keep), fresh));
  const alpha = tf.add(1, tf.mul(st.w, tf.div(used, aes.zmax)));             // rows with w = 0: α = 1
  return { alpha: tf.reshape(alpha, [...shape.slice(0, -1), 1]), fresh };
}

/** ζ̄ after one call: the fresh value the first time, else the exponential moving average. */
function ema(p: tf.Tensor, z: tf.Tensor, momentum: number): tf.Tensor {
  return tf.where(tf.isFinite(p), tf.add(tf.mul(nanToZero(p), 1 - momentum), tf.mul(z, momentum)), z);
}

function nanToZero(x: tf.Tensor): tf.Tensor {
  return tf.where(tf.isFinite(x), x, tf.zerosLike(x));
}

/** f(x) computed off the gradient tape, with a zero gradient wrt x (tfjs has no stop-gradient op). */
function withoutGradient(x: tf.Tensor, f: (x: tf.Tensor) => tf.Tensor): tf.Tensor {
  return tf.customGrad((...a: Array<tf.Tensor | tf.GradSaveFunc>) =>
    ({ value: f(a[0] as tf.Tensor), gradFunc: () => tf.zerosLike(a[0] as tf.Tensor) }))(x);
}
