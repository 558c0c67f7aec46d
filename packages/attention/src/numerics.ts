/**
 * Elementwise helpers that keep float32 accuracy where tfjs kernels or naive formulas lose it.
 * Where `log` and `exp` are exact (host backends, capabilities.ts) they use them; on device backends
 * they take series of additions and products near 0, whose accuracy does not depend on the device.
 */
import * as tf from '@tensorflow/tfjs';
import { mathIsExact } from './capabilities.js';

/**
 * log(1 + t), accurate for small |t| on every backend. The wasm kernel of `tf.log1p` (tfjs 4.22)
 * computes log(1 + t) literally: 5% relative error at t = 1e-6. Kahan's trick: with u = fl(1 + t),
 * log1p(t) = log(u)·t/(u − 1), exact to a few ulps (u − 1 is exact); t itself when u rounds to 1.
 * That needs a `log` exact near 1; on device backends, for t ∈ [−0.5, 1] (where WGSL's `log` has
 * only an absolute error bound), 2·atanh(s) = 2s(1 + s²/3 + s⁴/5 + …) with s = t/(2 + t), |s| ≤ 1/3.
 */
export function log1p(t: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const u = tf.add(t, 1);
    if (!mathIsExact()) {
      const s = tf.div(t, tf.add(u, 1));
      const s2 = tf.square(s);
      let acc: tf.Tensor = tf.scalar(1 / 19);                       // truncation (1/3)^20/21 ≈ 1e-11
      for (let k = 8; k >= 0; k--) acc = tf.add(tf.mul(acc, s2), 1 / (2 * k + 1));
      const inside = tf.logicalAnd(tf.greaterEqual(t, -0.5), tf.lessEqual(t, 1));
      return tf.where(inside, tf.mul(tf.mul(s, acc), 2), tf.log(u));
    }
    const d = tf.sub(u, 1);
    return tf.where(tf.equal(d, 0), t, tf.mul(tf.log(u), tf.div(t, d)));
  });
}

/** Σ_{k=2}^{K} c_k xᵏ by Horner's rule (c indexed by k). */
function series(x: tf.Tensor, c: number[]): tf.Tensor {
  let s = tf.zerosLike(x);
  for (let k = c.length - 1; k >= 2; k--) s = tf.mul(tf.add(s, c[k]), x);
  return tf.mul(s, x);
}

/** Below this |argument| the series are used; their truncation error there is under 1e-8 relative. */
const SERIES_BELOW = 0.1;

/**
 * exp(x) − 1, accurate for small |x| on every backend: `tf.expm1` where math is exact; on device
 * backends (tfjs's webgpu kernel computes exp(x) − 1 literally: 3% relative error at x = 1e-6) the
 * series Σ_{k≥1} xᵏ/k! near 0 and exp(x) − 1 elsewhere, where the subtraction loses at most a factor
 * 10 (|x| ≥ 0.1). Not for differentiation.
 */
export function expm1(x: tf.Tensor): tf.Tensor {
  if (mathIsExact()) return tf.expm1(x);
  return tf.tidy(() => {
    const c: number[] = [0, 0];
    for (let k = 2, f = 2; k <= 9; k++, f *= k) c[k] = 1 / f;
    const direct = tf.sub(tf.exp(x), 1);
    return tf.where(tf.less(tf.abs(x), SERIES_BELOW), tf.add(x, series(x, c)), direct);
  });
}

/**
 * φ(t) = log1p(t) − t/(1+t) for t ∈ (−1, ∞); ≥ 0 and O(t²), computed without cancellation
 * (series Σ_{k≥2} (−1)^k (k−1)/k tᵏ near 0). Used by the α-gradient of entmax.
 */
export function phi(t: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const c = Array.from({ length: 10 }, (_, k) => (k < 2 ? 0 : ((k % 2 ? -1 : 1) * (k - 1)) / k));
    const direct = tf.sub(log1p(t), tf.div(t, tf.add(t, 1)));
    return tf.where(tf.less(tf.abs(t), SERIES_BELOW), series(t, c), direct);
  });
}

/**
 * ψ(a) = a·eᵃ − expm1(a) = Σ_{k≥2} (k−1)/k! aᵏ, O(a²), without cancellation. Used by the
 * α-gradient of the Tsallis entropy.
 */
export function psi(a: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const c: number[] = [0, 0];
    for (let k = 2, f = 2; k <= 9; k++, f *= k) c[k] = (k - 1) / f;
    const direct = tf.sub(tf.mul(a, tf.exp(a)), tf.expm1(a));
    return tf.where(tf.less(tf.abs(a), SERIES_BELOW), series(a, c), direct);
  });
}
