/**
 * Exact thresholds of sparsemax and 1.5-entmax from the sorted top of each row.
 *
 * Both maps are p = [z − τ]₊^{1/(α−1)} with τ the unique root of Σ p = 1. Sorting a row descending,
 * z₍₁₎ ≥ z₍₂₎ ≥ …, each prefix ρ gives a candidate τ_ρ that solves Σ_{i≤ρ} (z₍ᵢ₎ − τ)^{1/(α−1)} = 1
 * (Martins & Astudillo 2016; Peters et al. 2019). Every candidate with τ_ρ ≤ z₍ρ₎ satisfies
 * Σ p(τ_ρ) ≥ 1, hence τ_ρ ≤ τ, and the candidate at the true support size equals τ: so
 * **τ = max of the valid candidates**, which needs no gather of the support size.
 *
 * Rows are not fully sorted. After the max shift τ ≥ −1 (the top entry alone already has mass 1 at
 * τ = −1), so the support lies inside {z > −1}; we count that set per row, take the largest count k
 * over rows, and sort only the top k (`tf.topk`). This is exact, and on the wasm backend a top-16
 * costs a sixth of a full sort of 1024 entries.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * The top entries of each row that can hold the support: `[..., k]`, descending, with k the largest
 * per-row count of entries above `bound` (a lower bound of the threshold). One small read (k).
 */
export function supportCandidates(z: tf.Tensor, bound: number): tf.Tensor {
  const last = z.rank - 1;
  const n = z.shape[last];
  const count = tf.sum(tf.step(tf.sub(z, bound)), last);          // #{z > bound}, [...]
  const k = Math.min(n, Math.max(1, tf.max(count).dataSync()[0]));
  return tf.topk(z, k).values;
}

/** 1, 2, …, k as float32 `[k]` (the prefix sizes ρ). */
function prefixSizes(k: number): tf.Tensor {
  return tf.range(1, k + 1, 1, 'float32');
}

/**
 * sparsemax threshold from sorted rows `[..., k]` (descending, holding the support):
 * τ = max_ρ (Σ_{i≤ρ} z₍ᵢ₎ − 1)/ρ. Every ρ is a valid candidate here. Returns `[..., 1]`.
 */
export function sparsemaxThreshold(sorted: tf.Tensor): tf.Tensor {
  const last = sorted.rank - 1;
  const rho = prefixSizes(sorted.shape[last]);
  const tau = tf.div(tf.sub(tf.cumsum(sorted, last), 1), rho);   // τ_ρ, [..., k]
  return tf.max(tau, last, true);
}

/**
 * 1.5-entmax threshold from sorted rows `[..., k]` of X = z/2 (descending, holding the support):
 * τ_ρ = mean_ρ − √((1 − ρ·var_ρ)/ρ), valid when the root exists and τ_ρ ≤ X₍ρ₎; τ = max of the valid
 * ones. Masked (−∞) entries make their candidates NaN, which the validity test drops. `[..., 1]`.
 */
export function entmax15Threshold(sorted: tf.Tensor): tf.Tensor {
  const last = sorted.rank - 1;
  const rho = prefixSizes(sorted.shape[last]);
  const mean = tf.div(tf.cumsum(sorted, last), rho);
  const meanSq = tf.div(tf.cumsum(tf.square(sorted), last), rho);
  const ss = tf.mul(rho, tf.sub(meanSq, tf.square(mean)));         // ρ · variance
  const delta = tf.div(tf.sub(1, ss), rho);
  const tau = tf.sub(mean, tf.sqrt(tf.relu(delta)));
  const valid = tf.logicalAnd(tf.greaterEqual(delta, 0), tf.lessEqual(tau, sorted));
  return tf.max(tf.where(valid, tau, tf.fill(tau.shape, -Infinity)), last, true);
}
