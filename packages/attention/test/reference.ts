/**
 * Independent float64 reference implementations (test oracle) of the sparse
 * normalisers, their derivatives, Fenchel–Young losses and entropy statistics.
 *
 * Plain TypeScript on `number[]` rows; no TensorFlow.js. Every function works on
 * ONE row and (where it returns a distribution) returns a distribution over that
 * row. Entries equal to -Infinity are treated as masked: they get probability 0
 * and the rest of the row is computed as if they were not there; a row that is
 * entirely -Infinity maps to all zeros.
 *
 * References:
 *  - Martins & Astudillo (2016), "From Softmax to Sparsemax", ICML.
 *  - Peters, Niculae & Martins (2019), "Sparse Sequence-to-Sequence Models", ACL.
 *  - Blondel, Martins & Niculae (2020), "Learning with Fenchel–Young Losses", JMLR.
 *  - Correia, Niculae & Martins (2019), "Adaptively Sparse Transformers", EMNLP.
 */

/** Dot product Σ a_i b_i. */
export function dot(a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

// Seeded test data: the library's generator (not an oracle, so sharing it costs no independence).
export { mulberry32, randn } from '../src/synthetic.js';

/**
 * Apply a normaliser `f` to the entries of `z` that are not -Infinity and
 * scatter the result back; masked entries get 0, an all-masked row gives zeros.
 */
function onFinite(z: number[], f: (x: number[]) => number[]): number[] {
  const idx: number[] = [];
  for (let i = 0; i < z.length; i++) if (z[i] !== -Infinity) idx.push(i);
  const out = new Array<number>(z.length).fill(0);
  if (idx.length === 0) return out;
  const p = f(idx.map((i) => z[i]));
  idx.forEach((i, j) => (out[i] = p[j]));
  return out;
}

/** Maximum of a non-empty array. */
function maxOf(x: number[]): number {
  let m = -Infinity;
  for (const v of x) if (v > m) m = v;
  return m;
}

/**
 * Softmax p_i = exp(z_i − m) / Σ_j exp(z_j − m), m = max z (stable form).
 * -Infinity entries get 0; an all -Infinity row gives all zeros.
 */
export function softmaxRef(z: number[]): number[] {
  return onFinite(z, (x) => {
    const m = maxOf(x);
    const e = x.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  });
}

/**
 * Sparsemax (Martins & Astudillo 2016): the Euclidean projection of z onto the
 * simplex, p = argmin_{p ∈ Δ} ‖p − z‖², computed by sorting:
 * z_(1) ≥ … ≥ z_(n); k = max{ρ : 1 + ρ z_(ρ) > Σ_{j≤ρ} z_(j)};
 * τ = (Σ_{j≤k} z_(j) − 1) / k; p_i = max(z_i − τ, 0).
 */
export function sparsemaxRef(z: number[]): number[] {
  return onFinite(z, (x) => {
    const s = [...x].sort((a, b) => b - a);
    let cum = 0;
    let k = 1;
    let cumK = s[0];
    for (let r = 1; r <= s.length; r++) {
      cum += s[r - 1];
      if (1 + r * s[r - 1] > cum) {
        k = r;
        cumK = cum;
      }
    }
    const tau = (cumK - 1) / k;
    return x.map((v) => Math.max(v - tau, 0));
  });
}

/**
 * Exact 1.5-entmax by sorting (Peters et al. 2019, Algorithm 2):
 * p_i = [X_i − τ]_+², X = (z − max z)/2, with τ such that Σ p = 1.
 * With X_(1) ≥ … ≥ X_(n), for each ρ: mean_ρ and meanSq_ρ of the top ρ,
 * ss_ρ = ρ (meanSq_ρ − mean_ρ²), δ_ρ = (1 − ss_ρ)/ρ, τ_ρ = mean_ρ − √δ_ρ
 * (only when δ_ρ ≥ 0). Support size k = #{ρ : τ_ρ ≤ X_(ρ)}, τ = τ_k.
 */
export function entmax15Ref(z: number[]): number[] {
  return onFinite(z, (x) => {
    const m = maxOf(x);
    const X = x.map((v) => (v - m) / 2);
    const s = [...X].sort((a, b) => b - a);
    const taus: number[] = [];
    let cum = 0;
    let cumSq = 0;
    let k = 0;
    for (let r = 1; r <= s.length; r++) {
      cum += s[r - 1];
      cumSq += s[r - 1] * s[r - 1];
      const mean = cum / r;
      const ss = r * (cumSq / r - mean * mean);
      const delta = (1 - ss) / r;
      const tau = delta >= 0 ? mean - Math.sqrt(delta) : Infinity;
      taus.push(tau);
      if (tau <= s[r - 1]) k++;
    }
    const tau = taus[Math.max(k, 1) - 1];
    return X.map((v) => Math.max(v - tau, 0) ** 2);
  });
}

/**
 * General α-entmax (Peters et al. 2019; Blondel et al. 2020):
 * p = argmax_{p ∈ Δ} p·z + H_α(p) with the Tsallis entropy H_α, i.e.
 * p_i = [(α − 1) z_i − τ]_+^{1/(α−1)} with τ chosen so that Σ p = 1.
 * Computed by bisection on τ after subtracting max z: with n finite entries the
 * root lies in [−1, −(1/n)^{α−1}]; the lower end is kept whenever Σ p ≥ 1 and
 * the final p is renormalised. α = 1 is softmax, α = 2 sparsemax; α < 1 throws.
 */
export function entmaxRef(z: number[], alpha: number, iters = 200): number[] {
  if (!(alpha >= 1)) throw new Error(`entmaxRef: alpha must be >= 1, got ${alpha}`);
  if (alpha === 1) return softmaxRef(z);
  const am1 = alpha - 1;
  const inv = 1 / am1;
  return onFinite(z, (x) => {
    const m = maxOf(x);
    const X = x.map((v) => am1 * (v - m));
    const probs = (tau: number) => X.map((v) => (v - tau > 0 ? (v - tau) ** inv : 0));
    const total = (p: number[]) => p.reduce((a, b) => a + b, 0);
    let lo = -1;
    let hi = -((1 / X.length) ** am1);
    for (let it = 0; it < iters; it++) {
      const mid = (lo + hi) / 2;
      if (total(probs(mid)) >= 1) lo = mid;
      else hi = mid;
    }
    const p = probs(lo);
    const s = total(p);
    return p.map((v) => v / s);
  });
}

/**
 * Jacobian-vector product of α-entmax (as a function of the scores z) at output
 * p applied to v (Peters et al. 2019, Prop. 2):
 * g_i = p_i^{2−α} for p_i > 0, else 0;  J v = g ⊙ v − g (Σ_j g_j v_j) / Σ_j g_j.
 * α = 1 gives p ⊙ v − p (p·v) (softmax); α = 2 makes g the support indicator.
 * J is symmetric, so this is also the vector-Jacobian product.
 */
export function entmaxJvpRef(p: number[], alpha: number, v: number[]): number[] {
  const g = p.map((pi) => (pi > 0 ? pi ** (2 - alpha) : 0));
  const gv = g.map((gi, i) => gi * v[i]);
  const sg = g.reduce((a, b) => a + b, 0);
  const c = gv.reduce((a, b) => a + b, 0) / sg;
  return g.map((gi, i) => gv[i] - gi * c);
}

/**
 * ∂p/∂α of α-entmax (parametrisation of `entmaxRef`) by central finite
 * difference (p(α + h) − p(α − h)) / (2h) in float64, with 300 bisection
 * iterations so that the bisection error is far below h². When α − h < 1 the
 * one-sided second-order formula (−3p(α) + 4p(α+h) − p(α+2h)) / (2h) is used.
 */
export function entmaxAlphaDerivRef(z: number[], alpha: number, h = 1e-6): number[] {
  const f = (a: number) => entmaxRef(z, a, 300);
  if (alpha - h < 1) {
    const p0 = f(alpha);
    const p1 = f(alpha + h);
    const p2 = f(alpha + 2 * h);
    return p0.map((_, i) => (-3 * p0[i] + 4 * p1[i] - p2[i]) / (2 * h));
  }
  const pp = f(alpha + h);
  const pm = f(alpha - h);
  return pp.map((v, i) => (v - pm[i]) / (2 * h));
}

/** Shannon entropy −Σ p_i ln p_i in nats (0 ln 0 = 0). */
export function entropyRef(p: number[]): number {
  let h = 0;
  for (const pi of p) if (pi > 0) h -= pi * Math.log(pi);
  return h;
}

/**
 * Varentropy Σ p_i (ln p_i + H)², the variance of the surprisal −ln p under p,
 * in nats² (terms with p_i = 0 contribute 0).
 */
export function varentropyRef(p: number[]): number {
  const h = entropyRef(p);
  let v = 0;
  for (const pi of p) if (pi > 0) v += pi * (Math.log(pi) + h) ** 2;
  return v;
}

/**
 * Tsallis α-entropy H_α(p) = (1 − Σ p_i^α) / (α(α − 1)) for α ≠ 1, and the
 * Shannon entropy −Σ p ln p for α = 1 (its limit). Zero entries contribute 0.
 */
export function tsallisRef(p: number[], alpha: number): number {
  if (alpha === 1) return entropyRef(p);
  let s = 0;
  for (const pi of p) if (pi > 0) s += pi ** alpha;
  return (1 - s) / (alpha * (alpha - 1));
}

/**
 * Fenchel–Young loss of α-entmax (Blondel et al. 2020):
 * L(z; y) = Σ_i p_i z_i + H_α(p) − z_y with p = entmax_α(z), which equals
 * max_{q ∈ Δ} (q·z + H_α(q)) − z_y and is ≥ 0, with gradient ∇_z L = p − e_y.
 * α = 1 is cross-entropy (logsumexp(z) − z_y); α = 2 is the sparsemax loss.
 * -Infinity scores with p_i = 0 are skipped in Σ p_i z_i.
 */
export function fyLossRef(z: number[], y: number, alpha: number): number {
  const p = entmaxRef(z, alpha);
  let pz = 0;
  for (let i = 0; i < z.length; i++) if (p[i] > 0) pz += p[i] * z[i];
  return pz + tsallisRef(p, alpha) - z[y];
}

/**
 * Entropy and varentropy (nats) of softmax(z), computed from the log-softmax
 * l_i = z_i − logsumexp(z) so that tiny probabilities do not lose precision:
 * H = −Σ p_i l_i, V = Σ p_i (l_i + H)². -Infinity entries contribute 0.
 */
export function logitStatsRef(z: number[]): { entropy: number; varentropy: number } {
  const x = z.filter((v) => v !== -Infinity);
  if (x.length === 0) return { entropy: 0, varentropy: 0 };
  const m = maxOf(x);
  const lse = m + Math.log(x.reduce((a, v) => a + Math.exp(v - m), 0));
  const l = x.map((v) => v - lse);
  const p = l.map((v) => Math.exp(v));
  let entropy = 0;
  for (let i = 0; i < l.length; i++) entropy -= p[i] * l[i];
  let varentropy = 0;
  for (let i = 0; i < l.length; i++) varentropy += p[i] * (l[i] + entropy) ** 2;
  return { entropy, varentropy };
}
