/**
 * α-entmax of score rows in plain JavaScript (float64 arithmetic, float32 storage), for code that
 * already holds the scores in memory: the block-skipping attention runs its many small blocks
 * through these instead of a dozen tfjs kernels each (on wasm, per-kernel overhead dominates there).
 *
 * Same conventions as the tensor maps: −∞ masks an entry, a fully masked row gives zeros, a row with
 * NaN or +∞ gives NaN. Per row, the entries that can be in the support (finite, above
 * max − 1/(α − 1), and above the row's `floor` when one is given: a known lower bound of the
 * threshold) are copied into a compact array as y = z − max z, and the solver runs on those only:
 * - α = 2: Michelot's iteration τ ← (Σ_{y>τ} y − 1)/|{y > τ}|, from the same formula over all
 *   candidates (a lower bound, as for any superset of the support); it increases monotonically and
 *   stops, exactly, when the support no longer changes;
 * - otherwise: safeguarded Halley on f(ν) = Σ[1 + ε(y − ν)]₊^{1/ε} − 1 (ε = α − 1; Newton for α > 2)
 *   as in entmaxBisect, from the floor's ν (a left start), to |Δν| ≤ 1e-9, then renormalised
 *   (α = 1.5: the threshold in closed form on the support).
 */

/**
 * Maps `rows × n` scores (row-major) to probabilities, writing into `out` (may be `x`).
 * @param floor optional per-row scores known to be ≤ the row's threshold (entries at or below it are 0).
 */
export function entmaxRows(
  x: Float32Array,
  rows: number,
  n: number,
  alpha: number,
  out: Float32Array = new Float32Array(rows * n),
  floor?: ArrayLike<number>,
): Float32Array {
  if (!(alpha > 1) || !Number.isFinite(alpha))
    throw new RangeError(`entmaxRows: alpha must be finite and > 1, got ${alpha}`);
  const y = new Float64Array(n);
  const idx = new Int32Array(n);
  const w = 1 / (alpha - 1);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    // Every entry at or below max − 1/(α−1) is 0 (ν ≥ 0: the max's p is at most 1), and the max is
    // always in the support: candidates lie in (max − 1/(α−1), max], narrowed by a known floor. One
    // pass keeps the entries at or above that cut for the running max (a superset), the next keeps
    // those above it for the row's max.
    const f = floor ? floor[r] : -Infinity;
    let m = -Infinity, cut = -Infinity, c = 0, bad = false;
    for (let j = 0; j < n; j++) {
      const z = x[o + j];
      if (z >= cut) {
        if (z > m) {
          m = z;
          cut = Math.min(Math.max(f, m - w), m);
        }
        y[c] = z;
        idx[c++] = j;
      } else if (z !== z) bad = true;
    }
    if (bad || !Number.isFinite(m)) {                // NaN or +∞ in the row; or every entry masked
      out.fill(bad || m === Infinity ? NaN : 0, o, o + n);
      continue;
    }
    const lowest = cut;
    let kept = 0;
    for (let t = 0; t < c; t++) {
      if (y[t] >= lowest) {
        y[kept] = y[t] - m;
        idx[kept++] = idx[t];
      }
    }
    c = kept;
    const start = lowest - m; // ≤ the threshold, in y units
    if (alpha === 2) sparsemaxCompact(y, c);
    else c = halleyCompact(y, idx, c, alpha - 1, start);
    out.fill(0, o, o + n);
    for (let t = 0; t < c; t++) out[o + idx[t]] = y[t];
  }
  return out;
}

/**
 * A lower bound of each row's α-entmax threshold θ (in score units: p_j = 0 exactly when z_j ≤ θ)
 * after at most `maxIter` solver steps; converged rows give θ itself. −∞ for rows with no finite
 * entry, NaN for invalid rows.
 */
export function entmaxThresholdBounds(
  x: Float32Array,
  rows: number,
  n: number,
  alpha: number,
  maxIter = 4,
): Float64Array {
  if (!(alpha > 1) || !Number.isFinite(alpha))
    throw new RangeError(`entmaxThresholdBounds: alpha must be finite and > 1, got ${alpha}`);
  const y = new Float64Array(n);
  const theta = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    const m = rowMax(x, o, n);
    if (!Number.isFinite(m)) {
      theta[r] = m;
      continue;
    } // NaN, or −∞ (no entry)
    let c = 0;
    for (let j = 0; j < n; j++) if (x[o + j] > -Infinity) y[c++] = x[o + j] - m;
    theta[r] =
      m + (alpha === 2 ? michelot(y, c, maxIter) : halley(y, c, alpha - 1, -Infinity, maxIter, 0).lo - 1 / (alpha - 1));
  }
  return theta;
}

/** Max of row x[o..o+n): NaN if the row holds NaN or +∞ (invalid), −∞ if every entry is masked. */
function rowMax(x: Float32Array, o: number, n: number): number {
  let m = -Infinity;
  for (let j = 0; j < n; j++) {
    const z = x[o + j];
    if (z !== z || z === Infinity) return NaN;
    if (z > m) m = z;
  }
  return m;
}

/** sparsemax of y[0..c) (max 0), written back into y. */
function sparsemaxCompact(y: Float64Array, c: number): Float64Array {
  const tau = michelot(y, c, Infinity);
  for (let t = 0; t < c; t++) y[t] = Math.max(y[t] - tau, 0);
  return y;
}

/**
 * Michelot's iterates for the sparsemax threshold of y[0..c): each is a lower bound of it, and the
 * last is exact once the support stops changing (at most `maxIter` passes).
 */
function michelot(y: Float64Array, c: number, maxIter: number): number {
  let sum = 0;
  for (let t = 0; t < c; t++) sum += y[t];
  let count = c, tau = (sum - 1) / c;
  for (let it = 0; it < maxIter; it++) {
    sum = 0;
    let k = 0;
    for (let t = 0; t < c; t++) if (y[t] > tau) { sum += y[t]; k++; }
    const next = (sum - 1) / k;
    const done = k === count || !(next > tau);
    [tau, count] = [Math.max(tau, next), k];
    if (done) break;
  }
  return tau;
}

/**
 * Safeguarded Halley steps (Newton for α > 2) for ν on y[0..c) (max 0), from the ν of `start` (a
 * score ≤ the threshold, in y units); θ = ν − 1/ε. Stops when a step moves less than `tol` or after
 * `maxIter` steps. `lo` is the bracket's left end: Σp ≥ 1 there, so its θ is a lower bound, and
 * every entry at or below it is 0 at the root: each time `lo` moves, those entries are dropped from
 * y (and from `idx`, kept in step), so the steps run on fewer entries as they close in. Returns the
 * entries left, `c`.
 *
 * `logStep`: Halley's step on G(ν) = ln Σp instead of Σp − 1 (same root). G is nearly linear in ν
 * (exactly, as α → 1: ln Σ e^{y−ν}), so from ν = 0, far from the root, it takes 2–3 steps where
 * Σp − 1, exponential in ν, takes 5–7; but it may overshoot the root and close in from the right,
 * leaving `lo` behind, so the threshold bounds take the plain step, which closes in from the left.
 */
function halley(
  y: Float64Array,
  c: number,
  eps: number,
  start: number,
  maxIter: number,
  tol: number,
  idx?: Int32Array,
  logStep = false,
): { nu: number; lo: number; c: number } {
  const inv = 1 / eps,
    curv = Math.max(1 - eps, 0),
    half = eps === 0.5;
  // Bracket of ν: Σp ≥ 1 at ν = 0 and at the start's ν; Σp ≤ 1 at hi (all c entries at the max).
  let hi = -Math.expm1(-eps * Math.log(c)) / eps;
  let lo = Math.min(Math.max(0, start + inv), hi),
    nu = lo;
  for (let it = 0; it < maxIter; it++) {
    let f = -1,
      d1 = 0,
      d2 = 0;
    const base = 1 - eps * nu; // u = 1 + ε(y − ν)
    if (half) {
      for (let t = 0; t < c; t++) {
        const u = base + 0.5 * y[t];
        if (u > 0) {
          f += u * u;
          d1 -= u;
          d2 += 1;
        }
      }
    } else {
      for (let t = 0; t < c; t++) {
        const u = base + eps * y[t];
        if (u > 0) {
          const w = Math.exp((inv - 1) * Math.log(u));        // u^{1/ε − 1}; twice as fast as Math.pow in V8
          f += w * u;
          d1 -= w;
          d2 += w / u;
        }
      }
    }
    if (f >= 0) {
      lo = nu;
      c = dropBelow(y, idx, c, lo - inv);
    } else hi = nu;
    let step: number;
    if (logStep) {
      const S = f + 1, G = Math.log1p(f), G1 = d1 / S, G2 = (curv * d2) / S - G1 * G1;
      step = nu - (2 * G * G1) / (2 * G1 * G1 - G * G2);
    } else step = nu - (2 * f * d1) / (2 * d1 * d1 - f * curv * d2);
    if (!(step >= lo && step <= hi)) step = (lo + hi) / 2;
    const moved = Math.abs(step - nu);
    nu = step;
    if (moved <= tol || hi - lo <= 1e-12) break;
  }
  return { nu, lo, c };
}

/** Keeps the entries of y[0..c) above `floor` (and the matching `idx`), in order; returns their count. */
function dropBelow(y: Float64Array, idx: Int32Array | undefined, c: number, floor: number): number {
  let k = 0;
  for (let t = 0; t < c; t++) {
    if (y[t] > floor) {
      y[k] = y[t];
      if (idx) idx[k] = idx[t];
      k++;
    }
  }
  return k;
}

/**
 * α-entmax (ε = α − 1 ≠ 1) of y[0..c) (max 0), from a threshold known to be ≥ `start`; into y, with
 * the entries found to be 0 dropped (`idx` kept in step). Returns the number of entries left.
 */
function halleyCompact(y: Float64Array, idx: Int32Array, c0: number, eps: number, start: number): number {
  const inv = 1 / eps, half = eps === 0.5;
  // α = 1.5 finishes in closed form: it needs the support, not ν to the last bit.
  const { nu, c } = halley(y, c0, eps, start, 100, half ? 1e-6 : 1e-9, idx, true);
  if (half) {                                  // Σ_S (a − k)² = 1 with a = 1 + y/2, k = ν/2
    let s = 0, sa = 0, sa2 = 0;
    for (let t = 0; t < c; t++) {
      const a = 1 + 0.5 * y[t];
      if (a - 0.5 * nu > 0) { s++; sa += a; sa2 += a * a; }
    }
    const k = (sa - Math.sqrt(Math.max(sa * sa - s * (sa2 - 1), 0))) / s;
    for (let t = 0; t < c; t++) { const u = 1 + 0.5 * y[t] - k; y[t] = u > 0 ? u * u : 0; }
    return c;                                  // sums to 1 by construction
  }
  let total = 0;
  const base = 1 - eps * nu;
  for (let t = 0; t < c; t++) {
    const u = base + eps * y[t];
    y[t] = u > 0 ? Math.exp(inv * Math.log(u)) : 0;
    total += y[t];
  }
  for (let t = 0; t < c; t++) y[t] /= total;
  return c;
}

/**
 * The entmax vector–Jacobian product for rows of probabilities p and upstream dP:
 * dS = g ⊙ dP − g Σ(g ⊙ dP)/Σg with g = p^{2−α} (0 off the support). Written into `out`.
 */
export function entmaxRowsVjp(
  p: Float32Array,
  dp: Float32Array,
  rows: number,
  n: number,
  alpha: number,
  out: Float32Array = new Float32Array(rows * n),
): Float32Array {
  const e = 2 - alpha;
  const g = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let sg = 0,
      sgd = 0;
    for (let j = 0; j < n; j++) {
      const q = p[o + j];
      const w = q > 0 ? (alpha === 2 ? 1 : alpha === 1.5 ? Math.sqrt(q) : Math.exp(e * Math.log(q))) : 0;
      g[j] = w;
      sg += w;
      sgd += w * dp[o + j];
    }
    const mean = sg > 0 ? sgd / sg : 0;
    for (let j = 0; j < n; j++) out[o + j] = g[j] * (dp[o + j] - mean);
  }
  return out;
}

/**
 * Σ_j dP_j ∂p_j/∂α summed over `rows × n` probability rows p (docs/math.md §3, in float64):
 * per row [Φ A − B + ε(L B − Φ C)] / (W ε²) with t = p^ε − 1, ℓ = ln p, φ = log1p(t) − t/(1 + t),
 * Φ = Σ p φ, L = Σ p ℓ, W = Σ p^{2−α}, A = Σ dP p, B = Σ dP p φ, C = Σ dP p ℓ (the support only).
 */
export function entmaxRowsAlphaVjp(p: Float32Array, dp: Float32Array, rows: number, n: number, alpha: number): number {
  const e = alpha - 1;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let Phi = 0, L = 0, W = 0, A = 0, B = 0, C = 0;
    for (let j = 0; j < n; j++) {
      const q = p[o + j];
      if (!(q > 0)) continue;
      const l = Math.log(q), t = Math.expm1(e * l);                     // t = p^ε − 1 ∈ (−1, 0]
      const f = Math.log1p(t) - t / (1 + t);
      const g = dp[o + j] * q;
      Phi += q * f; L += q * l; W += q / (1 + t); A += g; B += g * f; C += g * l;
    }
    if (W > 0) total += (Phi * A - B + e * (L * B - Phi * C)) / (W * e * e);
  }
  return total;
}
