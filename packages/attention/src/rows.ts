/**
 * Row handling shared by every map: input checks, the max shift, and the rows that are not
 * ordinary score rows.
 *
 * Convention (one for the whole library): a distribution is taken over the last axis of a float32
 * tensor of any rank; leading axes are batch axes. `-Infinity` marks a masked entry.
 *
 * Rows whose maximum is not finite are handled off the fast path, so the hot path never pays for
 * them:
 * - every entry `-Infinity` (a fully masked row): the result is a row of zeros, gradient zero;
 * - any `NaN` or `+Infinity`: the row is invalid; the result is a row of `NaN` (loud, and confined to
 *   that row and its gradient). tfjs's own `softmax` gives NaN there, but not always for the
 *   whole row.
 *
 * Finding those rows costs one `max` per call and one read of the row maxima (a few kB) where reads
 * are cheap (capabilities.ts); elsewhere every call takes the where-based path, a few elementwise
 * passes and no read.
 */
import * as tf from '@tensorflow/tfjs';
import { readsAreCheap } from './capabilities.js';

/** Throws a clear error unless `x` is a float32 tensor of rank ≥ 1 with a non-empty last axis. */
export function checkScores(x: unknown, op: string): asserts x is tf.Tensor {
  if (!(x instanceof tf.Tensor)) {
    throw new TypeError(`${op}: expected a tf.Tensor of scores, got ${describe(x)}`);
  }
  if (x.dtype !== 'float32') {
    throw new TypeError(`${op}: expected float32 scores, got ${x.dtype} (cast with tf.cast(x, 'float32'))`);
  }
  if (x.rank < 1 || x.shape[x.rank - 1] === 0) {
    throw new RangeError(`${op}: expected scores with a non-empty last axis, got shape [${x.shape}]`);
  }
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array (wrap it with tf.tensor)';
  return typeof x;
}

/** Scores split into ordinary rows (finite max) and special rows, with a way to put the latter back. */
export interface RowView {
  /** The scores; special rows are replaced by zeros (an ordinary row). `[..., n]` */
  x: tf.Tensor;
  /** Row maxima of `x`, finite. `[..., 1]` */
  m: tf.Tensor;
  /**
   * False when every row had a finite maximum (the common case: `restore` is the identity). Always
   * true where reads are not cheap.
   */
  special: boolean;
  /**
   * Puts the special rows back into a `[..., n]` result: zeros for masked rows, NaN for invalid.
   * Call it inside the forward pass only (its tensors do not outlive the op).
   */
  restore(t: tf.Tensor): tf.Tensor;
}

/** Row maxima, with rows whose maximum is not finite set aside (see file comment). */
export function viewRows(x: tf.Tensor): RowView {
  const last = x.rank - 1;
  const m = tf.max(x, last, true);                              // [..., 1]
  const special = !readsAreCheap() || m.dataSync().some((v) => !Number.isFinite(v));
  if (!special) return { x, m, special, restore: (t) => t };
  const finite = tf.isFinite(m);
  const ok = tf.broadcastTo(finite, x.shape);                   // [..., n] bool
  const safe = tf.where(ok, x, tf.zerosLike(x));
  // -inf max: fully masked → 0; NaN or +inf max: invalid → NaN.
  const fill = tf.broadcastTo(tf.where(tf.equal(m, -Infinity), tf.zerosLike(m), tf.fill(m.shape, NaN)), x.shape);
  return { x: safe, m: tf.where(finite, m, tf.zerosLike(m)), special, restore: (t) => tf.where(ok, t, fill) };
}

/** `x − max(x)` per row (max 0 on ordinary rows; special rows become zeros) and the view. */
export function shiftRows(x: tf.Tensor): RowView & { z: tf.Tensor } {
  const v = viewRows(x);
  return { ...v, z: tf.sub(v.x, v.m) };
}

/**
 * max(x, 0). Not tf.relu: on webgl (Chromium's SwiftShader, measured) relu returns −∞ unchanged, so
 * masked scores would come out of a threshold map as −∞ instead of exactly 0; maximum does not.
 */
export function positivePart(x: tf.Tensor): tf.Tensor {
  return tf.maximum(x, 0);
}

/** `a / b` for per-row sums, with 0/0 read as 0 (rows without support, e.g. fully masked). */
export function safeRowDiv(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.div(a, tf.add(b, tf.cast(tf.equal(b, 0), 'float32')));
}
