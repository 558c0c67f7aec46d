/**
 * Entropy statistics of distributions over the last axis: Shannon entropy, varentropy (the
 * variance of the surprisal −ln p, used by Entropix-style samplers and by the AES gate) and the
 * Tsallis α-entropy that α-entmax maximises (Tsallis 1988; Blondel et al. 2020).
 *
 * Everything is in nats unless `base: 2` asks for bits (entropy) and bits² (varentropy). Exact
 * zeros (sparse rows, masked logits) contribute nothing and give finite values and gradients.
 */
import * as tf from '@tensorflow/tfjs';
import { expm1, psi } from './numerics.js';
import { checkScores, shiftRows } from './rows.js';

export interface EntropyArgs {
  /** 'e' (nats, default) or 2 (bits; varentropy in bits²). */
  base?: 2 | 'e';
}
export const ENTROPY_DEFAULTS: Readonly<Required<EntropyArgs>> = Object.freeze({ base: 'e' as const });

/** Per-row entropy and varentropy, shape `x.shape[:-1]`. */
export type EntropyStats = {
  entropy: tf.Tensor;
  varentropy: tf.Tensor;
};

function inBase(stats: { entropy: tf.Tensor; varentropy: tf.Tensor }, args: EntropyArgs): EntropyStats {
  const { base } = { ...ENTROPY_DEFAULTS, ...args };
  if (base !== 'e' && base !== 2) throw new RangeError(`entropy: base must be 'e' or 2, got ${String(base)}`);
  if (base === 'e') return stats;
  return { entropy: tf.div(stats.entropy, Math.LN2), varentropy: tf.div(stats.varentropy, Math.LN2 ** 2) };
}

/**
 * Entropy H = −Σ p ln p and varentropy V = Σ p (ln p + H)² of softmax(logits), computed from the
 * log-softmax (no log of a rounded probability). Masked (−∞) logits are excluded; a fully masked
 * row gives 0, a row with NaN/+∞ gives NaN.
 *
 * Gradients (closed form, d = ln p + H): ∂H/∂z_i = −p_i d_i, ∂V/∂z_i = p_i (d_i² + 2 d_i − V).
 *
 * @param logits float32 `[..., V]`.
 * @example
 * const {entropy, varentropy} = logitStats(tf.tensor1d([2, 1, 0]), {base: 2});
 */
export function logitStats(logits: tf.Tensor, args: EntropyArgs = {}): EntropyStats {
  checkScores(logits, 'logitStats');
  const last = logits.rank - 1;
  const f = tf.customGrad((...a: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, save] = a as [tf.Tensor, tf.GradSaveFunc];
    const rows = shiftRows(x);
    const logZ = tf.log(tf.sum(tf.exp(rows.z), last, true));       // ≥ 0: the max entry is 0
    // ℓ = ln p, with −∞ (masked) clipped to a finite value so that p·ℓ and p·d² are 0 there
    // (a clip, not a comparison: on wasm a comparison with a broadcast operand is ~10× slower).
    const ell = tf.clipByValue(tf.sub(rows.z, logZ), -1e15, 0);
    const p = tf.exp(ell);
    const H = tf.neg(tf.sum(rows.restore(tf.mul(p, ell)), last, true));
    const d = tf.add(ell, H);
    const V = tf.sum(rows.restore(tf.mul(p, tf.square(d))), last, true);
    save([p, d, V]);
    const gradFunc = (dy: tf.Tensor, [ps, ds, Vs]: tf.Tensor[]) => {
      const [dH, dV] = tf.split(dy, 2, last);
      const gH = tf.neg(tf.mul(ps, ds));
      const gV = tf.mul(ps, tf.sub(tf.add(tf.square(ds), tf.mul(ds, 2)), Vs));
      return tf.add(tf.mul(dH, gH), tf.mul(dV, gV));
    };
    return { value: tf.concat([H, V], last), gradFunc };
  });
  return tf.tidy(() => {
    const [H, V] = tf.split(f(logits), 2, last);
    return inBase({ entropy: tf.squeeze(H, [last]), varentropy: tf.squeeze(V, [last]) }, args);
  });
}

/** Throws unless `p` is a float32 tensor of rank ≥ 1 (rows of probabilities). */
function checkProbs(p: unknown, op: string): asserts p is tf.Tensor {
  checkScores(p, op);
}

/** ln p where p > 0 and 0 where p = 0, with a finite gradient at 0 (the log never sees a 0). */
function safeLog(p: tf.Tensor): tf.Tensor {
  return tf.log(tf.add(p, tf.sub(1, tf.step(p))));
}

/**
 * Entropy and varentropy (nats, or bits with `base: 2`) of given probability rows that may hold
 * exact zeros, e.g. sparsemax/entmax outputs. Rows are expected to sum to 1 (a zero row gives 0).
 * Values and gradients stay finite at zeros (the gradient there is taken as 0).
 *
 * @param p float32 `[..., n]`, non-negative.
 */
export function probStats(p: tf.Tensor, args: EntropyArgs = {}): EntropyStats {
  checkProbs(p, 'probStats');
  const last = p.rank - 1;
  return tf.tidy(() => {
    const ell = safeLog(p);
    const H = tf.neg(tf.sum(tf.mul(p, ell), last, true));
    const V = tf.sum(tf.mul(p, tf.square(tf.add(ell, H))), last);
    return inBase({ entropy: tf.squeeze(H, [last]), varentropy: V }, args);
  });
}

/**
 * Tsallis α-entropy H_α(p) = (1 − Σ p^α)/(α(α−1)), Shannon entropy at α = 1 (its limit); the
 * regulariser of α-entmax (entmax_α(z) = argmax_p ⟨p, z⟩ + H_α(p)). Per row, shape `p.shape[:-1]`.
 *
 * Computed as H_α = −Σ p·expm1((α−1) ln p)/(α(α−1)) so that α → 1 does not cancel; the α-gradient
 * likewise uses ψ(a) = a·eᵃ − expm1(a) by its series near 0 (see docs/math.md).
 *
 * @param alpha α ≥ 1: a number, or a float32 tensor broadcasting to `[..., 1]` (differentiable).
 */
export function tsallisEntropy(p: tf.Tensor, alpha: number | tf.Tensor): tf.Tensor {
  checkProbs(p, 'tsallisEntropy');
  const last = p.rank - 1;
  if (typeof alpha === 'number') {
    if (!Number.isFinite(alpha) || alpha < 1) throw new RangeError(`tsallisEntropy: alpha must be ≥ 1, got ${alpha}`);
    if (alpha === 1) return probStats(p).entropy;
  }
  const f = tf.customGrad((...a: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [probs, al, save] = a as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const eps = tf.maximum(tf.sub(al, 1), 1e-6);
    const H = tsallisValue(probs, eps, al, last);
    save([probs, al, eps]);
    const gradFunc = (dy: tf.Tensor, [ps, als, es]: tf.Tensor[]) => {
      const dyr = tf.expandDims(dy, last);
      // ∂H/∂p_i = −(expm1(ε ln p_i)/ε + p_i^ε)/α, finite at p_i = 0 for α > 1 (ln 0 = −∞ is fine here).
      const lp = tf.log(ps);
      const gp = tf.neg(tf.div(tf.add(tf.div(expm1(tf.mul(es, lp)), es), tf.exp(tf.mul(es, lp))), als));
      return [tf.mul(dyr, gp), tf.mul(dyr, tsallisAlphaGrad(ps, es, als, last))];
    };
    return { value: H, gradFunc };
  });
  return tf.tidy(() => {
    const al = typeof alpha === 'number' ? tf.scalar(alpha) : alpha;
    return f(p, tf.broadcastTo(al, [...p.shape.slice(0, -1), 1]));
  });
}

/** H_α per row, `[...]`; eps = α − 1 (tensor, broadcasting to `[..., 1]`). */
export function tsallisValue(p: tf.Tensor, eps: tf.Tensor, alpha: tf.Tensor, last: number): tf.Tensor {
  const e = tf.sum(tf.mul(p, tf.div(expm1(tf.mul(eps, safeLog(p))), eps)), last, true);
  return tf.squeeze(tf.neg(tf.div(e, alpha)), [last]);
}

/**
 * ∂H_α/∂α at fixed p, `[..., 1]`. With E(ε) = Σ p expm1(ε ℓ)/ε, H = −E/α and
 * dE/dε = Σ p ψ(εℓ)/ε², ψ(a) = a eᵃ − expm1(a) = Σ_{k≥2} (k−1)/k! aᵏ.
 */
export function tsallisAlphaGrad(p: tf.Tensor, eps: tf.Tensor, alpha: tf.Tensor, last: number): tf.Tensor {
  const a = tf.mul(eps, safeLog(p));
  const psiA = psi(a);
  const E = tf.sum(tf.mul(p, tf.div(expm1(a), eps)), last, true);
  const dE = tf.div(tf.sum(tf.mul(p, psiA), last, true), tf.square(eps));
  return tf.add(tf.neg(tf.div(dE, alpha)), tf.div(E, tf.square(alpha)));
}
