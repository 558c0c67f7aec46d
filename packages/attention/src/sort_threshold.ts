/**
 * Exact thresholds of sparsemax and 1.5-entmax from the sorted top of each row.
 *
 * Both maps are p = [z − τ]₊^{1/(α−1)} with τ the unique root of Σ p = 1. Sorting a row descending,
 * z₍₁₎ ≥ z₍₂₎ ≥ …, each prefix ρ gives a candidate τ_ρ that solves Σ_{i≤ρ} (z₍ᵢ₎ − τ)^{1/(α−1)} = 1
 * (Martins & Astudillo 2016; Peters et al. 2019). Every candidate with τ_ρ ≤ z₍ρ₎ satisfies
 * Σ p(τ_ρ) ≥ 1, hence τ_ρ ≤ τ, and the candidate at the true support size equals τ: so
 * **τ = max of the valid candidates**, which needs no gather of the support size.
 *
 * Rows are not fully sorted. First take the top k₀ of each row (`tf.topk`): if the k₀-th entry is not
 * above the threshold found, the support lies inside and τ is exact. Otherwise that threshold is
 * still a lower bound (a max over valid candidates), so the support lies inside {X > it}: sort the
 * top k = (largest count of that set over rows) and finish. Both ways are exact. On wasm a top-32 of
 * 1024 entries costs a sixth of a full sort, and is still 75% of sparsemax's forward time.
 */
import * as tf from '@tensorflow/tfjs';
import { readsAreCheap } from './capabilities.js';

/**
 * Exact threshold τ of every row, in the units X = (x − m)·scale (scale 1: sparsemax, ½: entmax15),
 * given `thresholdOf`, the candidate-maximum rule on sorted rows of X. `[..., 1]`.
 * @param x scores `[..., n]` (not shifted; `-Infinity` allowed), m their row maxima `[..., 1]` (finite).
 * @param firstK width of the first partial sort: well above the typical support (sparsemax keeps ~4
 *   of 1024 Gaussian scores, 1.5-entmax ~19), since a single row above it costs a second sort.
 */
export function sortedThreshold(x: tf.Tensor, m: tf.Tensor, scale: number, firstK: number,
  thresholdOf: (sorted: tf.Tensor) => tf.Tensor): tf.Tensor {
  const last = x.rank - 1;
  const n = x.shape[last];
  const topX = (k: number) => tf.mul(tf.sub(tf.topk(x, k).values, m), scale);   // [..., k] sorted X
  if (n <= firstK || !readsAreCheap()) return thresholdOf(topX(n));        // no read: sort whole rows
  const sorted = topX(firstK);
  const lower = thresholdOf(sorted);                                 // exact, or a lower bound of τ
  const kth = tf.slice(
    sorted,
    sorted.shape.map((d, i) => (i === last ? firstK - 1 : 0)),
    [...sorted.shape.slice(0, -1), 1],
  );
  if (tf.all(tf.lessEqual(kth, lower)).dataSync()[0]) return lower;  // support ⊂ top k − 1 on every row
  // Some row has a larger support: it lies in {X > lower}; sort the top (largest such count).
  const count = tf.sum(tf.step(tf.sub(x, tf.add(m, tf.div(lower, scale)))), last);
  const k = Math.min(n, Math.max(firstK, tf.max(count).dataSync()[0]));
  return thresholdOf(topX(k));
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
