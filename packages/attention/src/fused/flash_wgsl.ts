/**
 * WGSL programs of the flash-style α-entmax attention for tfjs-backend-webgpu (flash_fused.ts runs
 * them): the scores q·kᵀ are made tile by tile inside the programs and never written to global
 * memory; the α-entmax threshold is solved per query row in workgroup memory by the same solver as
 * the fused map (`solverSteps`, entmax_wgsl.ts: safeguarded Newton, exact finish at α = 1.5 and 2).
 *
 * Layout: rows = B·H·T query rows of width D; keys and values [B·H·S, D] and [B·H·S, DV]; key tiles
 * of TILE keys. Uniforms: scale (of the scores), T, S, H, offset (query i sees keys j ≤ i + offset;
 * offset ≥ S − 1 for no causal mask). An optional keyMask [B, S] (1 visible, 0 hidden) pads keys.
 *
 * 1. `tilesProgram`, one workgroup per key tile: the centre c of its visible keys, the radius ρ
 *    (largest distance to c) and the largest key norm: [B·H·NT, D + 3] = (c, ρ, count, max ‖k‖).
 * 2. `forwardProgram`, one workgroup per query row:
 *    a. the bound ub_t = s·q·c_t + |s|·‖q‖·ρ_t ≥ every score of tile t (Cauchy–Schwarz);
 *    b. the exact scores of the tile with the largest bound: their max m₀ ≤ m, the row's max;
 *    c. p_j = 0 whenever z_j ≤ m − 1/(α − 1) (the solver's support needs u = 1 + ε(d − r) > 0 with
 *       d = z − m and r ≥ 0), so tile t is skipped when ub_t + δ ≤ m₀ − 1/ε; δ covers float32
 *       rounding: 5γ_{D+2}·|s|·‖q‖·max‖k‖ for the dot products and the bound (γ_n = nu/(1 − nu),
 *       u = 2⁻²⁴), and 8u(|m₀| + 1/ε) for the shift z − m and for t and u, so a skipped score would
 *       have had u ≤ 0 in the dense solve too: skipping changes no output;
 *    d. the solve on the kept tiles' scores (registers when a thread holds ≤ 32 of them, else
 *       recomputed), then P·V with p shared through workgroup memory, one output column per thread.
 *    Output [rows, DV + 7 + NT]: o, then (m, r, scale, kind) for the backward, (kept, visible)
 *    tiles, the row's α, and the kept flag of every tile (the backward reads α here: a program
 *    may bind only 8 storage buffers).
 * 3. `backwardRowsProgram`, one workgroup per query row: g = p/u on the support, dP_j = dO·v_j,
 *    c = Σg·dP/Σg, the row's dα (entmax_mirror.ts's formula), and dq = s·Σ_j g_j(dP_j − c)·k_j:
 *    [rows, D + 2] = (dq, c, dα).
 * 4. `backwardKeysProgram`, one workgroup per key tile, one thread per key, looping over the query
 *    rows whose flag keeps that tile: dk_j = s·Σ_i g_ij(dP_ij − c_i)·q_i, dv_j = Σ_i p_ij·dO_i, in
 *    registers, no atomics: [B·H·S, D + DV].
 * Rows with NaN or +∞ scores keep every tile and give NaN; rows with no visible key give zeros.
 */
import { BIT_TESTS, HELPERS, lit, reductions, solverSteps, type EntmaxProgram } from './entmax_wgsl.js';
import { LOWEST, MAX_CACHED, ROW_INVALID, ROW_MASKED, ROW_NU, ROW_W, rowLayout } from './entmax_mirror.js';

/** Keys per tile, the unit that is skipped. */
export const TILE = 64;
/** Tiles per row held in workgroup memory: S ≤ TILE·MAX_TILES. */
export const MAX_TILES = 1024;
/** Largest head width the programs take (the key pass keeps D + DV values per thread). */
export const MAX_WIDTH = 256;

/** A tfjs-backend-webgpu program with its own uniforms (the part these programs fill in). */
export interface FlashProgram extends EntmaxProgram {
  uniforms: string;
}

/** The uniforms of every program, in the order `flashUniforms` gives their values. */
const UNIFORMS = 'scale : f32, T : i32, S : i32, H : i32, offset : i32,';

/** The values of UNIFORMS. */
export function flashUniforms(u: { scale: number; T: number; S: number; H: number; offset: number }) {
  return [
    { type: 'float32' as const, data: [u.scale] },
    ...[u.T, u.S, u.H, u.offset].map((x) => ({ type: 'int32' as const, data: [x] })),
  ];
}

const gamma = (n: number) => (n * 2 ** -24) / (1 - n * 2 ** -24);

/** Visibility of key j to query i of batch b, and the score of a key row against the workgroup's query. */
function keyHelpers(D: number, masked: boolean): string {
  return `
fn flVisible(b : i32, i : i32, j : i32) -> bool {
  return j <= i + uniforms.offset${masked ? ' && f32(keyMask[b * uniforms.S + j]) > 0.5' : ''};
}
fn flScore(keyRow : i32) -> f32 {
  var s = 0.0;
  for (var e = 0; e < ${D}; e++) { s = s + flQ[e] * keys[keyRow * ${D} + e]; }
  return uniforms.scale * s;
}`;
}

/** The query row of this workgroup (`row`, batch `b`, position `i`, key base `kb`) and its α. */
const ROW_PROLOGUE = (wg: number, alpha: boolean) => `
  let ti = index % ${wg};
  let tid = u32(ti);
  let rows = uniforms.queriesShape.x;
  let rowRaw = index / ${wg};
  let row = min(rowRaw, rows - 1);
  let n = uniforms.S;
  let bh = row / uniforms.T;
  let i = row % uniforms.T;
  let b = bh / uniforms.H;
  let kb = bh * n;
  let nt = (n + ${TILE - 1}) / ${TILE};
  ${alpha ? 'let eps = entEps(alphas[select(row, 0, uniforms.alphasShape == 1)]);' : ''}`;

const base = (key: string, inputs: string[], outputShape: number[], workgroups: number, wg: number) => ({
  variableNames: inputs,
  outputShape,
  shaderKey: key,
  dispatchLayout: { x: [0, 1] },
  dispatch: [workgroups, 1, 1] as [number, number, number],
  workgroupSize: [wg, 1, 1] as [number, number, number],
  uniforms: UNIFORMS,
});

/** The key tile of this workgroup (`t` of `nt` in head row `bh`, batch `b`, key base `kb`), one thread per key. */
const TILE_PROLOGUE = `
  let ti = index % ${TILE};
  let n = uniforms.S;
  let nt = (n + ${TILE - 1}) / ${TILE};
  let total = (uniforms.keysShape.x / n) * nt;
  let wRaw = index / ${TILE};
  let w = min(wRaw, total - 1);
  let bh = w / nt;
  let t = w % nt;
  let b = bh / uniforms.H;
  let kb = bh * n;`;

/** Program 1: inputs keys [B·H·S, D] (and keyMask); output [B·H·NT, D + 3]. */
export function tilesProgram(BH: number, S: number, D: number, masked: boolean): FlashProgram {
  const nt = Math.ceil(S / TILE);
  const grow = lit(1 + 8 * gamma(D + 2));
  const getUserCode = () => `${reductions(TILE)}${BIT_TESTS}
var<workgroup> flC : array<f32, ${D}>;
fn main(index : i32) {${TILE_PROLOGUE}
  let tid = u32(ti);
  for (var e = ti; e < ${D}; e += ${TILE}) {
    var s = 0.0;
    var cnt = 0.0;
    for (var c = 0; c < ${TILE}; c++) {
      let j = t * ${TILE} + c;
      if (j < n${masked ? ' && f32(keyMask[b * n + j]) > 0.5' : ''}) {
        s = s + keys[(kb + j) * ${D} + e];
        cnt = cnt + 1.0;
      }
    }
    flC[e] = select(0.0, s / max(cnt, 1.0), cnt > 0.0);
  }
  workgroupBarrier();
  let j = t * ${TILE} + ti;
  var dist = 0.0;
  var norm = 0.0;
  var cnt = 0.0;
  var bad = 0.0;
  if (j < n${masked ? ' && f32(keyMask[b * n + j]) > 0.5' : ''}) {
    for (var e = 0; e < ${D}; e++) {
      let x = keys[(kb + j) * ${D} + e];
      if (entIsInvalid(x) || entIsNegInf(x)) { bad = 1.0; }
      dist = dist + (x - flC[e]) * (x - flC[e]);
      norm = norm + x * x;
    }
    cnt = 1.0;
  }
  let mx = entMax(vec4<f32>(sqrt(dist), sqrt(norm), bad, 0.0), tid);
  let count = entSum(vec4<f32>(cnt, 0.0, 0.0, 0.0), tid).x;
  if (wRaw < total) {
    let out = w * ${D + 3};
    for (var e = ti; e < ${D}; e += ${TILE}) { setOutputAtIndex(out + e, flC[e]); }
    if (tid == 0u) {
      // a tile holding NaN or ±inf gets an unbounded radius, so that no row skips it
      setOutputAtIndex(out + ${D}, select(mx.x * ${grow}, ${lit(-LOWEST)}, mx.z > 0.0));
      setOutputAtIndex(out + ${D + 1}, count);
      setOutputAtIndex(out + ${D + 2}, mx.y * ${grow});
    }
  }
}`;
  return {
    ...base(`aesFlashTiles_${D}_${masked}`, ['keys', ...(masked ? ['keyMask'] : [])], [BH * nt, D + 3], BH * nt, TILE),
    getUserCode,
  };
}

/**
 * Σ_j w_j · rows[kb + j] over the row's keys in chunks of `wg`, into `rowSum` (this thread's output
 * columns e = ti, ti + wg, … < width): `weight` sets `w` for key `col` (0 where it has none); the
 * chunk's weights go through workgroup memory `flP`, one column per thread.
 */
function weightedRows(wg: number, width: number, rows: string, weight: string): string {
  return `
  var rowSum : array<f32, ${Math.ceil(width / wg)}>;
  for (var c0 = 0; c0 < n; c0 += ${wg}) {
    let col = c0 + ti;
    var w = 0.0;
    if (col < n) {${weight}
    }
    flP[ti] = w;
    workgroupBarrier();
    for (var e = ti; e < ${width}; e += ${wg}) {
      var s = 0.0;
      for (var cI = 0; cI < ${wg}; cI++) {
        let x = flP[cI];
        if (x != 0.0) { s = s + x * ${rows}[(kb + c0 + cI) * ${width} + e]; }
      }
      rowSum[(e - ti) / ${wg}] = rowSum[(e - ti) / ${wg}] + s;
    }
    workgroupBarrier();
  }`;
}

/** The forward's layout for S keys: threads per row and whether a thread keeps its scores in registers. */
export function flashLayout(S: number): { wg: number; perThread: number; cached: boolean } {
  const { wg } = rowLayout(S);
  const perThread = Math.ceil(S / wg);
  return { wg, perThread, cached: perThread <= MAX_CACHED };
}

/** Program 2: inputs queries, keys, values, alphas, tiles (, keyMask); output [rows, DV + 7 + NT]. */
export function forwardProgram(
  rows: number,
  S: number,
  D: number,
  DV: number,
  nIter: number,
  masked: boolean,
): FlashProgram {
  const { wg, perThread, cached } = flashLayout(S);
  const nt = Math.ceil(S / TILE);
  const readZ = (col: string) => `flZ(b, i, kb, ${col})`;
  const { code } = solverSteps(wg, perThread, cached, nIter, readZ);
  const getUserCode = () => `${HELPERS}${reductions(wg)}
var<workgroup> flQ : array<f32, ${D}>;
var<workgroup> flTile : array<f32, ${MAX_TILES}>;
var<workgroup> flP : array<f32, ${wg}>;
${keyHelpers(D, masked)}
fn flZ(b : i32, i : i32, kb : i32, j : i32) -> f32 {
  if (flTile[j / ${TILE}] == 0.0 || !flVisible(b, i, j)) { return -uniforms.INFINITY; }
  return flScore(kb + j);
}
fn flTileVisible(bh : i32, nt : i32, t : i32, i : i32) -> bool {
  return tiles[(bh * nt + t) * ${D + 3} + ${D + 1}] > 0.0 && t * ${TILE} <= i + uniforms.offset;
}
fn main(index : i32) {${ROW_PROLOGUE(wg, true)}
  let q = 1.0 / eps;
  for (var e = ti; e < ${D}; e += ${wg}) { flQ[e] = queries[row * ${D} + e]; }
  workgroupBarrier();
  var qq = 0.0;
  for (var e = 0; e < ${D}; e++) { qq = qq + flQ[e] * flQ[e]; }
  let qn = sqrt(qq);
  // a. tile bounds (LOWEST for tiles with no visible key), the largest key norm, bad bounds
  var best = ${lit(LOWEST)};
  var kmax = 0.0;
  var badT = 0.0;
  for (var t = ti; t < nt; t += ${wg}) {
    var ub = ${lit(LOWEST)};
    if (flTileVisible(bh, nt, t, i)) {
      let tb = (bh * nt + t) * ${D + 3};
      var dc = 0.0;
      for (var e = 0; e < ${D}; e++) { dc = dc + flQ[e] * tiles[tb + e]; }
      ub = uniforms.scale * dc + abs(uniforms.scale) * qn * tiles[tb + ${D}];
      if (entIsInvalid(ub) || entIsNegInf(ub)) { badT = 1.0; ub = ${lit(-LOWEST)}; }
      kmax = max(kmax, tiles[tb + ${D + 2}]);
      best = max(best, ub);
    }
    flTile[t] = ub;
  }
  let rb = entMax(vec4<f32>(best, kmax, badT, 0.0), tid);
  // b. the first tile with the largest bound, and the max of its exact scores
  var cand = ${lit(LOWEST)};
  for (var t = ti; t < nt; t += ${wg}) {
    if (rb.x > ${lit(LOWEST)} && flTile[t] == rb.x) { cand = max(cand, -f32(t)); }
  }
  let tBest = i32(-entMax(vec4<f32>(cand, 0.0, 0.0, 0.0), tid).x);
  var pm = ${lit(LOWEST)};
  if (rb.x > ${lit(LOWEST)} && ti < ${TILE}) {
    let j = tBest * ${TILE} + ti;
    if (j < n && flVisible(b, i, j)) {
      let z = flScore(kb + j);
      if (!entIsInvalid(z)) { pm = z; }
    }
  }
  let m0 = entMax(vec4<f32>(pm, 0.0, 0.0, 0.0), tid).x;
  // c. which tiles can hold a nonzero p
  let thr = m0 - 1.0 / eps;
  let margin = ${lit(5 * gamma(D + 2))} * abs(uniforms.scale) * qn * rb.y
    + ${lit(8 * 2 ** -24)} * (abs(m0) + 1.0 / eps);
  var kept = 0.0;
  var vis = 0.0;
  for (var t = ti; t < nt; t += ${wg}) {
    var f = 0.0;
    if (flTileVisible(bh, nt, t, i)) {
      vis = vis + 1.0;
      if (rb.z > 0.0 || !(flTile[t] + margin <= thr)) { f = 1.0; kept = kept + 1.0; }
    }
    flTile[t] = f;
  }
  let counts = entSum(vec4<f32>(kept, vis, 0.0, 0.0), tid);
  // d. the threshold on the kept tiles, then P·V
${code}
${weightedRows(
  wg,
  DV,
  'values',
  `
      if (flag == ROW_NU) {
        let d = ${cached ? `zs[c0 / ${wg}]` : 'entShift(flZ(b, i, kb, col), m, flag)'};
        let a = entTU(d, r, eps, wForm);
        w = entProb(a.x, a.y, eps, q) * scale;
      }`,
)}
  if (rowRaw < rows) {
    let out = row * uniforms.outShape.y;
    for (var e = ti; e < ${DV}; e += ${wg}) {
      setOutputAtIndex(out + e, select(rowSum[(e - ti) / ${wg}], uniforms.NAN, flag == ROW_INVALID));
    }
    if (tid == 0u) {
      setOutputAtIndex(out + ${DV}, m);
      setOutputAtIndex(out + ${DV + 1}, r);
      setOutputAtIndex(out + ${DV + 2}, scale);
      setOutputAtIndex(out + ${DV + 3}, select(flag, ROW_W, flag == ROW_NU && wForm));
      setOutputAtIndex(out + ${DV + 4}, counts.x);
      setOutputAtIndex(out + ${DV + 5}, counts.y);
      setOutputAtIndex(out + ${DV + 6}, alphas[select(row, 0, uniforms.alphasShape == 1)]);
    }
    for (var t = ti; t < nt; t += ${wg}) { setOutputAtIndex(out + ${DV + 7} + t, flTile[t]); }
  }
}`;
  const inputs = ['queries', 'keys', 'values', 'alphas', 'tiles', ...(masked ? ['keyMask'] : [])];
  return {
    ...base(
      `aesFlashForward_${D}_${DV}_${wg}_${perThread}_${cached}_${nIter}_${masked}`,
      inputs,
      [rows, DV + 7 + nt],
      rows,
      wg,
    ),
    getUserCode,
  };
}

/** The forward's row statistics and tile flags, read from its output `fwd`. */
const FWD_STATS = (DV: number) => `
  let fw = row * uniforms.fwdShape.y;
  let m = fwd[fw + ${DV}];
  let r = fwd[fw + ${DV + 1}];
  let scale = fwd[fw + ${DV + 2}];
  let kind = fwd[fw + ${DV + 3}];
  let wForm = kind == ROW_W;
  let eps = entEps(fwd[fw + ${DV + 6}]);`;

/** Program 3: inputs queries, keys, values, fwd, dy (, keyMask); output [rows, D + 2]. */
export function backwardRowsProgram(rows: number, S: number, D: number, DV: number, masked: boolean): FlashProgram {
  const { wg } = flashLayout(S);
  // g, dP and p of key `col` against this row, when it is on the support (`body` then runs)
  const onSupport = (body: string) => `
    if (fwd[fw + ${DV + 7} + col / ${TILE}] > 0.5 && flVisible(b, i, col)) {
      let a = entTU(entShift(flScore(kb + col), m, kind), r, eps, wForm);
      if (a.y > 0.0) {
        let pr = entProb(a.x, a.y, eps, q) * scale;
        let g = pr / a.y;
        var y = 0.0;
        for (var e = 0; e < ${DV}; e++) { y = y + flG[e] * values[(kb + col) * ${DV} + e]; }
        ${body}
      }
    }`;
  const getUserCode = () => `${HELPERS}${reductions(wg)}
var<workgroup> flQ : array<f32, ${D}>;
var<workgroup> flG : array<f32, ${DV}>;
var<workgroup> flP : array<f32, ${wg}>;
${keyHelpers(D, masked)}
fn main(index : i32) {${ROW_PROLOGUE(wg, false)}${FWD_STATS(DV)}
  let q = 1.0 / eps;
  for (var e = ti; e < ${D}; e += ${wg}) { flQ[e] = queries[row * ${D} + e]; }
  for (var e = ti; e < ${DV}; e += ${wg}) { flG[e] = dy[row * ${DV} + e]; }
  workgroupBarrier();
  let lnScale = entLn(scale);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  for (var col = ti; col < n; col += ${wg}) {${onSupport(`
        let ph = entPhi(a.x, a.y);
        let l = q * entLogU(a.x, a.y) + lnScale;
        let py = pr * y;
        a1 = a1 + vec4<f32>(g, g * y, pr * ph, pr * l);
        a2 = a2 + vec4<f32>(py, py * ph, py * l, 0.0);`)}
  }
  let s1 = entSum(a1, tid);
  let s2 = entSum(a2, tid);
  let c = s1.y / s1.x;
  let ordinary = kind == ROW_NU || kind == ROW_W;
  var da = ((s1.z * s2.x - s2.y) + eps * (s1.w * s2.y - s1.z * s2.z)) / (s1.x * (eps * eps));
  var cc = c;
  if (kind == ROW_MASKED) { da = 0.0; cc = 0.0; }
  if (kind == ROW_INVALID) { da = uniforms.NAN; cc = uniforms.NAN; }
${weightedRows(
  wg,
  D,
  'keys',
  `
      if (ordinary) {${onSupport('w = g * (y - c);')}
      }`,
)}
  if (rowRaw < rows) {
    let out = row * ${D + 2};
    for (var e = ti; e < ${D}; e += ${wg}) {
      setOutputAtIndex(out + e, select(uniforms.scale * rowSum[(e - ti) / ${wg}], uniforms.NAN, kind == ROW_INVALID));
    }
    if (tid == 0u) {
      setOutputAtIndex(out + ${D}, cc);
      setOutputAtIndex(out + ${D + 1}, da);
    }
  }
}`;
  const inputs = ['queries', 'keys', 'values', 'fwd', 'dy', ...(masked ? ['keyMask'] : [])];
  return { ...base(`aesFlashBackRows_${D}_${DV}_${wg}_${masked}`, inputs, [rows, D + 2], rows, wg), getUserCode };
}

/**
 * Program 4: inputs queries, keys, values, fwd, dy, rowGrad (, keyMask); output
 * [B·H·S, D + DV] = (dk, dv).
 */
export function backwardKeysProgram(BH: number, S: number, D: number, DV: number, masked: boolean): FlashProgram {
  const nt = Math.ceil(S / TILE);
  const getUserCode = () => `${HELPERS}
fn main(index : i32) {${TILE_PROLOGUE}
  let T = uniforms.T;
  let j = t * ${TILE} + ti;
  let jj = min(j, n - 1);
  var kr : array<f32, ${D}>;
  var vr : array<f32, ${DV}>;
  var dk : array<f32, ${D}>;
  var dv : array<f32, ${DV}>;
  for (var e = 0; e < ${D}; e++) { kr[e] = keys[(kb + jj) * ${D} + e]; }
  for (var e = 0; e < ${DV}; e++) { vr[e] = values[(kb + jj) * ${DV} + e]; }
  let keyOk = j < n${masked ? ' && f32(keyMask[b * n + jj]) > 0.5' : ''};
  var poison = false;
  for (var i = 0; i < T; i++) {
    let row = bh * T + i;${FWD_STATS(DV)}
    if (keyOk && j <= i + uniforms.offset && fwd[fw + ${DV + 7} + t] > 0.5) {
      var s = 0.0;
      for (var e = 0; e < ${D}; e++) { s = s + queries[row * ${D} + e] * kr[e]; }
      let a = entTU(entShift(uniforms.scale * s, m, kind), r, eps, wForm);
      if (kind == ROW_INVALID) {
        poison = true;
      } else if (a.y > 0.0) {
        let pr = entProb(a.x, a.y, eps, 1.0 / eps) * scale;
        var y = 0.0;
        for (var e = 0; e < ${DV}; e++) { y = y + dy[row * ${DV} + e] * vr[e]; }
        let ds = pr / a.y * (y - rowGrad[row * ${D + 2} + ${D}]);
        for (var e = 0; e < ${D}; e++) { dk[e] = dk[e] + ds * queries[row * ${D} + e]; }
        for (var e = 0; e < ${DV}; e++) { dv[e] = dv[e] + pr * dy[row * ${DV} + e]; }
      }
    }
  }
  if (wRaw < total && j < n) {
    let out = (kb + j) * ${D + DV};
    for (var e = 0; e < ${D}; e++) { setOutputAtIndex(out + e, select(uniforms.scale * dk[e], uniforms.NAN, poison)); }
    for (var e = 0; e < ${DV}; e++) { setOutputAtIndex(out + ${D} + e, select(dv[e], uniforms.NAN, poison)); }
  }
}`;
  const inputs = ['queries', 'keys', 'values', 'fwd', 'dy', 'rowGrad', ...(masked ? ['keyMask'] : [])];
  return { ...base(`aesFlashBackKeys_${D}_${DV}_${masked}`, inputs, [BH * S, D + DV], BH * nt, TILE), getUserCode };
}

export { ROW_INVALID, ROW_MASKED, ROW_NU, ROW_W };
