/**
 * The map of one head: from its score rows to its probabilities, by the head's normaliser. Every
 * kind is an α-entmax of (possibly rescaled) scores, p = entmax_α(c ⊙ s), with c and α per kind:
 *
 *   fixed, learned     c = 1,  α fixed or 1 + sigmoid(a_h)
 *   aes                c = 1,  α from the AES gate (aes_gate.ts), per head or per row
 *   ssmax              α = 1,  c = s_h · ln n                        (Nakanishi 2025, Scalable-Softmax)
 *   asentmax           α = 1.5 or learned,  c = δ + β_h (ln n)^γ_h   (Vasylenko et al. 2026, ASEntmax)
 *   adaptive-temp      α = 1,  c = max(1, poly(H)) where H > 0.5, else 1 (Veličković et al. 2024)
 *
 * n is the row's number of visible keys (causal: position + 1), taken as at least 2 so ln n > 0 (the
 * ASEntmax paper offsets positions so that log n ≥ log 2; a one-key row is the same for any c).
 * c is kept ≥ 1e-3: a learned scale that turned negative would invert the attention.
 */
import * as tf from '@tensorflow/tfjs';
import { logitStats } from './entropy.js';
import { entmax } from './normaliser.js';
import type { Normaliser } from './normaliser.js';
import { learnedAlpha } from './plan.js';
import type { HeadRows } from './scores.js';

/** Coefficients of the adaptive-temperature polynomial in H (nats), highest power first. */
export const ADAPTIVE_TEMP_POLY = Object.freeze([-0.037, 0.481, -2.3, 4.917, -1.791]);
/** Rows with a softmax entropy at or below this (nats) keep temperature 1. */
export const ADAPTIVE_TEMP_FROM = 0.5;

export interface HeadInput {
  /** The head's masked scores, in blocks `[..., T, S]`. */
  scores: HeadRows;
  /** Visible keys per row, blocks `[..., T]` matching `scores`. */
  visible: () => tf.Tensor[];
  /** Learned parameters `[H]` by name. */
  params: Record<string, tf.Tensor>;
  h: number;
  /** The AES gate's α for this head (AES heads only). */
  aesAlpha?: number | tf.Tensor | tf.Tensor[];
}

export interface HeadOutput {
  probs: HeadRows;
  /** α of the head: a number or scalar tensor (per-row AES: the mean over its rows). */
  alpha: number | tf.Tensor;
  /** α per row, blocks `[..., T, 1]`, where it varies by row. */
  rowAlpha?: tf.Tensor[];
}

/**
 * c ⊙ s for scores s `[..., T, S]` (−∞ masked) and row scales c `[..., T, 1]` > 0, with the gradient
 * wrt c summed over the visible keys only: plain autodiff would give 0 · (−∞) = NaN at masked keys.
 */
function scaleRows(s: tf.Tensor, c: tf.Tensor): tf.Tensor {
  const last = s.rank - 1;
  return tf.customGrad((...a: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, scale, save] = a as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([x, scale]);
    const gradFunc = (dy: tf.Tensor, [xs, cs]: tf.Tensor[]) => {
      const visible = tf.where(tf.isFinite(xs), xs, tf.zerosLike(xs));
      return [tf.mul(dy, cs), tf.sum(tf.mul(dy, visible), last, true)];
    };
    return { value: tf.mul(x, scale), gradFunc };
  })(s, c);
}

/** Smallest row scale c (a learned scale that turned negative would invert the attention). */
export const MIN_ROW_SCALE = 1e-3;

/** ASEntmax's row scale c = max(δ + β (ln n)^γ, MIN_ROW_SCALE), from ln n of each row (n ≥ 2). */
export function asentScale(delta: number, beta: tf.Tensor, gamma: tf.Tensor, lnN: tf.Tensor): tf.Tensor {
  return tf.maximum(tf.add(delta, tf.mul(beta, tf.pow(lnN, gamma))), MIN_ROW_SCALE);
}

/** Probabilities of head `h` under normaliser `n` (see the file comment). */
export function headProbs(n: Normaliser, { scores, visible, params, h, aesAlpha }: HeadInput): HeadOutput {
  const param = (name: string) => tf.reshape(tf.slice(params[name], [h], [1]), []);
  const lnN = () => visible().map((v, i) => tf.reshape(tf.log(tf.maximum(v, 2)), [...scores[i].shape.slice(0, -1), 1]));
  const scaled = (c: tf.Tensor[]) => scores.map((s, i) => scaleRows(s, tf.maximum(c[i], MIN_ROW_SCALE)));
  switch (n.kind) {
    case 'fixed':
      return { probs: scores.map((s) => entmax(s, n.alpha)), alpha: n.alpha };
    case 'learned': {
      const alpha = learnedAlpha(params.alpha, h);
      return { probs: scores.map((s) => entmax(s, alpha)), alpha };
    }
    case 'aes': {
      if (!Array.isArray(aesAlpha)) return { probs: scores.map((s) => entmax(s, aesAlpha!)), alpha: aesAlpha! };
      const rowAlpha = aesAlpha;
      return {
        probs: scores.map((s, i) => entmax(s, rowAlpha[i])),
        alpha: tf.mean(tf.concat(rowAlpha.map((a) => tf.reshape(a, [-1])))),
        rowAlpha,
      };
    }
    case 'ssmax': {
      const sh = param('ssmaxS');
      return { probs: scaled(lnN().map((l) => tf.mul(l, sh))).map((s) => entmax(s, 1)), alpha: 1 };
    }
    case 'asentmax': {
      const [beta, gamma] = [param('asentBeta'), param('asentGamma')];
      const c = lnN().map((l) => asentScale(n.delta, beta, gamma, l));
      const alpha = n.alpha === 'learned' ? learnedAlpha(params.alpha, h) : n.alpha;
      return { probs: scaled(c).map((s) => entmax(s, alpha)), alpha };
    }
    case 'adaptive-temp': {
      const c = scores.map((s) => {
        const H = tf.expandDims(logitStats(s).entropy, -1);                  // [..., T, 1], nats
        const poly = ADAPTIVE_TEMP_POLY.reduce<tf.Tensor>((acc, a) => tf.add(tf.mul(acc, H), a), tf.zerosLike(H));
        // A step, not a comparison: tfjs has no gradient for comparisons, and β depends on the scores.
        const on = tf.step(tf.sub(H, ADAPTIVE_TEMP_FROM));
        return tf.add(1, tf.mul(on, tf.sub(tf.maximum(poly, 1), 1)));
      });
      return { probs: scaled(c).map((s) => entmax(s, 1)), alpha: 1 };
    }
  }
}
