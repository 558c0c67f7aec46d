/**
 * The next-token distribution at temperature T read as a Boltzmann distribution, and a sampler that
 * picks T to hit a target entropy (the later Entropix idea, done with a safeguarded Newton solve).
 *
 * With energies E_i = −z_i (z the logits) and β = 1/T:
 *   p_i = e^{−βE_i} / Z,  ln Z = logsumexp(βz),  F = −β⁻¹ ln Z  (free energy),
 *   S = −Σ p ln p = β⟨E⟩ + ln Z = β(⟨E⟩ − F)  (entropy, nats),
 *   V = Var(ln p) = Σ p (ln p + S)²  (varentropy, nats²),
 *   dS/dT = V / T  (V plays the heat capacity), i.e. dS/d ln T = V.
 * S(T) increases from ln m (m = number of logits tied at the maximum) as T → 0 to ln n (n = number
 * of finite logits) as T → ∞.
 *
 * Everything is float64 in JavaScript on the row's data (one vocabulary row is small), because
 * float32 would lose the identity S = β(⟨E⟩ − F) at large β: ⟨E⟩ and F grow like the logits while
 * β(⟨E⟩ − F) = S stays O(1), so the difference cancels most digits.
 */
import * as tf from '@tensorflow/tfjs';
import { filterLogitsArray } from './filter_logits.js';
import { drawCategorical, logitsRow, softmax64 } from './sample.js';
import type { Sampler } from './sampler_types.js';

/** Thermodynamic quantities of softmax(z / T); see the file comment. `Z` may overflow to Infinity (use `logZ`). */
export interface FreeEnergyStats {
  beta: number;
  logZ: number;
  Z: number;
  /** F = −T ln Z. */
  F: number;
  /** ⟨E⟩ = −Σ p z. */
  meanEnergy: number;
  /** S in nats. */
  entropy: number;
  /** Var(ln p) in nats². */
  varentropy: number;
}

/** Logits of one row as float64: a float32 `[V]` tensor or plain numbers; finite or −Infinity, at least one finite. */
function rowOf(logits: tf.Tensor | ArrayLike<number>, op: string): Float64Array {
  const x = Float64Array.from(logits instanceof tf.Tensor ? logitsRow(logits, op) : logits);
  if (x.length === 0) throw new RangeError(`${op}: logits must not be empty`);
  for (const v of x)
    if (Number.isNaN(v) || v === Infinity) throw new RangeError(`${op}: logits must be finite or -Infinity, got ${v}`);
  if (!x.some(Number.isFinite)) throw new RangeError(`${op}: every logit is -Infinity`);
  return x;
}

function checkT(t: number, op: string): void {
  if (typeof t !== 'number' || !(t > 0) || !Number.isFinite(t))
    throw new RangeError(`${op}: temperature must be a finite number > 0, got ${String(t)}`);
}

/** Stats of an already-checked row: ln Z by logsumexp, then the moments from ln p (no log of a rounded p). */
function statsOf(z: Float64Array, t: number): FreeEnergyStats {
  const beta = 1 / t;
  let m = -Infinity;
  for (const v of z) m = Math.max(m, beta * v);
  let sum = 0;
  for (const v of z) sum += Math.exp(beta * v - m);
  const logSum = Math.log(sum);
  const logZ = m + logSum;
  // ln p from the shifted exponent, so that a large m does not cost digits.
  let meanEnergy = 0;
  let entropy = 0;
  for (const v of z) {
    if (v === -Infinity) continue;                           // p = 0: no contribution
    const lnp = beta * v - m - logSum;
    const p = Math.exp(lnp);
    meanEnergy -= p * v;
    entropy -= p * lnp;
  }
  let varentropy = 0;
  for (const v of z) {
    if (v === -Infinity) continue;
    const lnp = beta * v - m - logSum;
    varentropy += Math.exp(lnp) * (lnp + entropy) ** 2;
  }
  return { beta, logZ, Z: Math.exp(logZ), F: -logZ / beta, meanEnergy, entropy, varentropy };
}

/**
 * Free energy, mean energy, entropy and varentropy of softmax(logits / T) with E = −logits.
 * @param logits float32 `[V]` tensor or numbers (computed in float64).
 * @example
 * const s = freeEnergyStats([2, 1, 0], 0.7);
 * s.entropy;  // ≈ s.beta * (s.meanEnergy - s.F)
 */
export function freeEnergyStats(logits: tf.Tensor | ArrayLike<number>, temperature: number): FreeEnergyStats {
  checkT(temperature, 'freeEnergyStats');
  return statsOf(rowOf(logits, 'freeEnergyStats'), temperature);
}

/** Target of `solveTemperature`: an entropy in nats, or a fraction of ln n (n = number of finite logits). */
export type EntropyTarget = { entropy?: number } | { fraction?: number };

/** Options of `solveTemperature`. */
export interface SolveTemperatureArgs {
  /** Stop when |S − target| ≤ tol (nats). Default 1e-6. */
  tol?: number;
  /** Most solver steps. Default 50. */
  maxIter?: number;
  /** First guess of T (clipped into [tMin, tMax]). Default 1. */
  initial?: number;
  /** The search interval of T; targets it cannot reach are clamped to its ends. Defaults 1e-4 and 1e4. */
  tMin?: number;
  tMax?: number;
}
export const SOLVE_TEMPERATURE_DEFAULTS: Readonly<Required<SolveTemperatureArgs>> = Object.freeze({
  tol: 1e-6, maxIter: 50, initial: 1, tMin: 1e-4, tMax: 1e4,
});

/** Result of `solveTemperature`. */
export interface SolveTemperatureResult {
  temperature: number;
  /** S at `temperature`, nats. */
  entropy: number;
  /** The target in nats (after converting a fraction). */
  target: number;
  /** Solver steps taken (entropy evaluations inside the bracket, not counting its two ends). */
  iterations: number;
  /** |entropy − target| ≤ tol with T inside [tMin, tMax]; false whenever `clamped` is set. */
  converged: boolean;
  /**
   * 'low': the target is ≤ S(T → 0) = ln m, or would need T < tMin, so T = tMin; 'high': the target
   * is ≥ S(T → ∞) = ln n, or would need T > tMax, so T = tMax; null otherwise. When every finite
   * logit is equal S ≡ ln n: a target of ln n converges at `initial`, any other is clamped.
   */
  clamped: 'low' | 'high' | null;
}

/** The target in nats, checked; n = number of finite logits. */
function targetNats(target: EntropyTarget, n: number): number {
  const t = (target ?? {}) as { entropy?: number; fraction?: number };
  const keys = Object.keys(t).filter((k) => t[k as keyof typeof t] !== undefined);
  if (keys.length !== 1 || (keys[0] !== 'entropy' && keys[0] !== 'fraction')) {
    throw new RangeError(
      `solveTemperature: target must be {entropy: nats} or {fraction: of ln n}, got ${JSON.stringify(target)}`,
    );
  }
  if (t.entropy !== undefined) {
    if (typeof t.entropy !== 'number' || !(t.entropy >= 0) || !Number.isFinite(t.entropy))
      throw new RangeError(`solveTemperature: target entropy must be a finite number ≥ 0, got ${String(t.entropy)}`);
    return t.entropy;
  }
  const f = t.fraction as number;
  if (typeof f !== 'number' || !(f >= 0 && f <= 1))
    throw new RangeError(`solveTemperature: target fraction must be in [0, 1], got ${String(f)}`);
  return f * Math.log(n);
}

function checkSolveArgs(args: SolveTemperatureArgs): Required<SolveTemperatureArgs> {
  for (const k of Object.keys(args)) {
    if (!Object.hasOwn(SOLVE_TEMPERATURE_DEFAULTS, k))
      throw new RangeError(
        `solveTemperature: unknown option '${k}'; valid options are ` +
        `${Object.keys(SOLVE_TEMPERATURE_DEFAULTS).join(', ')}`,
      );
  }
  const a = { ...SOLVE_TEMPERATURE_DEFAULTS, ...args };
  const pos = (v: number) => typeof v === 'number' && v > 0 && Number.isFinite(v);
  if (!pos(a.tol)) throw new RangeError(`solveTemperature: tol must be a finite number > 0, got ${String(a.tol)}`);
  if (!Number.isInteger(a.maxIter) || a.maxIter < 1)
    throw new RangeError(`solveTemperature: maxIter must be an integer ≥ 1, got ${String(a.maxIter)}`);
  if (!pos(a.initial))
    throw new RangeError(`solveTemperature: initial must be a finite number > 0, got ${String(a.initial)}`);
  if (!pos(a.tMin) || !pos(a.tMax) || a.tMin >= a.tMax)
    throw new RangeError(
      `solveTemperature: need 0 < tMin < tMax < ∞, got tMin ${String(a.tMin)}, tMax ${String(a.tMax)}`,
    );
  return a;
}

/**
 * The temperature T at which softmax(logits / T) has a given entropy. S is increasing in T, so the
 * root is unique; it is found by Newton steps in u = ln T (dS/du = V, the varentropy) inside a
 * bracket [u_lo, u_hi] that every evaluation shrinks. A step that leaves the bracket, or that
 * follows a step which did not reduce |S − target|, is replaced by bisection, so the solve cannot
 * diverge and is quadratic near the root. Targets outside (S(tMin), S(tMax)), which includes all
 * outside (ln m, ln n), are not errors: T is clamped to the end and `clamped` says which.
 * @example
 * solveTemperature(logits, {fraction: 0.5});   // T where S = ½ ln n
 */
export function solveTemperature(
  logits: tf.Tensor | ArrayLike<number>, target: EntropyTarget, opts: SolveTemperatureArgs = {},
): SolveTemperatureResult {
  const z = rowOf(logits, 'solveTemperature');
  const a = checkSolveArgs(opts);
  const n = z.reduce((c, v) => c + (v > -Infinity ? 1 : 0), 0);
  const goal = targetNats(target, n);
  const done = (
    t: number,
    s: number,
    iterations: number,
    clamped: 'low' | 'high' | null = null,
  ): SolveTemperatureResult => ({
    temperature: t,
    entropy: s,
    target: goal,
    iterations,
    converged: clamped === null && Math.abs(s - goal) <= a.tol,
    clamped,
  });
  // The limits of S: ln m as T → 0 (m logits tied at the max), ln n as T → ∞. Neither is attained.
  const top = Math.max(...z);
  const [s0, sInf] = [Math.log(z.reduce((c, v) => c + (v === top ? 1 : 0), 0)), Math.log(n)];
  const t0 = Math.min(a.tMax, Math.max(a.tMin, a.initial));
  if (s0 === sInf) return done(t0, sInf, 0, Math.abs(sInf - goal) <= a.tol ? null : goal < sInf ? 'low' : 'high');
  const sLo = statsOf(z, a.tMin).entropy;
  const sHi = statsOf(z, a.tMax).entropy;
  if (goal <= s0 || sLo - goal > a.tol) return done(a.tMin, sLo, 0, 'low');
  if (goal >= sInf || goal - sHi > a.tol) return done(a.tMax, sHi, 0, 'high');
  let [lo, hi] = [Math.log(a.tMin), Math.log(a.tMax)];
  let u = Math.log(t0);
  let best = { t: Math.exp(u), s: NaN, r: Infinity };
  let prevAbs = Infinity;
  for (let it = 1; it <= a.maxIter; it++) {
    const t = Math.exp(u);
    const { entropy: s, varentropy: v } = statsOf(z, t);
    const r = s - goal;
    if (Math.abs(r) < best.r) best = { t, s, r: Math.abs(r) };
    if (Math.abs(r) <= a.tol) return done(t, s, it);
    if (r < 0) lo = u; else hi = u;
    let next = v > 0 ? u - r / v : NaN;
    // Bisect when Newton leaves the bracket (or V underflowed) or the last step did not help.
    if (!(next > lo && next < hi) || Math.abs(r) >= prevAbs) next = (lo + hi) / 2;
    prevAbs = Math.abs(r);
    u = next;
  }
  return done(best.t, best.s, a.maxIter);
}

/** Options of `freeEnergySampler`. */
export interface FreeEnergySamplerArgs {
  /** Entropy to hit at every step: {entropy: nats} or {fraction: of ln n}. */
  target: EntropyTarget;
  /** Optional min-p applied after the temperature solve (keep p_T ≥ minP · max p_T); in [0, 1]. */
  minP?: number;
  /** Solver options. */
  solver?: SolveTemperatureArgs;
}

/**
 * Per step: solve T so that softmax(logits / T) has the target entropy, optionally min-p filter,
 * then draw exactly. The record holds `temperature`, `entropy` (S at T before min-p, nats),
 * `target`, `F`, `logZ`, `Z` (null when it overflows), `meanEnergy`, `iterations`, `converged`,
 * `clamped`, `minP`, `kept` and `p`.
 * @example
 * const sample = freeEnergySampler({target: {fraction: 0.4}, minP: 0.05});
 */
export function freeEnergySampler(args: FreeEnergySamplerArgs): Sampler {
  const { target, minP = 0, solver = {} } = args ?? ({} as FreeEnergySamplerArgs);
  targetNats(target, 2);                                     // check the shape of the target now
  checkSolveArgs(solver);
  if (typeof minP !== 'number' || !(minP >= 0 && minP <= 1))
    throw new RangeError(`freeEnergySampler: minP must be in [0, 1], got ${String(minP)}`);
  return (logits, ctx) => {
    const row = logitsRow(logits, 'freeEnergySampler');
    const sol = solveTemperature(row, target, solver);
    const st = statsOf(Float64Array.from(row), sol.temperature);
    const p = softmax64(filterLogitsArray(row, { temperature: sol.temperature, minP }));
    const token = drawCategorical(p, ctx.rng);
    const kept = p.reduce((c, v) => c + (v > 0 ? 1 : 0), 0);
    return {
      token,
      record: {
        sampler: 'free-energy', temperature: sol.temperature, entropy: sol.entropy, target: sol.target,
        F: st.F, logZ: st.logZ, Z: Number.isFinite(st.Z) ? st.Z : null, meanEnergy: st.meanEnergy,
        iterations: sol.iterations, converged: sol.converged, clamped: sol.clamped, minP, kept, p: p[token],
      },
    };
  };
}
