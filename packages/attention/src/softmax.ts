/**
 * softmax over the last axis (α-entmax at α = 1), with the library's row conventions: `-Infinity`
 * entries get exactly 0, a fully masked row gives zeros instead of NaN (tf.softmax gives NaN), and a
 * row holding NaN or +Infinity gives NaN (see rows.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { checkScores, shiftRows } from './rows.js';

/**
 * softmax(x)_i = exp(x_i) / Σ_j exp(x_j) over the last axis.
 *
 * Gradient: dX = p ⊙ (dY − Σ p ⊙ dY), the α = 1 case of the entmax Jacobian.
 *
 * @param x float32 scores `[..., n]`; `-Infinity` masks an entry.
 * @returns probabilities `[..., n]`, rows summing to 1 (0 for a fully masked row).
 * @example
 * softmax(tf.tensor1d([1, 2, -Infinity])).print();  // [0.269, 0.731, 0]
 */
function softmax_(x: tf.Tensor): tf.Tensor {
  checkScores(x, 'softmax');
  const last = x.rank - 1;
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const rows = shiftRows(input);
    // The fused kernel is several times faster than exp/sum on wasm; every row here has max 0.
    const p = rows.restore(tf.softmax(rows.z));
    save([p]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [y] = saved as [tf.Tensor];
      const py = tf.mul(y, dy);
      return tf.sub(py, tf.mul(y, tf.sum(py, last, true)));
    };
    return { value: p, gradFunc };
  });
  return f(x);
}

export const softmax = tf.op({ softmax_ });
