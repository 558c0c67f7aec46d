/**
 * 1.5-entmax (Peters, Niculae & Martins, 2019): p = [z/2 − τ]₊², α-entmax at α = 1.5, the
 * middle ground between softmax (dense) and sparsemax. Exact, from the sorted top of each row.
 */
import * as tf from '@tensorflow/tfjs';
import { checkScores, positivePart, safeRowDiv, viewRows } from './rows.js';
import { entmax15Threshold, sortedThreshold } from './sort_threshold.js';

/**
 * 1.5-entmax over the last axis.
 *
 * Gradient: with g = √p = [z/2 − τ]₊ (saved from the forward pass, no square root needed),
 * dX = g ⊙ dY − g · Σ(g ⊙ dY)/Σ g.
 *
 * @param x float32 scores `[..., n]`; `-Infinity` masks an entry.
 * @returns probabilities `[..., n]`, rows summing to 1 (0 for a fully masked row).
 * @example
 * entmax15(tf.tensor1d([1, 0, -3])).print();  // [0.7357, 0.2643, 0]
 */
function entmax15_(x: tf.Tensor): tf.Tensor {
  checkScores(x, 'entmax15');
  const last = x.rank - 1;
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const rows = viewRows(input);
    const tau = sortedThreshold(rows.x, rows.m, 0.5, 64, entmax15Threshold);   // in units of (x − m)/2
    const g = rows.restore(positivePart(tf.sub(tf.mul(rows.x, 0.5), tf.add(tf.mul(rows.m, 0.5), tau))));   // √p
    save([g]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sq] = saved as [tf.Tensor];
      const gdy = tf.mul(sq, dy);
      const mean = safeRowDiv(tf.sum(gdy, last, true), tf.sum(sq, last, true));
      return tf.sub(gdy, tf.mul(sq, mean));
    };
    return { value: tf.square(g), gradFunc };
  });
  return f(x);
}

export const entmax15 = tf.op({ entmax15_ });
