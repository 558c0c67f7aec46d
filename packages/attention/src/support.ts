/** Support statistics of probability rows: how many entries are exactly non-zero. */
import * as tf from '@tensorflow/tfjs';
import { checkScores } from './rows.js';

/**
 * Number of non-zero entries per row, int32 `p.shape[:-1]`. For softmax it is n (except masked
 * entries and underflow); for sparsemax/entmax it is the support size.
 * @example
 * supportSize(sparsemax(tf.tensor2d([[3, 1, 0], [0, 0, 0]]))).print();  // [1, 3]
 */
export function supportSize(p: tf.Tensor): tf.Tensor {
  checkScores(p, 'supportSize');
  return tf.tidy(() => tf.sum(tf.cast(tf.greater(p, 0), 'int32'), p.rank - 1));
}

/** Fraction of non-zero entries per row, float32 `p.shape[:-1]` in [0, 1]. */
export function supportFraction(p: tf.Tensor): tf.Tensor {
  checkScores(p, 'supportFraction');
  return tf.tidy(() => tf.div(tf.cast(supportSize(p), 'float32'), p.shape[p.rank - 1]));
}
