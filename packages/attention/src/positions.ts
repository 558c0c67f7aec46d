/**
 * Positions that extrapolate: rotary embeddings (RoPE, Su et al. 2021) rotate queries and keys by
 * their absolute positions so that q·k depends on the distance only; ALiBi (Press et al. 2022) adds
 * −m_h·(i − j) to the score of query i and key j, a slope m_h per head. Neither has a table of
 * positions, so neither stops at the training length (learned positions do).
 */
import * as tf from '@tensorflow/tfjs';

/** Base of the RoPE frequencies θ_i = base^(−2i/d). */
export const ROPE_BASE = 10000;

/**
 * RoPE on `[B, H, T, d]` (d even) for positions offset, offset + 1, …: each pair (x_i, x_{i+d/2}) is
 * rotated by the angle pos·θ_i (the "half" layout).
 * @example
 * const qr = rope(q, past);              // queries of positions past … past + T − 1
 */
export function rope(x: tf.Tensor, offset: number): tf.Tensor {
  const [, , T, d] = x.shape as number[];
  if (d % 2) throw new RangeError(`rope: the head size must be even, got ${d}`);
  const half = d / 2;
  const angles = new Float32Array(T * half);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) angles[t * half + i] = (offset + t) * ROPE_BASE ** (-(2 * i) / d);
  }
  return tf.tidy(() => {
    const a = tf.tensor2d(angles, [T, half]);
    const [cos, sin] = [tf.cos(a), tf.sin(a)];                        // [T, d/2], broadcast over B, H
    const [x1, x2] = tf.split(x, 2, 3);
    return tf.concat([tf.sub(tf.mul(x1, cos), tf.mul(x2, sin)), tf.add(tf.mul(x1, sin), tf.mul(x2, cos))], 3);
  });
}

/** ALiBi slopes m_h = 2^(−8(h + 1)/H) (the geometric sequence of the paper, for any H). */
export function alibiSlopes(H: number): number[] {
  return Array.from({ length: H }, (_, h) => 2 ** ((-8 * (h + 1)) / H));
}

/**
 * The ALiBi distance term j − pos_i (≤ 0 for keys at or before the query; |·| negated for later
 * keys) of query rows at positions `rows` (each + offset) against keys 0…S−1, `[rows, S]`.
 */
export function alibiDistance(rows: number[], S: number, offset: number): tf.Tensor2D {
  const d = new Float32Array(rows.length * S);
  rows.forEach((i, r) => { for (let j = 0; j < S; j++) d[r * S + j] = -Math.abs(i + offset - j); });
  return tf.tensor2d(d, [rows.length, S]);
}
