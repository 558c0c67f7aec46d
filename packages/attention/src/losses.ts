/**
 * Fenchel–Young losses (Blondel, Martins & Niculae 2020) for the entmax family:
 *
 *   L(z, y) = max_p [⟨p, z⟩ + H_α(p)] − z_y = ⟨p*, z⟩ + H_α(p*) − z_y,   p* = entmax_α(z)
 *
 * with H_α the Tsallis entropy. α = 1 is cross-entropy, α = 2 the sparsemax loss. L ≥ 0, it is 0
 * once the target wins by a margin (unlike cross-entropy), and its gradient is simply p* − e_y.
 * By Danskin's theorem ∂L/∂α = ∂H_α(p*)/∂α at fixed p*, so a tensor α is differentiable too.
 */
import * as tf from '@tensorflow/tfjs';
import { readsAreCheap } from './capabilities.js';
import { entmax15 } from './entmax15.js';
import { checkAlphaNumber, checkAlphaTensor, entmaxBisect, reduceTo, type EntmaxBisectArgs } from './entmax_bisect.js';
import { tsallisAlphaGrad, tsallisValue } from './entropy.js';
import { checkScores } from './rows.js';
import { sparsemax } from './sparsemax.js';

export type Reduction = 'none' | 'mean' | 'sum';

export interface FYLossArgs {
  /** Rows whose target equals this get loss 0 and gradient 0 (and do not count in 'mean'). */
  ignoreIndex?: number;
  /** 'none' (default): per-row `[N]`; 'sum'; 'mean' over the rows not ignored. */
  reduction?: Reduction;
}
export const FY_LOSS_DEFAULTS: Readonly<Required<FYLossArgs>> = Object.freeze({ ignoreIndex: -100, reduction: 'none' });

/**
 * Reduces per-row losses `[N]`: 'none' returns them, 'sum' adds them, 'mean' divides the sum by Σ
 * weights (rows with weight 0 do not count; 0 when every row has weight 0).
 */
export function reduceLoss(perRow: tf.Tensor, reduction: Reduction, weights?: tf.Tensor): tf.Tensor {
  if (reduction === 'none') return perRow;
  if (reduction === 'sum') return tf.sum(perRow);
  if (reduction === 'mean') {
    const w = weights ?? tf.onesLike(perRow);
    const n = tf.sum(w);
    return tf.div(tf.sum(tf.mul(perRow, w)), tf.add(n, tf.cast(tf.equal(n, 0), 'float32')));
  }
  throw new RangeError(`reduceLoss: reduction must be 'none', 'mean' or 'sum', got ${String(reduction)}`);
}

/** sparsemax loss (α = 2). @param logits float32 `[N, K]` @param targets int32 `[N]` @returns `[N]` (or reduced) */
export function sparsemaxLoss(logits: tf.Tensor, targets: tf.Tensor, args: FYLossArgs = {}): tf.Tensor {
  return fyLoss('sparsemaxLoss', logits, targets, 2, sparsemax, args);
}

/** 1.5-entmax loss. @param logits float32 `[N, K]` @param targets int32 `[N]` @returns `[N]` (or reduced) */
export function entmax15Loss(logits: tf.Tensor, targets: tf.Tensor, args: FYLossArgs = {}): tf.Tensor {
  return fyLoss('entmax15Loss', logits, targets, 1.5, entmax15, args);
}

/**
 * α-entmax loss with α a number or a float32 tensor broadcasting to `[N, 1]` (differentiable).
 * @example
 * const loss = entmaxBisectLoss(logits, labels, 1.5, {reduction: 'mean'});
 */
export function entmaxBisectLoss(logits: tf.Tensor, targets: tf.Tensor, alpha: number | tf.Tensor,
  args: FYLossArgs & EntmaxBisectArgs = {}): tf.Tensor {
  const op = 'entmaxBisectLoss';
  if (typeof alpha === 'number') checkAlphaNumber(alpha, op);
  else { checkScores(logits, op); checkAlphaTensor(alpha, logits, op); }
  const nIter = args.nIter;
  return fyLoss(op, logits, targets, alpha, (z, a) => entmaxBisect(z, a, nIter ? { nIter } : {}), args);
}

type MapFn = (z: tf.Tensor, alpha: number | tf.Tensor) => tf.Tensor;

function fyLoss(op: string, logits: tf.Tensor, targets: tf.Tensor, alpha: number | tf.Tensor, map: MapFn,
  args: FYLossArgs): tf.Tensor {
  const { ignoreIndex, reduction } = { ...FY_LOSS_DEFAULTS, ...args };
  checkScores(logits, op);
  checkTargets(op, logits, targets, ignoreIndex);
  const [N, K] = logits.shape as [number, number];
  // Masks are built with tensor ops (no read of the targets, so webgpu works too), inside the forward
  // pass and saved, so they live exactly as long as the tape.
  const keepOf = () => tf.cast(tf.notEqual(targets, ignoreIndex), 'float32');            // 0 on ignored rows
  const f = tf.customGrad((...a: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [z, al, save] = a as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const keep = keepOf();
    // int32 one-hot then cast: on wasm (tfjs 4.22) oneHot with dtype float32 writes integer bits.
    const onehot = tf.cast(tf.oneHot(tf.mul(targets, tf.cast(keep, 'int32')), K), 'float32');
    const p = map(z, typeof alpha === 'number' ? alpha : al);
    const alRow = tf.broadcastTo(al, [N, 1]);
    const eps = tf.maximum(tf.sub(alRow, 1), 1e-6);
    const on = tf.greater(p, 0);
    const pz = tf.sum(tf.mul(p, tf.where(on, z, tf.zerosLike(z))), 1);   // ⟨p, z⟩ without 0·(−∞)
    const zy = tf.sum(tf.where(tf.greater(onehot, 0), z, tf.zerosLike(z)), 1);
    const H = typeof alpha === 'number' && alpha === 1
      ? tf.neg(tf.sum(tf.mul(p, tf.log(tf.where(on, p, tf.onesLike(p)))), 1))
      : tsallisValue(p, eps, alRow, 1);
    const loss = tf.mul(tf.sub(tf.add(pz, H), zy), keep);             // [N]
    save([p, eps, alRow, keep, onehot]);
    const gradFunc = (dy: tf.Tensor, [ps, es, alr, kp, oh]: tf.Tensor[]) => {
      const w = tf.expandDims(tf.mul(dy, kp), 1);                      // [N, 1]
      const dz = tf.mul(tf.sub(ps, oh), w);
      const dAlpha = typeof alpha === 'number'
        ? tf.zerosLike(al)
        : reduceTo(tf.mul(tsallisAlphaGrad(ps, es, alr, 1), w), al.shape);
      return [dz, dAlpha];
    };
    return { value: loss, gradFunc };
  });
  return tf.tidy(() => {
    const alphaT = typeof alpha === 'number' ? tf.scalar(alpha) : tf.maximum(alpha, 1 + 1e-6);
    return reduceLoss(f(logits, alphaT), reduction, keepOf());
  });
}

/** Checks shapes and dtype, and (where the backend reads synchronously) the target range. */
function checkTargets(op: string, logits: tf.Tensor, targets: tf.Tensor, ignoreIndex: number): void {
  if (logits.rank !== 2) throw new RangeError(`${op}: logits must be [N, K], got shape [${logits.shape}]`);
  if (!(targets instanceof tf.Tensor) || targets.dtype !== 'int32' || targets.rank !== 1) {
    const got = targets instanceof tf.Tensor ? `${targets.dtype} [${targets.shape}]` : typeof targets;
    throw new TypeError(`${op}: targets must be an int32 tensor [N], got ${got}`);
  }
  const [N, K] = logits.shape;
  if (targets.shape[0] !== N) throw new RangeError(`${op}: ${targets.shape[0]} targets for ${N} rows of logits`);
  if (!readsAreCheap()) return;
  for (const t of targets.dataSync()) {
    if (t !== ignoreIndex && (t < 0 || t >= K))
      throw new RangeError(`${op}: target ${t} outside [0, ${K}) (ignoreIndex is ${ignoreIndex})`);
  }
}
