/**
 * α-entmax of score rows in plain JavaScript (float64 arithmetic, float32 storage), for code that
 * already holds the scores in memory: the block-skipping attention runs its many small blocks
 * through these instead of a dozen tfjs kernels each (on wasm, per-kernel overhead dominates there).
 *
 * Same conventions as the tensor maps: −∞ masks an entry, a fully masked row gives zeros, a row with
 * NaN or +∞ gives NaN. Solvers, per row, on y = z − max z:
 * - α = 2: Michelot's iteration τ ← (Σ_{y>τ} y − 1)/|{y > τ}| from τ = (Σy − 1)/n; it increases
 *   monotonically and stops, exactly, when the support no longer changes;
 * - otherwise: safeguarded Halley on f(ν) = Σ[1 + ε(y − ν)]₊^{1/ε} − 1 (ε = α − 1; Newton for α > 2)
 *   as in entmaxBisect, to |Δν| ≤ 1e-9, then renormalised (α = 1.5: the threshold in closed form on
 *   the support).
 */

/** Maps `rows × n` scores (row-major) to probabilities, writing into `out` (may be `x`). */
export function entmaxRows(x: Float32Array, rows: number, n: number, alpha: number, out: Float32Array = new Float32Array(rows * n)): Float32Array {
  if (!(alpha > 1) || !Number.isFinite(alpha)) throw new RangeError(`entmaxRows: alpha must be finite and > 1, got ${alpha}`);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let m = -Infinity, bad = false;
    for (let j = 0; j < n; j++) {
      const z = x[o + j];
      if (z !== z || z === Infinity) bad = true;
      else if (z > m) m = z;
    }
    if (bad || m === -Infinity) { out.fill(bad ? NaN : 0, o, o + n); continue; }
    if (alpha === 2) sparsemaxRow(x, o, n, m, out);
    else halleyRow(x, o, n, m, alpha - 1, out);
  }
  return out;
}

function sparsemaxRow(x: Float32Array, o: number, n: number, m: number, out: Float32Array): void {
  let sum = 0, count = 0;
  for (let j = 0; j < n; j++) { const y = x[o + j] - m; if (y > -Infinity) { sum += y; count++; } }
  let tau = (sum - 1) / count;
  for (;;) {
    sum = 0;
    let c = 0;
    for (let j = 0; j < n; j++) { const y = x[o + j] - m; if (y > tau) { sum += y; c++; } }
    const next = (sum - 1) / c;
    if (c === count || !(next > tau)) { tau = next; break; }
    [tau, count] = [next, c];
  }
  for (let j = 0; j < n; j++) out[o + j] = Math.max(x[o + j] - m - tau, 0);
}

function halleyRow(x: Float32Array, o: number, n: number, m: number, eps: number, out: Float32Array): void {
  const inv = 1 / eps, curv = Math.max(1 - eps, 0), half = eps === 0.5;
  let visible = 0;
  for (let j = 0; j < n; j++) if (x[o + j] > -Infinity) visible++;
  let lo = 0, hi = -Math.expm1(-eps * Math.log(visible)) / eps, nu = 0;
  // α = 1.5 ends with the closed form on the support, so it needs the support, not ν to the last bit.
  const tol = half ? 1e-6 : 1e-9;
  for (let it = 0; it < 100; it++) {
    let f = -1, d1 = 0, d2 = 0;
    const c = 1 - eps * (m + nu);                        // u = 1 + ε(z − m − ν) = c + εz
    if (half) {
      for (let j = 0; j < n; j++) {
        const u = c + 0.5 * x[o + j];
        if (u > 0) { f += u * u; d1 -= u; d2 += 1; }
      }
    } else {
      for (let j = 0; j < n; j++) {
        const u = c + eps * x[o + j];
        if (u > 0) { const w = Math.pow(u, inv - 1); f += w * u; d1 -= w; d2 += w / u; }
      }
    }
    if (f >= 0) lo = nu; else hi = nu;
    let step = nu - (2 * f * d1) / (2 * d1 * d1 - f * curv * d2);
    if (!(step >= lo && step <= hi)) step = (lo + hi) / 2;
    const moved = Math.abs(step - nu);
    nu = step;
    if (moved <= tol || hi - lo <= 1e-12) break;
  }
  const c = 1 - eps * (m + nu);
  if (half) {                                          // Σ_S (a − c')² = 1, a = 1 + y/2, c' = ν/2
    let k = 0, sa = 0, sa2 = 0;
    for (let j = 0; j < n; j++) {
      const a = 1 + 0.5 * (x[o + j] - m);
      if (a - 0.5 * nu > 0) { k++; sa += a; sa2 += a * a; }
    }
    nu = 2 * (sa - Math.sqrt(Math.max(sa * sa - k * (sa2 - 1), 0))) / k;
    const c2 = 1 - 0.5 * (m + nu);
    for (let j = 0; j < n; j++) { const u = c2 + 0.5 * x[o + j]; out[o + j] = u > 0 ? u * u : 0; }
    return;                                            // sums to 1 by construction
  }
  let total = 0;
  for (let j = 0; j < n; j++) {
    const u = c + eps * x[o + j];
    const p = u > 0 ? Math.pow(u, inv) : 0;
    out[o + j] = p;
    total += p;
  }
  for (let j = 0; j < n; j++) out[o + j] /= total;
}

/**
 * The entmax vector–Jacobian product for rows of probabilities p and upstream dP:
 * dS = g ⊙ dP − g Σ(g ⊙ dP)/Σg with g = p^{2−α} (0 off the support). Written into `out`.
 */
export function entmaxRowsVjp(p: Float32Array, dp: Float32Array, rows: number, n: number, alpha: number, out: Float32Array = new Float32Array(rows * n)): Float32Array {
  const e = 2 - alpha;
  const g = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let sg = 0, sgd = 0;
    for (let j = 0; j < n; j++) {
      const q = p[o + j];
      const w = q > 0 ? (alpha === 2 ? 1 : alpha === 1.5 ? Math.sqrt(q) : Math.pow(q, e)) : 0;
      g[j] = w;
      sg += w;
      sgd += w * dp[o + j];
    }
    const mean = sg > 0 ? sgd / sg : 0;
    for (let j = 0; j < n; j++) out[o + j] = g[j] * (dp[o + j] - mean);
  }
  return out;
}
