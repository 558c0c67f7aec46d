/**
 * WGSL programs of the fused α-entmax kernels for @tensorflow/tfjs-backend-webgpu, in the program
 * interface its own kernels use (`variableNames`, `outputShape`, `dispatchLayout`, `dispatch`,
 * `workgroupSize`, `shaderKey`, `getUserCode()`; tfjs prepends the bindings, the `uniforms` struct
 * with the input shapes, and `main`'s caller). The math, step by step, is in entmax_mirror.ts,
 * which these programs follow (same constants, series, order of sums); read it first.
 *
 * Forward: `rowProgram`, one workgroup per row: row max, the safeguarded Newton solve with every
 *   row sum a workgroup-memory tree reduction, the exact finish; writes [m, r, scale, kind] per row.
 *   Rows of up to MAX_CACHED entries per thread keep their shifted scores in registers.
 *   `probsProgram`, elementwise: p from x and the row's statistics.
 * Backward: `gradRowProgram`, one workgroup per row: the row sums of the Jacobian and of the
 *   α-gradient; writes [c, dα]. `gradProgram`, elementwise: dx = g (dy − c).
 *
 * Every workgroupBarrier sits in control flow that depends only on constants and uniforms (the
 * iteration count is a constant; no early exits), as WGSL's uniformity analysis requires. The
 * Newton state (bracket, r) is recomputed identically by every thread from the reduced sums.
 * WGSL has no ±∞ literals and compilers may assume finite floats, so −∞ and NaN are tested on the
 * bits. The programs are plain objects: nothing here imports tfjs-backend-webgpu.
 */
import {
  ATANH_COEFFS, BIG, EXPM1X_BELOW, EXPM1X_COEFFS, LN2_HI, LN2_LO, LOWEST, MIN_EPS, PHI_COEFFS,
  ROW_INVALID, ROW_MASKED, ROW_NU, ROW_W, rowLayout, SERIES_HI, SERIES_LO, W_MIN,
} from './entmax_mirror.js';

/** The part of tfjs-backend-webgpu's WebGPUProgram these programs fill in. */
export interface EntmaxProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  size?: boolean;
  getUserCode(): string;
}

/**
 * A float32 constant as a WGSL literal: 10 digits, which round back to the same float32 and, rounding
 * down in magnitude at the largest float32, never spell a value beyond its finite range.
 */
export function lit(v: number): string {
  const s = Math.fround(v).toPrecision(10);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/** Σ_k c_k vᵏ by Horner's rule, as WGSL. */
function horner(c: number[], v: string): string {
  return c.slice(0, -1).reduceRight((acc, ck) => `(${lit(ck)} + ${v} * ${acc})`, lit(c[c.length - 1]));
}

/** −∞ and invalid (NaN, +∞) tests on the bits (WGSL has no ±∞ literals; compilers may assume finite floats). */
export const BIT_TESTS = `
fn entIsNegInf(z : f32) -> bool { return bitcast<u32>(z) == 0xff800000u; }
fn entIsInvalid(z : f32) -> bool {
  let b = bitcast<u32>(z);
  return (b & 0x7fffffffu) > 0x7f800000u || b == 0x7f800000u;
}
`;

/** Helpers shared by all four programs (mirror: lnF, logU, expm1xF, phiF, probF, entryTU, shiftF, epsOf). */
export const HELPERS = `
const ROW_NU : f32 = ${ROW_NU}.0;
const ROW_MASKED : f32 = ${ROW_MASKED}.0;
const ROW_INVALID : f32 = ${ROW_INVALID}.0;
const ROW_W : f32 = ${ROW_W}.0;
fn entLn(w : f32) -> f32 {
  let bits = bitcast<u32>(w);
  var e = i32((bits >> 23u) & 0xffu) - 127;
  var f = bitcast<f32>((bits & 0x007fffffu) | 0x3f800000u);
  if (f > ${lit(Math.SQRT2)}) { f = 0.5 * f; e = e + 1; }
  let s = (f - 1.0) / (f + 1.0);
  let fe = f32(e);
  return fe * ${lit(LN2_HI)} + (fe * ${lit(LN2_LO)} + 2.0 * s * ${horner(ATANH_COEFFS, '(s * s)')});
}
fn entLogU(t : f32, u : f32) -> f32 {
  if (t > ${lit(SERIES_LO)} && t < ${lit(SERIES_HI)}) {
    let s = t / (2.0 + t);
    return 2.0 * s * ${horner(ATANH_COEFFS, '(s * s)')};
  }
  return entLn(u);
}
fn entExpm1x(y : f32) -> f32 {
  if (abs(y) < ${lit(EXPM1X_BELOW)}) { return ${horner(EXPM1X_COEFFS, 'y')}; }
  return (exp(y) - 1.0) / y;
}
fn entPhi(t : f32, u : f32) -> f32 {
  if (t > ${lit(SERIES_LO)} && t < ${lit(SERIES_HI)}) {
    let s = t / (2.0 + t);
    return 2.0 * s * s * ${horner(PHI_COEFFS, 's')};
  }
  return entLogU(t, u) - t / u;
}
fn entProb(t : f32, u : f32, eps : f32, q : f32) -> f32 {
  if (!(u > 0.0)) { return 0.0; }
  if (eps == 1.0) { return u; }
  if (eps == 0.5) { return u * u; }
  return exp(q * entLogU(t, u));
}
fn entTU(d : f32, r : f32, eps : f32, wForm : bool) -> vec2<f32> {
  if (wForm) {
    let u = r + eps * d;
    return vec2<f32>(u - 1.0, u);
  }
  let t = eps * (d - r);
  return vec2<f32>(t, 1.0 + t);
}
${BIT_TESTS}fn entShift(z : f32, m : f32, kind : f32) -> f32 {
  if (kind == ROW_MASKED || kind == ROW_INVALID) { return 0.0; }
  if (entIsNegInf(z)) { return ${lit(-BIG)}; }
  return max(z - m, ${lit(-BIG)});
}
fn entEps(a : f32) -> f32 { return max(a - 1.0, ${lit(MIN_EPS)}); }
`;

/** Workgroup-memory tree reductions (sum and max) over `wg` threads (a power of 2): `entSum`, `entMax`. */
export function reductions(wg: number): string {
  const tree = (name: string, op: (a: string, b: string) => string) => `
fn ${name}(v : vec4<f32>, tid : u32) -> vec4<f32> {
  entRed[tid] = v;
  workgroupBarrier();
  for (var s = ${wg >> 1}u; s > 0u; s = s >> 1u) {
    if (tid < s) { entRed[tid] = ${op('entRed[tid]', 'entRed[tid + s]')}; }
    workgroupBarrier();
  }
  let r = entRed[0];
  workgroupBarrier();
  return r;
}`;
  return (
    `var<workgroup> entRed : array<vec4<f32>, ${wg}>;` +
    tree('entSum', (a, b) => `${a} + ${b}`) +
    tree('entMax', (a, b) => `max(${a}, ${b})`)
  );
}

/** Row index of this workgroup over `scores` [rows, n] (a reshaped dispatch may add workgroups past the last row). */
export const ROW_INDEX = (wg: number) => `
  let ti = index % ${wg};                                 // local index, also under a reshaped dispatch
  let tid = u32(ti);
  let rows = uniforms.scoresShape.x;
  let n = uniforms.scoresShape.y;
  let rowRaw = index / ${wg};
  let row = min(rowRaw, rows - 1);
  let base = row * n;`;

/** ROW_INDEX and the row's α. */
const ROW_PROLOGUE = (wg: number) => `${ROW_INDEX(wg)}
  let eps = entEps(alphas[select(row, 0, uniforms.alphasShape == 1)]);
  let q = 1.0 / eps;`;

const ROW_STATS = `
  let m = rowStats[row * 4];
  let r = rowStats[row * 4 + 1];
  let scale = rowStats[row * 4 + 2];
  let kind = rowStats[row * 4 + 3];
  let wForm = kind == ROW_W;`;

function rowBase(
  name: string,
  inputs: string[],
  rows: number,
  width: number,
  wg: number,
): Omit<EntmaxProgram, 'getUserCode'> {
  return {
    variableNames: inputs,
    outputShape: [rows, width],
    shaderKey: name,
    dispatchLayout: { x: [0, 1] },
    dispatch: [rows, 1, 1],
    workgroupSize: [wg, 1, 1],
  };
}

function elementBase(name: string, inputs: string[], rows: number, n: number): Omit<EntmaxProgram, 'getUserCode'> {
  return {
    variableNames: inputs, outputShape: [rows, n], shaderKey: name, size: true,
    dispatchLayout: { x: [0, 1] }, dispatch: [Math.ceil((rows * n) / 64), 1, 1], workgroupSize: [64, 1, 1],
  };
}

/**
 * Steps 1–3 of the forward solve of one row (max, safeguarded Newton, exact finish), as WGSL for a
 * `main` that has defined `ti`, `tid`, `n` (entries), `eps` and `q`; `readZ(col)` is the WGSL of the
 * row's raw score at `col` (an expression). Defines `m`, `flag`, `r`, `wForm` and `scale`, and, with
 * `cached`, `zs` (this thread's shifted scores, entry k at col = ti + k·wg). `eachD(body)` loops over
 * this thread's entries with `d` bound to the shifted score. Shared by rowProgram and the flash
 * attention forward (flash_wgsl.ts).
 */
export function solverSteps(
  wg: number,
  perThread: number,
  cached: boolean,
  nIter: number,
  readZ: (col: string) => string,
): { code: string; eachD: (body: string) => string } {
  // Loop over this thread's entries with `d` bound to the shifted score: registers, or reread.
  const eachD = (body: string) => (cached
    ? `for (var k = 0; k < ${perThread}; k++) { let col = ti + k * ${wg}; if (col < n) { let d = zs[k]; ${body} } }`
    : `for (var col = ti; col < n; col += ${wg}) { let d = entShift(${readZ('col')}, m, flag); ${body} }`);
  return { code: `  // 1. Row maximum over finite entries; flags for NaN/+inf and for a fully masked row.
  ${cached ? `var zs : array<f32, ${perThread}>;` : ''}
  var mx = ${lit(LOWEST)};
  var bad = 0.0;
  var seen = 0.0;
  for (var col = ti; col < n; col += ${wg}) {
    let z = ${readZ('col')};
    ${cached ? `zs[(col - ti) / ${wg}] = z;` : ''}
    if (entIsInvalid(z)) { bad = 1.0; } else if (!entIsNegInf(z)) { seen = 1.0; mx = max(mx, z); }
  }
  let rm = entMax(vec4<f32>(mx, bad, seen, 0.0), tid);
  let flag = select(select(ROW_MASKED, ROW_NU, rm.z > 0.0), ROW_INVALID, rm.y > 0.0);
  let m = select(0.0, rm.x, flag == ROW_NU);
  ${cached ? `for (var k = 0; k < ${perThread}; k++) {
    if (ti + k * ${wg} < n) { zs[k] = entShift(zs[k], m, flag); }
  }` : ''}
  // 2. Safeguarded Newton steps on S^eps - 1 in r: nu, or w = u_max = 1 - eps nu (alpha > 2, or once eps nu > 1/2).
  let twoPoint = eps > 1.0;
  var wForm = twoPoint;
  let lnN = entLn(f32(n));
  var lo = 0.0;
  var hi = lnN * entExpm1x(-eps * lnN);
  if (wForm) { lo = max(exp(-eps * lnN), ${lit(W_MIN)}); hi = 1.0; }
  var r = lo;
  var acc = vec4<f32>(0.0);
  var still = false;
  for (var it = 0; it < ${nIter}; it++) {
    if (!wForm && eps * r > 0.5) {
      let wlo = 1.0 - eps * hi;
      hi = 1.0 - eps * lo;
      lo = wlo;
      r = 1.0 - eps * r;
      wForm = true;
      still = false;
    }
    let mid = 0.5 * (lo + hi);
    if (!still) {
      acc = vec4<f32>(0.0);
      ${eachD(`
        let a = entTU(d, r, eps, wForm);
        let pr = entProb(a.x, a.y, eps, q);
        var gw = 0.0;
        if (a.y > 0.0) { gw = pr / a.y; }
        var pm = 0.0;
        if (twoPoint) { let b = entTU(d, mid, eps, wForm); pm = entProb(b.x, b.y, eps, q); }
        acc = acc + vec4<f32>(pr, gw, pm, 0.0);`)}
    }
    let sums = entSum(acc, tid);
    if (twoPoint) {
      if (sums.z >= 1.0) { hi = min(hi, mid); } else { lo = max(lo, mid); }
    }
    if (wForm) {
      if (sums.x >= 1.0) { hi = min(hi, r); } else { lo = max(lo, r); }
    } else if (sums.x >= 1.0) { lo = max(lo, r); } else { hi = min(hi, r); }
    let L = entLn(sums.x);
    let step = r + select(1.0, -eps, wForm) * (sums.x * L * entExpm1x(-eps * L) / sums.y);
    var next = 0.5 * (lo + hi);
    if (step >= lo && step <= hi) { next = step; }
    still = !twoPoint && next == r;
    r = next;
  }
  // 3. Exact finish on the support (alpha = 2, 1.5) or renormalisation.
  var fin = vec4<f32>(0.0);
  ${eachD(`
    let a = entTU(d, r, eps, wForm);
    if (a.y > 0.0) { fin = fin + vec4<f32>(1.0, a.y, a.y * a.y, entProb(a.x, a.y, eps, q)); }`)}
  let fs = entSum(fin, tid);
  var scale = 1.0;
  var delta = 0.0;
  if (eps == 1.0) {
    delta = (fs.y - 1.0) / fs.x;
  } else if (eps == 0.5) {
    let c = fs.z - 1.0;
    delta = c / (fs.y + sqrt(max(fs.y * fs.y - fs.x * c, 0.0)));
  } else {
    scale = 1.0 / fs.w;
  }
  r = r + select(delta / eps, -delta, wForm);
`, eachD };
}

/**
 * Forward, per row: inputs scores [rows, n], alphas [rows] or [1]; output [rows, 4] = [m, r, scale,
 * kind]. `wg` threads per row (default from n).
 */
export function rowProgram(rows: number, n: number, nIter: number, wg = rowLayout(n).wg): EntmaxProgram {
  const { perThread, cached } = rowLayout(n, wg);
  const { code } = solverSteps(wg, perThread, cached, nIter, (col) => `scores[base + ${col}]`);
  const getUserCode = () => `${HELPERS}${reductions(wg)}
fn main(index : i32) {${ROW_PROLOGUE(wg)}
${code}  if (tid == 0u && rowRaw < rows) {
    setOutputAtIndex(row * 4, m);
    setOutputAtIndex(row * 4 + 1, r);
    setOutputAtIndex(row * 4 + 2, scale);
    setOutputAtIndex(row * 4 + 3, select(flag, ROW_W, flag == ROW_NU && wForm));
  }
}`;
  return {
    ...rowBase(`aesEntmaxRow_${wg}_${perThread}_${cached}_${nIter}`, ['scores', 'alphas'], rows, 4, wg),
    getUserCode,
  };
}

/**
 * An elementwise program over [rows, n]: per entry, the row's stats and α; NaN on invalid rows (kind
 * 2), 0 on masked rows (kind 1), else `body`, which sets `v` from `a` = (t, u) of the entry.
 */
function elementwise(key: string, variableNames: string[], rows: number, n: number, body: string): EntmaxProgram {
  const getUserCode = () => `${HELPERS}
fn main(index : i32) {
  if (index < uniforms.size) {
    let row = index / uniforms.scoresShape.y;${ROW_STATS}
    let eps = entEps(alphas[select(row, 0, uniforms.alphasShape == 1)]);
    var v = 0.0;
    if (kind == ROW_INVALID) {
      v = uniforms.NAN;
    } else if (kind != ROW_MASKED) {
      let a = entTU(entShift(scores[index], m, kind), r, eps, wForm);
      ${body}
    }
    setOutputAtIndex(index, v);
  }
}`;
  return { ...elementBase(key, variableNames, rows, n), getUserCode };
}

/** Forward, elementwise: inputs scores, alphas, rowStats; output p [rows, n]. */
export function probsProgram(rows: number, n: number): EntmaxProgram {
  return elementwise(
    'aesEntmaxProbs',
    ['scores', 'alphas', 'rowStats'],
    rows,
    n,
    'v = entProb(a.x, a.y, eps, 1.0 / eps) * scale;',
  );
}

/** Backward, per row: inputs scores, alphas, rowStats, dy; output [rows, 2] = [c, dα]. */
export function gradRowProgram(rows: number, n: number, withAlpha: boolean, wg = rowLayout(n).wg): EntmaxProgram {
  const getUserCode = () => `${HELPERS}${reductions(wg)}
fn main(index : i32) {${ROW_PROLOGUE(wg)}${ROW_STATS}
  let lnScale = entLn(scale);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  for (var col = ti; col < n; col += ${wg}) {
    let a = entTU(entShift(scores[base + col], m, kind), r, eps, wForm);
    if (a.y > 0.0) {
      let pr = entProb(a.x, a.y, eps, q) * scale;
      let g = pr / a.y;
      let y = dy[base + col];
      ${withAlpha ? `let ph = entPhi(a.x, a.y);
      let l = q * entLogU(a.x, a.y) + lnScale;
      let py = pr * y;
      a1 = a1 + vec4<f32>(g, g * y, pr * ph, pr * l);
      a2 = a2 + vec4<f32>(py, py * ph, py * l, 0.0);` : 'a1 = a1 + vec4<f32>(g, g * y, 0.0, 0.0);'}
    }
  }
  // W, sum g dy, Phi, L | A, B, C
  let s1 = entSum(a1, tid);
  ${withAlpha ? 'let s2 = entSum(a2, tid);' : 'let s2 = vec4<f32>(0.0);'}
  let c = s1.y / s1.x;
  let num = (s1.z * s2.x - s2.y) + eps * (s1.w * s2.y - s1.z * s2.z);
  var da = ${withAlpha ? 'num / (s1.x * (eps * eps))' : '0.0'};
  var cc = c;
  if (kind == ROW_MASKED) { da = 0.0; cc = 0.0; }
  if (kind == ROW_INVALID) { da = uniforms.NAN; cc = uniforms.NAN; }
  if (tid == 0u && rowRaw < rows) {
    setOutputAtIndex(row * 2, cc);
    setOutputAtIndex(row * 2 + 1, da);
  }
}`;
  return {
    ...rowBase(`aesEntmaxGradRow_${wg}_${withAlpha}`, ['scores', 'alphas', 'rowStats', 'dy'], rows, 2, wg),
    getUserCode,
  };
}

/** Backward, elementwise: inputs scores, alphas, rowStats, dy, rowGrad; output dx [rows, n]. */
export function gradProgram(rows: number, n: number): EntmaxProgram {
  return elementwise('aesEntmaxGrad', ['scores', 'alphas', 'rowStats', 'dy', 'rowGrad'], rows, n,
    'if (a.y > 0.0) { v = entProb(a.x, a.y, eps, 1.0 / eps) * scale / a.y * (dy[index] - rowGrad[row * 2]); }');
}
