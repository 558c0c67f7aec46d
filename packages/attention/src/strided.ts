/**
 * A fixed sparse pattern: strided attention (Child et al. 2019, "Generating Long Sequences with
 * Sparse Transformers"), the O(n√n) reference the α-entmax maps are measured against. Unlike
 * α-entmax it never computes most scores, so its cost is sub-quadratic by construction.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Strided attention (Child et al. 2019): query i sees the local window (i − s, i] and the "summary"
 * keys j ≡ s − 1 (mod s), j ≤ i, with s = ⌈√n⌉: ≤ 2s keys, O(n√n·d). Built from dense products on
 * blocks of s queries (their 2s-key window) plus one product with the n/s summary keys.
 */
export function stridedAttention(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D): tf.Tensor {
  if (
    q.rank !== 2 ||
    k.rank !== 2 ||
    v.rank !== 2 ||
    k.shape[0] !== q.shape[0] ||
    v.shape[0] !== q.shape[0] ||
    k.shape[1] !== q.shape[1]
  ) {
    throw new RangeError(
      `stridedAttention: expected q, k [n, d] and v [n, dv] with the same n; got [${q.shape}], [${k.shape}], ` +
      `[${v.shape}]`,
    );
  }
  const [n, d] = q.shape;
  const s = Math.ceil(Math.sqrt(n));
  const nb = Math.ceil(n / s), N = nb * s;
  const summary = Array.from({ length: Math.floor(n / s) }, (_, j) => (j + 1) * s - 1);
  // masks (additive): window keys of block b are positions (b−1)s … (b+1)s − 1
  const winMask = new Float32Array(nb * s * 2 * s).fill(-Infinity);
  const sumMask = new Float32Array(N * summary.length).fill(-Infinity);
  for (let i = 0; i < n; i++) {
    const b = Math.floor(i / s);
    for (let c = 0; c < 2 * s; c++) {
      const j = (b - 1) * s + c;
      if (j >= 0 && j <= i && j > i - s) winMask[(b * s + (i % s)) * 2 * s + c] = 0;
    }
    summary.forEach((j, c) => { if (j <= i - s) sumMask[i * summary.length + c] = 0; });   // not already in the window
  }
  return tf.tidy(() => {
    const scale = 1 / Math.sqrt(d);
    const pad = (t: tf.Tensor2D, front: number) => tf.pad(t, [[front, N - n], [0, 0]]);
    const qb = tf.reshape(pad(tf.mul(q, scale) as tf.Tensor2D, 0), [nb, s, d]);
    const win = (t: tf.Tensor2D) => {                                    // [nb, 2s, d] windows
      const p = pad(t, s);
      return tf.concat(
        [tf.reshape(tf.slice(p, [0, 0], [N, d]), [nb, s, d]), tf.reshape(tf.slice(p, [s, 0], [N, d]), [nb, s, d])],
        1,
      );
    };
    const sLoc = tf.add(tf.matMul(qb, win(k), false, true), tf.tensor3d(winMask, [nb, s, 2 * s]));
    const ix = tf.tensor1d(summary.length ? summary : [0], 'int32');
    const kSum = tf.gather(k, ix), vSum = tf.gather(v, ix);
    const sSum = tf.reshape(
      tf.add(
        tf.matMul(tf.reshape(qb, [N, d]), kSum, false, true),
        summary.length ? tf.tensor2d(sumMask, [N, summary.length]) : -Infinity,
      ),
      [nb, s, -1],
    );
    const p = tf.softmax(tf.concat([sLoc, sSum], 2));
    const [pLoc, pSum] = tf.split(p, [2 * s, sSum.shape[2] as number], 2);
    const out = tf.add(tf.matMul(pLoc, win(v)), tf.reshape(tf.matMul(tf.reshape(pSum, [N, -1]), vSum), [nb, s, d]));
    return tf.slice(tf.reshape(out, [N, d]), [0, 0], [n, d]);
  });
}
