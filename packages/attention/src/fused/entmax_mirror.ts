/**
 * CPU mirror of the fused α-entmax kernels (entmax_wgsl.ts): plain TypeScript on Float32Array rows
 * that takes the same steps as the WGSL, in the same order (per-thread strided partial sums, then a
 * halving tree over the workgroup), with float32 rounding where the GPU rounds. It is the `cpu`
 * kernel of entmaxFused and the proof of the kernels' math where no GPU is at hand.
 *
 * Forward, per row z of length n, ε = α − 1 (≥ MIN_EPS), q = 1/ε, d = z − max z ≤ 0:
 *   p_i(ν) = [1 + t_i]₊^q,  t_i = ε(d_i − ν),  ν ∈ [0, hi],  hi = (1 − n^{−ε})/ε,
 *   S(ν) = Σp (decreasing, S(0) ≥ 1 ≥ S(hi)),  W(ν) = Σ p/u = −S'(ν),  u = 1 + t.
 * The solver takes Newton steps on G(ν) = S^ε − 1 rather than on S − 1: G is exactly linear in ν
 * when the row's top entries tie, on a fixed support at α = 2, and in the softmax limit
 * (S^ε − 1 ≈ ε ln S), and it is convex for α ≤ 2 (G + 1 is the q-norm of the [u]₊, q ≥ 1), so from
 * ν = 0 the steps rise monotonically to the root. The step ΔG/G' = S·ln S·expm1x(−ε ln S)/W, with
 * expm1x(y) = expm1(y)/y, is accurate down to ε → 0. For α > 2 the steps start at ν = hi, and each
 * pass also evaluates S at the bracket's midpoint. Every step first moves the bracket [lo, hi] by the
 * sign of S − 1 and falls back to its midpoint when the Newton point leaves it. After `nIter` steps
 * an exact finish: on the support at the final ν, α = 2 solves Σ(u − δ) = 1 and α = 1.5 solves
 * Σ(u − δ)² = 1 in closed form; other α divide p by Σp.
 *
 * Row statistics [m, r, scale, kind] are the forward's second output and all the backward needs
 * with x (u is recomputed exactly as in the forward). kind: ROW_NU ordinary row solved in ν, ROW_W
 * ordinary row solved in w (below), ROW_MASKED fully masked (zeros), ROW_INVALID (NaN or +∞
 * somewhere: NaN row); the WGSL names them the same.
 *
 * Two forms of the unknown r, because float32 resolves u = 1 + t only as finely as r: the ν-form
 * (t = ε(d − ν), u = 1 + t) keeps t, hence ln p = q·log1p(t), accurate as ε → 0; the w-form
 * (w = u_max = 1 − εν, u = w + εd) resolves small u, which rows with many entries near the support
 * boundary and α > 2 need (k tied entries have u = k^{−ε}, far below float32's spacing near 1 for
 * α = 3.5, k = 1000). The w-form's error in ln u is smaller once εν > ½, so a ν-form row switches
 * to it there (α ≤ 2); α > 2 rows start in it.
 *
 * Backward (Peters et al. 2019; Correia et al. 2019, rewritten without cancellation, docs/math.md §3):
 *   g = p/u on the support,  dx = g ⊙ (dy − c),  c = Σ g dy / Σ g,
 *   dα = (ΦA − B + ε(LB − ΦC)) / (W ε²),  Φ = Σpφ(t), L = Σpℓ, W = Σg, A = Σp dy, B = Σp dy φ,
 *   C = Σp dy ℓ,  ℓ = ln p,  φ(t) = log1p(t) − t/(1+t).
 *
 * WGSL has no log1p or expm1 and the GPU's log is accurate only in absolute terms near 1, so both
 * sides use the series below (coefficients shared: the WGSL is generated from these tables).
 */
import { MIN_ALPHA_EXCESS } from '../entmax_bisect.js';

const f32 = Math.fround;

/**
 * Solver steps. Measured in this mirror against the float64 reference (rows of n ≤ 8192: normal
 * scores at scales 0.03..30, integer scores, ties; α ∈ [1.01, 4]): float32 precision after 2–4 steps
 * for α ≤ 1.5, 9 for α → 2, 11 at α = 3, 14 at α = 4; 16 leaves a margin. The converged error is
 * ~1e-7 (worst 1.6e-6, from rounding z − max z at scale 30). Rows with α ≤ 2 stop computing once r
 * stops moving (the remaining steps only re-run the reduction).
 */
export const FUSED_NITER = 16;
/** α − 1 is floored here (a divisor). */
export const MIN_EPS = f32(MIN_ALPHA_EXCESS);
/** Stand-in for −∞ scores after the max shift: gives t ≤ −1, so p = 0, for any ε ≥ MIN_EPS. */
export const BIG = 1e30;
/** Lower end of the bracket in w for α > 2 (n^{−ε} underflows for huge α; then ties share equally). */
export const W_MIN = 1e-30;
/** Lowest finite float32: the running max before any entry is seen. */
export const LOWEST = -3.4028234663852886e38;
/** Rows up to this many entries per thread are kept in registers by the WGSL. */
export const MAX_CACHED = 32;

/** t range where the series in s = t/(2+t) are used (|s| < 0.171). */
export const SERIES_LO = -0.29;
export const SERIES_HI = 0.41;
/** atanh(s)/s = Σ_j s^{2j}/(2j+1), in powers of s². */
export const ATANH_COEFFS = [1, 1 / 3, 1 / 5, 1 / 7, 1 / 9, 1 / 11, 1 / 13];
/** φ(t) = 2s²·Σ_k c_k s^k with c_k = 1 (k even), −(k+1)/(k+2) (k odd): all terms ≥ 0 for t ≤ 0. */
export const PHI_COEFFS = [1, -2 / 3, 1, -4 / 5, 1, -6 / 7, 1, -8 / 9, 1, -10 / 11, 1];
/** expm1(y)/y = Σ_k y^k/(k+1)!, used for |y| < EXPM1X_BELOW. */
export const EXPM1X_COEFFS = [1, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040, 1 / 40320];
export const EXPM1X_BELOW = 0.3;
export const LN2_HI = 0.693145751953125;
export const LN2_LO = 1.428606765330187e-6;

/**
 * Threads per row (a power of two; by default from n) and entries per thread; `cached`: few enough
 * to keep in registers.
 */
export function rowLayout(
  n: number,
  wg = n <= 1024 ? 64 : n <= 2048 ? 128 : 256,
): { wg: number; perThread: number; cached: boolean } {
  const perThread = Math.max(1, Math.ceil(n / wg));
  return { wg, perThread, cached: perThread <= MAX_CACHED };
}

function horner(c: number[], v: number): number {
  let r = c[c.length - 1];
  for (let k = c.length - 2; k >= 0; k--) r = c[k] + v * r;
  return r;
}

/** ln w for a normal float32 w > 0: w = 2^e f, f ∈ [√½, √2), ln f = 2 atanh((f−1)/(f+1)) by its series. */
export function lnF(w: number): number {
  let e = Math.floor(Math.log2(w));
  let fr = w / 2 ** e;                                 // exact, in [1, 2) (the WGSL reads the exponent bits)
  if (fr >= 2) { fr /= 2; e += 1; } else if (fr < 1) { fr *= 2; e -= 1; }   // Math.log2 rounding at powers of 2
  if (fr > Math.SQRT2) { fr /= 2; e += 1; }
  const s = (fr - 1) / (fr + 1);
  return f32(e * LN2_HI + (e * LN2_LO + 2 * s * horner(ATANH_COEFFS, s * s)));
}

/** ln u = log1p(t) for u = 1 + t > 0, given both: the series in t near 0, else ln u. */
export function logU(t: number, u: number): number {
  if (t > SERIES_LO && t < SERIES_HI) {
    const s = t / (2 + t);
    return f32(2 * s * horner(ATANH_COEFFS, s * s));
  }
  return lnF(u);
}

/** log1p(t), t > −1. */
export function log1pF(t: number): number {
  return logU(t, f32(1 + t));
}

/** expm1(y)/y (1 at y = 0). */
export function expm1xF(y: number): number {
  if (Math.abs(y) < EXPM1X_BELOW) return f32(horner(EXPM1X_COEFFS, y));
  return f32((f32(Math.exp(y)) - 1) / y);
}

/** φ = log1p(t) − t/(1+t) ≥ 0 for u = 1 + t > 0. */
export function phiF(t: number, u: number): number {
  if (t > SERIES_LO && t < SERIES_HI) {
    const s = t / (2 + t);
    return f32(2 * s * s * horner(PHI_COEFFS, s));
  }
  return f32(logU(t, u) - f32(t / u));
}

/** p = [u]₊^q: exact forms at ε = 1 and ε = ½, else exp(q·ln u) (→ softmax as ε → 0). */
export function probF(t: number, u: number, eps: number, q: number): number {
  if (!(u > 0)) return 0;
  if (eps === 1) return u;
  if (eps === 0.5) return f32(u * u);
  return f32(Math.exp(f32(q * logU(t, u))));
}

/**
 * (t, u) of one entry from its shifted score d and the row's unknown r. ν-form (α ≤ 2, r = ν):
 * t = ε(d − ν), u = 1 + t, accurate in t as ε → 0. w-form (α > 2, r = w = u_max = 1 − εν):
 * u = w + εd, t = u − 1, accurate in u, which can be far below float32's spacing near 1 there (k tied
 * entries have u = k^{−ε}).
 */
export function entryTU(d: number, r: number, eps: number, wForm: boolean): [number, number] {
  if (wForm) { const u = f32(r + f32(eps * d)); return [f32(u - 1), u]; }
  const t = f32(eps * f32(d - r));
  return [t, f32(1 + t)];
}

/** Row kinds in the statistics. */
export const ROW_NU = 0, ROW_MASKED = 1, ROW_INVALID = 2, ROW_W = 3;

/** Shifted score d = z − m as the kernels form it: −BIG for masked entries, 0 on masked/invalid rows. */
export function shiftF(z: number, m: number, kind: number): number {
  if (kind === ROW_MASKED || kind === ROW_INVALID) return 0;
  if (z === -Infinity) return -BIG;
  return Math.max(f32(z - m), -BIG);
}

/** ε = α − 1 floored, and q = 1/ε, in float32. */
export function epsOf(alpha: number): { eps: number; q: number } {
  const eps = Math.max(f32(alpha - 1), MIN_EPS);
  return { eps, q: f32(1 / eps) };
}

/**
 * Workgroup reduction as the WGSL does it: thread i accumulates entries i, i + wg, … (`term` fills
 * `comps` values per entry), then a halving tree combines the threads. Float32Array stores round.
 */
function reduceRow(
  n: number,
  wg: number,
  comps: number,
  term: (col: number, out: number[]) => boolean,
  max = false,
): number[] {
  const part = new Float32Array(wg * comps);
  if (max) part.fill(LOWEST);
  const v = new Array<number>(comps).fill(0);
  for (let col = 0; col < n; col++) {
    if (!term(col, v)) continue;
    const o = (col % wg) * comps;
    for (let c = 0; c < comps; c++) part[o + c] = max ? Math.max(part[o + c], v[c]) : part[o + c] + v[c];
  }
  for (let s = wg >> 1; s > 0; s >>= 1) {
    for (let i = 0; i < s; i++) {
      for (let c = 0; c < comps; c++) {
        const [a, b] = [part[i * comps + c], part[(i + s) * comps + c]];
        part[i * comps + c] = max ? Math.max(a, b) : a + b;
      }
    }
  }
  return Array.from(part.subarray(0, comps));
}

/**
 * Forward of a [rows, n] block: probabilities and the row statistics [m, r, scale, kind]. `wg`
 * (threads per row) sets the order of the sums, as in the WGSL.
 */
export function entmaxForwardMirror(
  x: Float32Array,
  alpha: Float32Array,
  rows: number,
  n: number,
  nIter = FUSED_NITER,
  wg = rowLayout(n).wg,
): { p: Float32Array; stats: Float32Array } {
  const p = new Float32Array(rows * n);
  const stats = new Float32Array(rows * 4);
  const d = new Float32Array(n);
  for (let row = 0; row < rows; row++) {
    const base = row * n;
    const { eps, q } = epsOf(alpha[alpha.length === 1 ? 0 : row]);
    // 1. Row maximum over the finite entries, and whether the row is invalid or fully masked.
    const [mx, bad, any] = reduceRow(
      n,
      wg,
      3,
      (col, o) => {
        const z = x[base + col];
        const invalid = Number.isNaN(z) || z === Infinity;
        const finite = !invalid && z !== -Infinity;
        [o[0], o[1], o[2]] = [finite ? z : LOWEST, invalid ? 1 : 0, finite ? 1 : 0];
        return true;
      },
      true,
    );
    const flag = bad > 0 ? ROW_INVALID : any > 0 ? ROW_NU : ROW_MASKED;
    const m = flag === ROW_NU ? mx : 0;
    for (let col = 0; col < n; col++) d[col] = shiftF(x[base + col], m, flag);
    // 2. Safeguarded Newton steps on G = S^ε − 1 in the row's unknown r (ν, or w), each after moving
    //    the bracket by the sign of S − 1. For α > 2 the same pass also evaluates S at the bracket's
    //    midpoint, so the bracket at least halves per step: Newton alone stalls where an entry enters
    //    the support (p/u = u^{q−1} is unbounded for q < 1).
    const twoPoint = eps > 1;
    let wForm = twoPoint;
    const lnN = lnF(n);
    let [lo, hi] = wForm
      ? [Math.max(f32(Math.exp(f32(-eps * lnN))), f32(W_MIN)), 1]
      : [0, f32(lnN * expm1xF(f32(-eps * lnN)))];
    let r = lo;
    let [S, W, Sm] = [0, 0, 0];
    let still = false; // r did not move (α ≤ 2): the sums are unchanged
    for (let it = 0; it < nIter; it++) {
      if (!wForm && f32(eps * r) > 0.5) {
        // switch to w = 1 − εν (the bracket turns over)
        [lo, hi, r] = [f32(1 - f32(eps * hi)), f32(1 - f32(eps * lo)), f32(1 - f32(eps * r))];
        wForm = true;
        still = false;
      }
      const mid = f32(0.5 * f32(lo + hi));
      if (!still) {
        [S, W, Sm] = reduceRow(n, wg, 3, (col, o) => {
          const [t, u] = entryTU(d[col], r, eps, wForm);
          const pr = probF(t, u, eps, q);
          const [tm, um] = entryTU(d[col], mid, eps, wForm);
          [o[0], o[1], o[2]] = [pr, u > 0 ? f32(pr / u) : 0, twoPoint ? probF(tm, um, eps, q) : 0];
          return u > 0 || (twoPoint && um > 0);
        });
      }
      // S falls with ν and rises with w: "S ≥ 1 at r" puts the root above ν, below w.
      if (twoPoint) {
        if (Sm >= 1) hi = Math.min(hi, mid);
        else lo = Math.max(lo, mid);
      }
      if (wForm) {
        if (S >= 1) hi = Math.min(hi, r);
        else lo = Math.max(lo, r);
      } else if (S >= 1) lo = Math.max(lo, r);
      else hi = Math.min(hi, r);
      const L = lnF(S);
      const step = f32(r + f32((wForm ? f32(-eps) : 1) * f32(f32(f32(S * L) * expm1xF(f32(-eps * L))) / W)));
      const next = step >= lo && step <= hi ? step : f32(0.5 * f32(lo + hi));
      still = !twoPoint && next === r;
      r = next;
    }
    // 3. Exact finish on the support at r, for the shift δ of u: α = 2 solves Σ(u − δ) = 1, α = 1.5
    //    Σ(u − δ)² = 1 (Δν = δ/ε, Δw = −δ); other α renormalise.
    const [k, B, Q, P] = reduceRow(n, wg, 4, (col, o) => {
      const [t, u] = entryTU(d[col], r, eps, wForm);
      [o[0], o[1], o[2], o[3]] = [1, u, f32(u * u), probF(t, u, eps, q)];
      return u > 0;
    });
    let scale = 1;
    let delta = 0;
    if (eps === 1) delta = f32(f32(B - 1) / k);
    else if (eps === 0.5) {
      const c = f32(Q - 1);
      delta = f32(c / f32(B + f32(Math.sqrt(Math.max(f32(f32(B * B) - f32(k * c)), 0)))));
    } else scale = f32(1 / P);
    r = f32(r + (wForm ? -delta : f32(delta / eps)));
    const kind = flag === ROW_NU && wForm ? ROW_W : flag;
    stats.set([m, r, scale, kind], row * 4);
    // 4. Probabilities (the elementwise program).
    for (let col = 0; col < n; col++) {
      const [t, u] = entryTU(d[col], r, eps, wForm);
      p[base + col] = kind === ROW_INVALID ? NaN : kind === ROW_MASKED ? 0 : f32(probF(t, u, eps, q) * scale);
    }
  }
  return { p, stats };
}

/**
 * Backward of a [rows, n] block from x, α, the forward's row statistics and dy: dx, and per row
 * [c, dα] with c = Σ g dy/Σ g and dα = Σ_i dy_i ∂p_i/∂α (0 unless `withAlpha`).
 */
export function entmaxBackwardMirror(
  x: Float32Array,
  alpha: Float32Array,
  stats: Float32Array,
  dy: Float32Array,
  rows: number,
  n: number,
  withAlpha: boolean,
  wg = rowLayout(n).wg,
): { dx: Float32Array; rowGrad: Float32Array } {
  const dx = new Float32Array(rows * n);
  const rowGrad = new Float32Array(rows * 2);
  for (let row = 0; row < rows; row++) {
    const base = row * n;
    const [m, r, scale, kind] = stats.subarray(row * 4, row * 4 + 4);
    const { eps, q } = epsOf(alpha[alpha.length === 1 ? 0 : row]);
    const lnScale = lnF(scale);
    const tu = (col: number) => entryTU(shiftF(x[base + col], m, kind), r, eps, kind === ROW_W);
    // Row sums [W, Σ g dy, Φ, L, A, B, C].
    const [W, Gy, Phi, L, A, B, C] = reduceRow(n, wg, 7, (col, o) => {
      const [t, u] = tu(col);
      if (!(u > 0)) return false;
      const pr = f32(probF(t, u, eps, q) * scale);
      const g = f32(pr / u);
      const y = dy[base + col];
      o.fill(0);
      [o[0], o[1]] = [g, f32(g * y)];
      if (withAlpha) {
        const ph = phiF(t, u);
        const l = f32(f32(q * logU(t, u)) + lnScale);
        const py = f32(pr * y);
        [o[2], o[3], o[4], o[5], o[6]] = [f32(pr * ph), f32(pr * l), py, f32(py * ph), f32(py * l)];
      }
      return true;
    });
    const c = f32(Gy / W);
    const num = f32(f32(f32(Phi * A) - B) + f32(eps * f32(f32(L * B) - f32(Phi * C))));
    const dalpha =
      kind === ROW_INVALID ? NaN : kind === ROW_MASKED || !withAlpha ? 0 : f32(num / f32(W * f32(eps * eps)));
    rowGrad.set([kind === ROW_INVALID ? NaN : kind === ROW_MASKED ? 0 : c, dalpha], row * 2);
    for (let col = 0; col < n; col++) {
      if (kind === ROW_MASKED || kind === ROW_INVALID) {
        dx[base + col] = kind === ROW_INVALID ? NaN : 0;
        continue;
      }
      const [t, u] = tu(col);
      dx[base + col] = u > 0 ? f32(f32(f32(probF(t, u, eps, q) * scale) / u) * f32(dy[base + col] - c)) : 0;
    }
  }
  return { dx, rowGrad };
}
