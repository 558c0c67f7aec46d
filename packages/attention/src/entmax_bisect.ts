/**
 * α-entmax for any α ≥ 1 by bisection (Peters, Niculae & Martins 2019), with gradients wrt the
 * scores and wrt α (Correia, Niculae & Martins 2019, "Adaptively Sparse Transformers").
 *
 *   entmax_α(z) = argmax_{p ∈ Δ} ⟨p, z⟩ + H_α(p),  p_i = [1 + (α−1)(z_i − max z − ν)]₊^{1/(α−1)}
 *
 * We bisect on ν, the threshold measured in score units (τ = (α−1)ν − 1 in the usual
 * parametrisation). With the max shift, Σp ≥ 1 at ν = 0 and Σp ≤ 1 at ν = (1 − n^{−(α−1)})/(α−1)
 * (all n entries at the max), so [0, that] brackets the root; bisection keeps the lower end while
 * Σp − 1 ≥ 0 (the sign-product test of older code fails on peaked rows at large α). In these units
 * t = (α−1)(z − max − ν) stays accurate as α → 1, p = exp(log1p(t)/(α−1)) tends to softmax, and the
 * α-gradient can be written without the cancelling 1/(α−1)² terms (see `alphaGrad`).
 */
import * as tf from '@tensorflow/tfjs';
import { readsAreCheap } from './capabilities.js';
import { expm1, log1p, phi } from './numerics.js';
import { checkScores, positivePart, safeRowDiv, shiftRows } from './rows.js';
import { softmax } from './softmax.js';

export interface EntmaxBisectArgs {
  /**
   * Solver steps. 'halley': at most this many (default 16); on backends that read synchronously
   * (cpu, wasm) it stops as soon as every row's threshold moved by less than 1e-5 in a step, typically
   * after 3–6. 'bisect': exactly this many halvings (default 30: the bracket is at most ln n wide, so
   * 30 reach float32 resolution).
   */
  nIter?: number;
  /**
   * 'halley' (default): safeguarded Halley steps on Σp − 1 (Newton steps for α > 2), inside a
   * bisection bracket, with an exact finish for α = 2 and α = 1.5 (the threshold in closed form on
   * the support found). 'bisect': plain bisection, the reference.
   */
  solver?: 'halley' | 'bisect';
}
export const ENTMAX_BISECT_DEFAULTS: Readonly<Required<Omit<EntmaxBisectArgs, 'nIter'>>> = Object.freeze({
  solver: 'halley' as const,
});
const DEFAULT_ITERS = { bisect: 30, halley: 16 };
/** A Halley step smaller than this (in ν, score units; ν ≤ 1/(α−1)) on every row ends the solve. */
const HALLEY_TOL = 1e-5;

/** Tensor α below this is raised to it (α − 1 is a divisor); its result is softmax within 1e-6. */
export const MIN_ALPHA_EXCESS = 1e-6;

/**
 * α-entmax over the last axis by bisection.
 *
 * @param x float32 scores `[..., n]`; `-Infinity` masks an entry.
 * @param alpha α ≥ 1: a number (α = 1 is exactly `softmax`, α < 1 throws), or a float32 tensor that
 *   broadcasts to `[..., 1]` (one α per row, per head or global; values are raised to
 *   1 + MIN_ALPHA_EXCESS). Gradients flow to a tensor α. For a learned α use `1 + sigmoid(a)`.
 * @returns probabilities `[..., n]`, rows summing to 1 (0 for a fully masked row).
 * @example
 * entmaxBisect(tf.tensor2d([[2, 1, -1]]), 1.5).print();        // [[0.8307, 0.1693, 0]]
 * entmaxBisect(scores, tf.tensor([1.2, 1.8]).reshape([2, 1]));  // per-row α
 */
function entmaxBisect_(x: tf.Tensor, alpha: number | tf.Tensor, args: EntmaxBisectArgs = {}): tf.Tensor {
  checkScores(x, 'entmaxBisect');
  const { solver } = { ...ENTMAX_BISECT_DEFAULTS, ...args };
  if (solver !== 'bisect' && solver !== 'halley')
    throw new RangeError(`entmaxBisect: solver must be 'halley' or 'bisect', got ${String(solver)}`);
  const nIter = args.nIter ?? DEFAULT_ITERS[solver];
  if (!Number.isInteger(nIter) || nIter < 1)
    throw new RangeError(`entmaxBisect: nIter must be a positive integer, got ${nIter}`);
  if (typeof alpha === 'number') {
    checkAlphaNumber(alpha, 'entmaxBisect');
    if (alpha === 1) return softmax(x);
    const f = tf.customGrad((...a: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [input, save] = a as [tf.Tensor, tf.GradSaveFunc];
      const { p, t } = solve(input, alpha - 1, nIter, solver);
      save([p, t]);
      return { value: p, gradFunc: (dy: tf.Tensor, [ps, ts]: tf.Tensor[]) => scoreGrad(dy, ps, ts) };
    });
    return f(x);
  }
  checkAlphaTensor(alpha, x, 'entmaxBisect');
  const alphaC = tf.maximum(alpha, 1 + MIN_ALPHA_EXCESS);           // gradient 0 below the floor
  const f = tf.customGrad((...a: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [input, al, save] = a as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const eps = tf.sub(al, 1);
    // One α for every row (per-head α in attention): solve with the number, whose special cases and
    // plain pow are several times faster than the per-row exp/log form; gradients still go to α.
    const { p, t } = solve(input, al.size === 1 && readsAreCheap() ? eps.dataSync()[0] : eps, nIter, solver);
    save([p, t, eps]);
    const gradFunc = (dy: tf.Tensor, [ps, ts, es]: tf.Tensor[]) => [
      scoreGrad(dy, ps, ts),
      reduceTo(alphaGrad(dy, ps, ts, es), al.shape),
    ];
    return { value: p, gradFunc };
  });
  return f(x, alphaC);
}

export const entmaxBisect = tf.op({ entmaxBisect_ });

/** Clear errors for a number α (shared with the losses). */
export function checkAlphaNumber(alpha: number, op: string): void {
  if (!Number.isFinite(alpha)) throw new RangeError(`${op}: alpha must be finite, got ${alpha}`);
  if (alpha < 1) throw new RangeError(`${op}: alpha must be ≥ 1 (1 = softmax, 2 = sparsemax), got ${alpha}`);
}

/** A tensor α must be float32 and broadcast to `[...x.shape[:-1], 1]`. */
export function checkAlphaTensor(alpha: tf.Tensor, x: tf.Tensor, op: string): void {
  const target = [...x.shape.slice(0, -1), 1];
  if (alpha.dtype !== 'float32') throw new TypeError(`${op}: alpha must be float32, got ${alpha.dtype}`);
  const ok = alpha.rank <= target.length
    && alpha.shape.every((d, i) => d === 1 || d === target[target.length - alpha.rank + i]);
  if (!ok) {
    throw new RangeError(`${op}: alpha of shape [${alpha.shape}] does not broadcast to [${target}] ` +
      `(scores [${x.shape}]; alpha needs a size-1 last axis)`);
  }
}

/**
 * Bisection for ν, then p at the lower end, renormalised. `eps` = α − 1 (number or `[..., 1]`).
 * Returns p and t = (α−1)(z − ν) (for the gradients; −∞ on masked entries).
 */
function solve(
  x: tf.Tensor,
  eps: number | tf.Tensor,
  nIter: number,
  solver: 'bisect' | 'halley',
): { p: tf.Tensor; t: tf.Tensor } {
  const last = x.rank - 1;
  const n = x.shape[last];
  const rows = shiftRows(x);
  const ze = tf.mul(rows.z, eps); // (α−1) z, max 0
  const pOf = probabilities(eps);
  // Upper end of the bracket: (1 − n^{−ε})/ε = −expm1(−ε ln n)/ε, accurate for small ε.
  const rowShape = [...x.shape.slice(0, -1), 1];
  let hi: tf.Tensor = tf.broadcastTo(tf.div(tf.neg(expm1(tf.mul(eps, -Math.log(n)))), eps), rowShape);
  let lo: tf.Tensor = tf.zeros(rowShape); // Σp ≥ 1 here (max entry: p = 1)
  if (solver === 'bisect') {
    for (let i = 1; i <= nIter; i++) {
      const next = tf.tidy(() => {
        const mid = tf.add(lo, tf.mul(hi, 2 ** -i));
        const mass = tf.sum(pOf(tf.sub(ze, tf.mul(eps, mid))), last, true);
        return tf.where(tf.greaterEqual(mass, 1), mid, lo); // keep the Σp ≥ 1 side
      });
      lo.dispose();
      lo = next;
    }
  } else {
    tf.dispose(lo);
    lo = halley(ze, eps, hi, nIter, last);
  }
  const t = tf.sub(ze, tf.mul(eps, lo));
  const pRaw = pOf(t);
  const p = safeRowDiv(pRaw, tf.sum(pRaw, last, true));
  return { p: rows.restore(p), t: rows.restore(t) };
}

/**
 * Safeguarded Halley iteration for ν on f(ν) = Σp − 1 (decreasing; convex for α ≤ 2), from ν = 0.
 * With u = 1 + t on the support: f' = −Σ p/u, f'' = (1 − ε) Σ p/u². For α > 2 the curvature term is
 * dropped (f is concave there and p/u² blows up at the support's edge), which makes the step Newton's.
 * Every step narrows the bracket [lo, hi] by the sign of f and falls back to its midpoint when the
 * step leaves it. Where the backend reads synchronously the loop stops once no row moves by more than
 * HALLEY_TOL (the next Halley step would change ν by ~HALLEY_TOL³). For α = 2 and 1.5 (number α) the
 * threshold is then recomputed in closed form on the support {u > 0} found: an exact finish.
 * Returns ν `[..., 1]`.
 */
function halley(ze: tf.Tensor, eps: number | tf.Tensor, hi0: tf.Tensor, maxIter: number, last: number): tf.Tensor {
  const { c, at } = halleyTerms(eps);
  const canStop = readsAreCheap();
  let nu: tf.Tensor = tf.zerosLike(hi0);
  let lo: tf.Tensor = tf.zerosLike(hi0);
  let hi: tf.Tensor = tf.clone(hi0);
  for (let i = 0; i < maxIter; i++) {
    const [nextNu, nextLo, nextHi, moved] = tf.tidy(() => {
      const { p, w, v } = at(tf.sub(ze, tf.mul(eps, nu)));
      const f = tf.sub(tf.sum(p, last, true), 1);
      const d1 = tf.neg(tf.sum(w, last, true));                    // < 0: the max entry has u ≥ n^{−ε}
      const above = tf.greaterEqual(f, 0);
      const l = tf.where(above, nu, lo), h = tf.where(above, hi, nu);
      const fd2 = v ? tf.mul(tf.mul(f, c), tf.sum(v, last, true)) : null;   // f·f''
      const denom = tf.mul(tf.square(d1), 2);
      const step = tf.sub(nu, tf.div(tf.mul(tf.mul(f, d1), 2), fd2 ? tf.sub(denom, fd2) : denom));
      const inside = tf.logicalAnd(tf.greaterEqual(step, l), tf.lessEqual(step, h));   // false for NaN
      const next = tf.where(inside, step, tf.div(tf.add(l, h), 2));
      return [next, l, h, tf.max(tf.abs(tf.sub(next, nu)))];
    });
    tf.dispose([nu, lo, hi]);
    [nu, lo, hi] = [nextNu, nextLo, nextHi];
    const done = canStop && moved.dataSync()[0] <= HALLEY_TOL;
    moved.dispose();
    if (done) break;
  }
  tf.dispose([lo, hi]);
  if (eps !== 1 && eps !== 0.5) return nu;
  const exact = tf.tidy(() => exactThreshold(ze, eps, nu, last));
  nu.dispose();
  return exact;
}

/**
 * Per entry, from t: p, w = p/u (the −f' terms) and v = p/u² (the f'' terms, to be scaled by
 * c = 1 − ε; v is null when c = 0, i.e. α ≥ 2, where the step is Newton's), with u = [1 + t]₊.
 * Closed forms for α = 2 (p = u, w = [u > 0]) and α = 1.5 (p = u², w = u, v = [u > 0]); since t ≤ 0
 * for ν ≥ 0, u ∈ [0, 1] and ceil(u) is the support's indicator.
 */
function halleyTerms(eps: number | tf.Tensor): {
  c: number | tf.Tensor;
  at: (t: tf.Tensor) => { p: tf.Tensor; w: tf.Tensor; v: tf.Tensor | null };
} {
  if (eps === 1)
    return {
      c: 0,
      at: (t) => {
        const u = positivePart(tf.add(t, 1));
        return { p: u, w: tf.ceil(u), v: null };
      },
    };
  if (eps === 0.5)
    return {
      c: 0.5,
      at: (t) => {
        const u = positivePart(tf.add(t, 1));
        return { p: tf.square(u), w: u, v: tf.ceil(u) };
      },
    };
  const c = typeof eps === 'number' ? Math.max(1 - eps, 0) : positivePart(tf.sub(1, eps));
  const plainPow = typeof eps === 'number' && eps >= 0.25;
  const pOf = probabilities(eps);
  return {
    c,
    at: (t) => {
      const r = positivePart(tf.add(t, 1));
      const p = plainPow ? tf.pow(r, 1 / (eps as number)) : pOf(t);
      const u = tf.add(r, 1e-30); // p/u = 0 where p = 0
      const w = tf.div(p, u);
      return { p, w, v: c === 0 ? null : tf.div(w, u) };
    },
  };
}

/**
 * ν in closed form once the support S = {t > −1} is known. α = 2 (ε = 1): Σ_S (1 + z − ν) = 1 is
 * linear. α = 1.5: with a = 1 + z/2 and c = ν/2, Σ_S (a − c)² = 1 is the quadratic
 * |S|c² − 2cΣa + Σa² − 1 = 0, whose smaller root is the one with a − c ≥ 0 on S.
 */
function exactThreshold(ze: tf.Tensor, eps: 1 | 0.5, nu: tf.Tensor, last: number): tf.Tensor {
  // ze = εz ≤ 0, so u = 1 + ε(z − ν) ∈ [0, 1] for ν ≥ 0 and ceil(u) is the support's indicator.
  const on = tf.ceil(positivePart(tf.add(tf.sub(ze, tf.mul(nu, eps)), 1)));
  const n = tf.sum(on, last, true);
  const a = tf.mul(on, positivePart(tf.add(ze, 1)));                  // 1 + εz (> εν ≥ 0) on S, 0 elsewhere
  const sa = tf.sum(a, last, true);
  if (eps === 1) return tf.div(tf.sub(sa, 1), n);                   // ν = (Σ_S (1 + z) − 1)/|S|
  const disc = positivePart(tf.sub(tf.square(sa), tf.mul(n, tf.sub(tf.sum(tf.square(a), last, true), 1))));
  return tf.mul(tf.div(tf.sub(sa, tf.sqrt(disc)), n), 2);           // ν = 2c
}

/**
 * p as a function of t = (α−1)(z − ν): [1 + t]₊^{1/(α−1)}. Exact special cases for α = 2 and 1.5
 * and plain `pow` for α ≥ 1.25; below that, exp(log1p(t)/(α−1)), which keeps float32 accuracy as
 * α → 1 where rounding 1 + t first would lose it (error ≈ 6e-8/(α−1) relative).
 */
function probabilities(eps: number | tf.Tensor): (t: tf.Tensor) => tf.Tensor {
  if (typeof eps === 'number') {
    if (eps === 1) return (t) => positivePart(tf.add(t, 1));
    if (eps === 0.5) return (t) => tf.square(positivePart(tf.add(t, 1)));
    if (eps >= 0.25) return (t) => tf.pow(positivePart(tf.add(t, 1)), 1 / eps);
  }
  const c = tf.div(1, eps);
  return (t) => tf.exp(tf.mul(log1p(tf.maximum(t, -1)), c));
}

/** g = p^{2−α} = p/(1+t) on the support, 0 elsewhere (p^{α−1} = 1 + t). */
function jacobianWeights(p: tf.Tensor, t: tf.Tensor): tf.Tensor {
  const u = positivePart(tf.add(t, 1));
  return tf.div(p, tf.add(u, tf.sub(1, tf.step(u))));             // denominator 1 where u = 0
}

/** dX = g ⊙ dY − g · Σ(g ⊙ dY)/Σ g, the entmax Jacobian (symmetric) applied to dY. */
function scoreGrad(dy: tf.Tensor, p: tf.Tensor, t: tf.Tensor): tf.Tensor {
  const last = p.rank - 1;
  const g = jacobianWeights(p, t);
  const gdy = tf.mul(g, dy);
  return tf.sub(gdy, tf.mul(g, safeRowDiv(tf.sum(gdy, last, true), tf.sum(g, last, true))));
}

/**
 * Σ_i dY_i ∂p_i/∂α per row, `[..., 1]`.
 *
 * Correia et al.: ∂p_i/∂α = (p_i − s_i)/ε² − (p_i ln p_i − s_i Σ_j p_j ln p_j)/ε, s = g/Σg, ε = α−1.
 * Both terms grow like 1/ε and cancel. With ℓ = ln p, φ(t) = log1p(t) − t/(1+t) (≥ 0, O(t²)),
 * Φ = Σ p φ, L = Σ p ℓ and W = Σ g, the same derivative is (exact algebra, using Σp = 1)
 *   ∂p_i/∂α = p_i [Φ − φ_i + ε(φ_i L − ℓ_i Φ)] / (W ε²),
 * whose bracket is O(ε²) with no cancellation, so it stays accurate down to ε → 0 (where it tends
 * to p_i(Σ_j p_j ℓ_j² − ℓ_i²)/2, the softmax limit). docs/math.md has the derivation.
 */
function alphaGrad(dy: tf.Tensor, p: tf.Tensor, t: tf.Tensor, eps: tf.Tensor): tf.Tensor {
  const last = p.rank - 1;
  const on = tf.greater(p, 0);
  const tSafe = tf.where(on, t, tf.zerosLike(t));                   // masked: t = −∞ → 0
  const ell = tf.log(tf.where(on, p, tf.onesLike(p)));              // ln p, 0 off the support
  const ph = phi(tSafe);
  const sum = (a: tf.Tensor) => tf.sum(a, last, true);
  const pdy = tf.mul(p, dy);
  const [Phi, L, W] = [sum(tf.mul(p, ph)), sum(tf.mul(p, ell)), sum(jacobianWeights(p, t))];
  const [A, B, C] = [sum(pdy), sum(tf.mul(pdy, ph)), sum(tf.mul(pdy, ell))];
  const num = tf.add(tf.sub(tf.mul(Phi, A), B), tf.mul(eps, tf.sub(tf.mul(L, B), tf.mul(Phi, C))));
  return safeRowDiv(num, tf.mul(W, tf.square(eps)));
}

/** Sums a broadcast gradient back to the shape of the input it came from. */
export function reduceTo(g: tf.Tensor, shape: number[]): tf.Tensor {
  let r = g;
  while (r.rank > shape.length) r = tf.sum(r, 0);
  const axes = shape.map((d, i) => (d === 1 && r.shape[i] !== 1 ? i : -1)).filter((i) => i >= 0);
  if (axes.length) r = tf.sum(r, axes, true);
  return tf.reshape(r, shape);
}
