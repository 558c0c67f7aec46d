/**
 * Exact α-entmax attention that skips key blocks whose probabilities are provably zero.
 *
 * For α > 1 a row's probabilities are p_j = 0 exactly when its score s_j ≤ θ, the row's threshold.
 * Adding keys only adds mass, so θ can only grow: the threshold of the scores against any subset of
 * the keys is a lower bound θ₀ ≤ θ. A key block whose scores are all ≤ θ₀ for every query of a query
 * block therefore has p = 0 there, and so contributes nothing to the output, to Σp, or to any
 * gradient (the entmax Jacobian vanishes off the support): it can be left out of the score product,
 * the map, the product with V and the backward pass, and the result is the dense one.
 *
 * Per head:
 * 1. Bounds: for each key block, the bounding box [lo, hi] and the ball (centre c, radius r) of its
 *    keys. For a query q, max over the block of q·k ≤ min(Σ_d max(q_d lo_d, q_d hi_d), q·c + |q| r);
 *    both are small matrix products ([T, d]·[d, #blocks]).
 * 2. Lower threshold θ₀ per query row: the exact α-entmax threshold of the row's scores against a
 *    subset of the keys (every `probeStride`-th key, plus the key at the query's own position;
 *    causal masks respected): a few solver steps from the left, whose iterates stay below the
 *    subset's threshold.
 * 3. A key block is kept for a query block when some row has bound > θ₀ − δ, δ the float32 rounding
 *    bound of the row's dot products (`roundingScales`: ∝ d·u·Σ_d |q_d| max|k_d|, u = 2⁻²⁴), so a
 *    skip is never wrong however large and cancelling the products are. Kept blocks are gathered,
 *    and the query block runs dense α-entmax attention on them alone.
 * When a head keeps more than `denseAbove` of its visible blocks (high-entropy heads: the bounds
 * are loose and θ₀ is low), the gathering would cost more than it saves: that head runs the dense
 * path instead. Both paths give the same numbers up to float32 summation order.
 *
 * On trained heads the bounds are loose (docs/results.md §1): blocks an oracle knows are empty are
 * kept. `plan: 'scores'` is that oracle, exact: every score and the map are computed, and only the
 * blocks holding a nonzero go on to the products with V and to the backward pass.
 *
 * The plan (which blocks to keep) is read from the device, so this needs a backend that reads
 * synchronously (cpu, wasm, tensorflow); `attention()` is the path for webgpu.
 */
import * as tf from '@tensorflow/tfjs';
import { readsAreCheap } from './capabilities.js';
import { causalMask } from './scores.js';
import { checkAlphaNumber } from './entmax_bisect.js';
import { matMul2d, unstack0 } from './matmul.js';
import { entmax } from './normaliser.js';
import { entmaxRows, entmaxRowsAlphaVjp, entmaxRowsVjp, entmaxThresholdBounds } from './js_rows.js';

export interface BlockSparseArgs {
  /** α > 1 for every head, or one per head (2 sparsemax, 1.5 entmax15, any other by Halley). Default 1.5. */
  alpha?: number | number[];
  /** Query i sees keys j ≤ i + queryOffset. Default false. */
  causal?: boolean;
  /** Position of the first query among the keys (causal). Default S − T. */
  queryOffset?: number;
  /** Score scale. Default 1/√d. */
  scale?: number;
  /** Keys per block (the unit that is skipped). Default 64. */
  blockSize?: number;
  /** Queries per block (they share one plan). Default 64. */
  queryBlockSize?: number;
  /** Every `probeStride`-th key forms the subset that gives θ₀. Default 16. */
  probeStride?: number;
  /** A head that keeps more than this fraction of its visible key blocks runs the dense path. Default 0.5. */
  denseAbove?: number;
  /**
   * 'bound' (default): skip the blocks the bounds prove empty, scores included. 'scores': compute
   * every score and the exact map, then carry on only the key blocks holding a nonzero (the
   * oracle's mask): the products with V and the backward pass skip every empty block, found or not
   * by the bounds, while the scores cost what the dense path pays (`runMasked`; no dense fallback).
   */
  plan?: 'bound' | 'scores';
}

type Defaulted = 'alpha' | 'causal' | 'blockSize' | 'queryBlockSize' | 'probeStride' | 'denseAbove';
export const BLOCK_SPARSE_DEFAULTS: Readonly<Required<Pick<BlockSparseArgs, Defaulted>>> = Object.freeze({
  alpha: 1.5, causal: false, blockSize: 64, queryBlockSize: 64, probeStride: 16, denseAbove: 0.5,
});

/** Per (batch, head), index b·H + h. */
export interface BlockSparseStats {
  /** Share of the visible (query, key) score entries never computed. 0 on dense heads. */
  skipRate: number[];
  /** Share of the visible (query block, key block) pairs that the plan kept (before the dense fallback). */
  keptBlocks: number[];
  /** 'sparse', 'dense' (fallback) or 'masked' (plan 'scores'). */
  mode: Array<'sparse' | 'dense' | 'masked'>;
}

export interface BlockSparseResult {
  /** `[B, H, T, dv]`, equal to `attention(q, k, v, {normaliser: {alpha}})`. */
  output: tf.Tensor;
  stats: BlockSparseStats;
}

/**
 * Block-skipping exact α-entmax attention (see the file comment). q `[B, H, T, d]`, k `[B, H, S, d]`,
 * v `[B, H, S, dv]`. Differentiable in q, k and v.
 * @example
 * const {output, stats} = blockSparseAttention(q, k, v, {alpha: 2, causal: true});
 * console.log(stats.skipRate);   // e.g. [0.93, 0.91, ...] on peaked heads, 0 on dense ones
 */
export function blockSparseAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  args: BlockSparseArgs = {},
): BlockSparseResult {
  const cfg = { ...BLOCK_SPARSE_DEFAULTS, ...args };
  const [B, H, T, d, S, dv] = checkInputs(q, k, v, cfg);
  if (!readsAreCheap())
    throw new Error(
      `blockSparseAttention: the plan is read from the device, which the ${tf.getBackend()} backend cannot do ` +
      `synchronously; use attention() there`,
    );
  const alphas = Array.isArray(cfg.alpha) ? cfg.alpha : Array(H).fill(cfg.alpha);
  if (alphas.length !== H) throw new RangeError(`blockSparseAttention: ${alphas.length} alphas for ${H} heads`);
  alphas.forEach((a) => {
    checkAlphaNumber(a, 'blockSparseAttention');
    if (a === 1) throw new RangeError('blockSparseAttention: α = 1 (softmax) has no zeros to skip; use attention()');
  });
  const offset = cfg.causal ? (cfg.queryOffset ?? S - T) : null;
  const scale = cfg.scale ?? 1 / Math.sqrt(d);
  const stats: BlockSparseStats = { skipRate: [], keptBlocks: [], mode: [] };
  const output = tf.tidy(() => {
    const split = (x: tf.Tensor, n: number, e: number) => unstack0(tf.reshape(x, [B * H, n, e])) as tf.Tensor2D[];
    const [qs, ks, vs] = [split(q, T, d), split(k, S, d), split(v, S, dv)];
    let mask: tf.Tensor | null | undefined; // the dense path's, built once
    const denseMask = () => (mask === undefined ? (mask = causalMask(T, S, offset)) : mask);
    const outs = qs.map((qh, i) => {
      const r = head(tf.mul(qh, scale) as tf.Tensor2D, ks[i], vs[i], alphas[i % H], offset, cfg, denseMask);
      stats.skipRate.push(r.skipRate);
      stats.keptBlocks.push(r.keptBlocks);
      stats.mode.push(r.mode);
      return r.output;
    });
    return tf.reshape(tf.stack(outs), [B, H, T, dv]);
  });
  return { output, stats };
}

/** Block-skipping options with their defaults filled in. */
export type Cfg = Required<Pick<BlockSparseArgs, Defaulted>> & BlockSparseArgs;

/** One head: plan, then the sparse or the dense computation. */
function head(
  qs: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  alpha: number,
  offset: number | null,
  cfg: Cfg,
  denseMask: () => tf.Tensor | null,
) {
  if (cfg.plan === 'scores')
    return { ...runMasked(qs, k, v, alpha, offset, cfg), skipRate: 0, mode: 'masked' as const };
  const plan = planHead(qs, k, alpha, offset, cfg);
  if (plan.keptShare > cfg.denseAbove) {
    return {
      output: denseHead(qs, k, v, alpha, denseMask()),
      skipRate: 0,
      keptBlocks: plan.keptShare,
      mode: 'dense' as const,
    };
  }
  return { ...runPlanned(qs, k, v, plan, alpha, offset, cfg), mode: 'sparse' as const };
}

/** Options of the block path that `attention()` takes for its heads with α > 1 (`AttentionArgs.blockSkip`). */
export type BlockSkipArgs = Pick<BlockSparseArgs, 'blockSize' | 'queryBlockSize' | 'probeStride' | 'denseAbove'> & {
  /** Only calls with at least this many keys are planned (below, the plan costs more than it saves). Default 1024. */
  minKeys?: number;
  /**
   * Opt-in (default 0: off): when gradients are recorded, a head the bounds cannot thin (its plan,
   * or the plan's lower bound, keeps more than `denseAbove`) runs the exact mask (`runMasked`)
   * instead of the dense path, unless the share of blocks one score row per query block needs
   * already exceeds `maskAbove`. Off by default because it did not pay reliably: on trained heads
   * (d = 16, n = 4096) it took 0.84–1.19× dense α-entmax's forward+backward time, on synthetic heads
   * (d = 64, n = 2048) up to 2.5× (docs/results.md §1e).
   */
  maskAbove?: number;
};

/** One head's plan (no gradient flows through it): kept key blocks per query block, row floors, kept share. */
export type HeadPlan = ReturnType<typeof planBlocks> & { host: { qd: Float32Array; kd: Float32Array } };

/** Plans one head: q already scaled `[T, d]`, k `[S, d]`, α > 1; reads q and k once. */
export function planHead(qs: tf.Tensor2D, k: tf.Tensor2D, alpha: number, offset: number | null, cfg: Cfg): HeadPlan {
  const host = { qd: qs.dataSync() as Float32Array, kd: k.dataSync() as Float32Array };
  return { ...planBlocks(qs, host, k.shape[0], alpha, offset, cfg), host };
}

/**
 * The sparse computation of a planned head, differentiable in q, k, v and, when α is a scalar tensor
 * (learned α, AES with schedule gradients), in α. Returns the output `[T, dv]` and the skip rate.
 */
export function runPlanned(
  qs: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  plan: HeadPlan,
  alpha: number | tf.Tensor,
  offset: number | null,
  cfg: Cfg,
): { output: tf.Tensor2D; skipRate: number; keptBlocks: number } {
  const { output, computed } = sparseHead(qs, k, v, plan.host, alpha, plan.keep, plan.floor, offset, cfg);
  return { output, skipRate: 1 - computed / countVisible(qs.shape[0], k.shape[0], offset), keptBlocks: plan.keptShare };
}

/**
 * One head with every score computed but only the key blocks its map uses carried on: the forward
 * pass forms each query block's scores against all visible keys and its exact map, then keeps the
 * key blocks holding a nonzero (the mask an oracle would plan); the products with V and the whole
 * backward pass run on those blocks alone. Needs no bound, so it skips what the bounds cannot
 * prove empty. Returns the output and the kept share of visible block pairs. Differentiable in q, k,
 * v and (a scalar tensor) α.
 */
export function runMasked(
  qs: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  alpha: number | tf.Tensor,
  offset: number | null,
  cfg: Cfg,
): { output: tf.Tensor2D; keptBlocks: number } {
  const { blockSize: bk, queryBlockSize: bq } = cfg;
  const [T, S] = [qs.shape[0], k.shape[0]];
  const keep = Array.from({ length: Math.ceil(T / bq) }, (_, a) =>
    Array.from({ length: Math.max(1, visibleBlocks(a, bq, bk, T, S, offset)) }, (_, b) => b));
  const host = { qd: qs.dataSync() as Float32Array, kd: k.dataSync() as Float32Array };
  const floor = new Float64Array(T).fill(-Infinity);
  const { output, kept } = sparseHead(qs, k, v, host, alpha, keep, floor, offset, cfg, true);
  return { output, keptBlocks: kept / Math.max(keep.reduce((s, l) => s + l.length, 0), 1) };
}

/**
 * The sparse computation of one head as a single differentiable op. wasm's data-movement kernels
 * (slice, split, gather, transpose) run at 20–40 ns per element, slower than the products they
 * feed, so the gathers and scatters are plain JavaScript copies of the (synchronously readable)
 * data, and only the products and the map run as tfjs kernels: per query block a,
 *   forward   S = Q_a K_aᵀ (masked), P = entmax_α(S), O_a = P V_a;
 *   backward  dP = dO_a V_aᵀ, dS = g ⊙ dP − g Σ(g ⊙ dP)/Σg (g = p^{2−α}, the entmax Jacobian),
 *             dQ_a = dS K_a, dK_a = dSᵀ Q_a, dV_a = Pᵀ dO_a, scattered back (added) into dK, dV.
 * Every product is a plain 2-D `tf.matMul` (no transpose flags, see matmul.ts); the transposed operands
 * are laid out by the copies.
 */
function sparseHead(
  qs: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  host: { qd: Float32Array; kd: Float32Array },
  alphaIn: number | tf.Tensor,
  keep: number[][],
  floor: Float64Array,
  offset: number | null,
  cfg: Cfg,
  prune = false,
): { output: tf.Tensor2D; computed: number; kept: number } {
  const { blockSize: bk, queryBlockSize: bq } = cfg;
  const alphaT = typeof alphaIn === 'number' ? null : alphaIn;
  const alpha = alphaT ? alphaT.dataSync()[0] : (alphaIn as number);
  const [T, d] = qs.shape;
  const [S, dv] = v.shape;
  let computed = 0, kept = 0;
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const vIn = args[2] as tf.Tensor2D, save = args[args.length - 1] as tf.GradSaveFunc;
    const { qd, kd } = host; // the values of qs and k
    const vd = vIn.dataSync() as Float32Array;
    const out = new Float32Array(T * dv);
    // Per block only the key list and cut-offs outlive the forward pass (and P, saved as a tensor):
    // the backward pass copies what it needs again, in the layouts it needs, which keeps the
    // garbage collector's old generation small.
    const blocks = keep.map((list, a) => {
      const rows = Math.min(bq, T - a * bq);
      const keys: Int32Array = new Int32Array(list.length * bk); // ascending
      list.forEach((b, i) => {
        for (let c = 0; c < bk; c++) keys[i * bk + c] = b * bk + c;
      });
      const cut = visibleCuts(a, keys, bq, T, S, offset);
      computed += cut.visible;
      return { a, rows, keys, cuts: cut.cuts };
    });
    const pTensors = blocks.map((bl) => {
      const n = bl.keys.length;
      const sc = read(() =>
        tf.matMul(
          tf.tensor2d(rowsOf(qd, d, bl.a * bq, bq, T), [bq, d]),
          tf.tensor2d(columnsOf(kd, d, bl.keys, S), [d, n]),
        ),
      );
      for (let r = 0; r < bq; r++) sc.fill(-Infinity, r * n + bl.cuts[r], (r + 1) * n); // causal / padding
      const rowFloor = Float64Array.from({ length: bq }, (_, r) => (r < bl.rows ? floor[bl.a * bq + r] : -Infinity));
      let pd: Float32Array = entmaxRows(sc, bq, n, alpha, sc, rowFloor);
      if (prune) [pd, bl.keys] = pruned(pd, bl.keys, bl.rows, bq, bk);
      kept += bl.keys.length / bk;
      const m = bl.keys.length;
      const p = tf.tensor2d(pd, [bq, m]);
      const o = read(() => tf.matMul(p, tf.tensor2d(pick(vd, dv, bl.keys, S), [m, dv])));
      out.set(o.subarray(0, bl.rows * dv), bl.a * bq * dv);
      return p;
    });
    save(pTensors);
    tf.dispose(pTensors); // save() kept its own copies
    const gradFunc = (dy: tf.Tensor, ps: tf.Tensor[]) => {
      const dyd = dy.dataSync() as Float32Array;
      const [dq, dk, dvv] = [new Float32Array(T * d), new Float32Array(S * d), new Float32Array(S * dv)];
      let dAlpha = 0;
      blocks.forEach((bl, i) =>
        tf.tidy(() => {
          const p = ps[i];
          const n = bl.keys.length;
          const doa = rowsOf(dyd, dv, bl.a * bq, bq, T);
          const dP = tf
            .matMul(tf.tensor2d(doa, [bq, dv]), tf.tensor2d(columnsOf(vd, dv, bl.keys, S), [dv, n]))
            .dataSync() as Float32Array;
          const pd = p.dataSync() as Float32Array;
          if (alphaT) dAlpha += entmaxRowsAlphaVjp(pd, dP, bq, n, alpha);       // before dP is overwritten
          const ds = tf.tensor2d(entmaxRowsVjp(pd, dP, bq, n, alpha, dP), [bq, n]);
          const dqa = tf.matMul(ds, tf.tensor2d(pick(kd, d, bl.keys, S), [n, d])).dataSync();
          dq.set(dqa.subarray(0, bl.rows * d), bl.a * bq * d);
          const qaT = transposeOf(rowsOf(qd, d, bl.a * bq, bq, T), bq, d);
          const dkaT = tf.matMul(tf.tensor2d(qaT, [d, bq]), ds).dataSync(); // [d, n]
          const dvaT = tf.matMul(tf.tensor2d(transposeOf(doa, bq, dv), [dv, bq]), p).dataSync(); // [dv, n]
          for (let c = 0; c < n; c++) {
            const j = bl.keys[c];
            if (j >= S) break; // padding keys come last
            for (let e = 0; e < d; e++) dk[j * d + e] += dkaT[e * n + c];
            for (let e = 0; e < dv; e++) dvv[j * dv + e] += dvaT[e * n + c];
          }
        }),
      );
      const grads = [tf.tensor2d(dq, [T, d]), tf.tensor2d(dk, [S, d]), tf.tensor2d(dvv, [S, dv])];
      return alphaT ? [...grads, tf.reshape(tf.scalar(dAlpha), alphaT.shape)] : grads;
    };
    return { value: tf.tensor2d(out, [T, dv]), gradFunc };
  });
  const output = (alphaT ? f(qs, k, v, alphaT) : f(qs, k, v)) as tf.Tensor2D;
  return { output, computed, kept };
}

/**
 * The key blocks of one query block's map `p` `[bq, keys.length]` that hold a nonzero in one of its
 * first `rows` rows (the others are padding), and p on their columns alone (padding rows zeroed).
 */
function pruned(p: Float32Array, keys: Int32Array, rows: number, bq: number, bk: number): [Float32Array, Int32Array] {
  const n = keys.length, live: number[] = [];
  for (let c0 = 0; c0 < n; c0 += bk) {
    let any = false;
    for (let r = 0; r < rows && !any; r++) {
      for (let c = c0; c < c0 + bk; c++) if (p[r * n + c] !== 0) { any = true; break; }
    }
    if (any) live.push(c0);
  }
  if (live.length === 0) live.push(0); // a row of no visible key: all zeros anyway
  const m = live.length * bk;
  const q = new Float32Array(bq * m), out = new Int32Array(m);
  live.forEach((c0, i) => {
    out.set(keys.subarray(c0, c0 + bk), i * bk);
    for (let r = 0; r < rows; r++) q.set(p.subarray(r * n + c0, r * n + c0 + bk), r * m + i * bk);
  });
  return [q, out];
}

/**
 * The values of a tensor computed in a tidy scope. (tf.tidy walks whatever its function returns,
 * a typed array element by element: returning `dataSync()` from it costs more than the kernels.)
 */
function read(f: () => tf.Tensor): Float32Array {
  let out: Float32Array = new Float32Array(0);
  tf.tidy(() => { out = f().dataSync() as Float32Array; });
  return out;
}

/** Rows r0 … r0+rows−1 of a row-major [*, e] array (zero rows past `limit`). */
function rowsOf(x: Float32Array, e: number, r0: number, rows: number, limit: number): Float32Array {
  const o = new Float32Array(rows * e);
  o.set(x.subarray(r0 * e, Math.min(r0 + rows, limit) * e));
  return o;
}

/** Rows `keys` of a row-major [S, e] array (zeros for keys ≥ S). */
function pick(x: Float32Array, e: number, keys: Int32Array, S: number): Float32Array {
  const o = new Float32Array(keys.length * e);
  keys.forEach((j, c) => { if (j < S) o.set(x.subarray(j * e, (j + 1) * e), c * e); });
  return o;
}

/** Rows `keys` of a row-major [S, e] array, transposed: [e, keys.length]. */
function columnsOf(x: Float32Array, e: number, keys: Int32Array, S: number): Float32Array {
  const n = keys.length;
  const o = new Float32Array(e * n);
  keys.forEach((j, c) => { if (j < S) for (let f = 0; f < e; f++) o[f * n + c] = x[j * e + f]; });
  return o;
}

/** Transpose of a row-major [r, c] array. */
function transposeOf(x: Float32Array, r: number, c: number): Float32Array {
  const o = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) o[j * r + i] = x[i * c + j];
  return o;
}

/** The dense computation (as `attention()` does it per head). */
function denseHead(
  qs: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  alpha: number,
  mask: tf.Tensor | null,
): tf.Tensor2D {
  let s: tf.Tensor = matMul2d(qs, tf.transpose(k));
  if (mask) s = tf.add(s, mask);
  return matMul2d(entmax(s, alpha) as tf.Tensor2D, v);
}

/**
 * Which key blocks each query block keeps (no gradient flows through this). Returns the kept block
 * indices per query block and the kept share of visible block pairs.
 */
function planBlocks(
  qs: tf.Tensor2D,
  { qd, kd }: { qd: Float32Array; kd: Float32Array },
  S: number,
  alpha: number,
  offset: number | null,
  cfg: Cfg,
): { keep: number[][]; keptShare: number; floor: Float64Array } {
  const { blockSize: bk, queryBlockSize: bq, probeStride } = cfg;
  const [T, d] = qs.shape;
  const nQ = Math.ceil(T / bq),
    nK = Math.ceil(S / bk);
  const { lo, hi, centre, radius } = blockBounds(kd, S, d, bk);
  const probePos = Array.from({ length: Math.ceil(S / probeStride) }, (_, r) => r * probeStride);
  const probeKeys = new Float32Array(probePos.length * d);
  probePos.forEach((j, r) => probeKeys.set(kd.subarray(j * d, (j + 1) * d), r * d));
  let ub: Float32Array = new Float32Array(0),
    ps: Float32Array = new Float32Array(0);
  tf.tidy(() => {
    // (returns nothing: see `read`)
    const col = (a: Float32Array, n: number) => tf.tensor2d(transposeOf(a, n, d), [d, n]);
    const box = tf.sub(tf.matMul(tf.relu(qs), col(hi, nK)), tf.matMul(tf.relu(tf.neg(qs)), col(lo, nK)));
    const ball = tf.add(
      tf.matMul(qs, col(centre, nK)),
      tf.mul(tf.norm(qs, 'euclidean', 1, true), tf.tensor2d(radius, [1, nK])),
    );
    ps = tf.matMul(qs, col(probeKeys, probePos.length)).dataSync() as Float32Array; // [T, #probe]
    ub = tf.minimum(box, ball).dataSync() as Float32Array;
  });
  // The probe subset of row i: the strided keys plus its own position's key j = i + offset (always
  // visible under a causal mask; a new topic's first queries may see no strided key of it). A set:
  // a key that is already a strided one is not added twice.
  const P = probePos.length,
    R = P + 1;
  const shift = offset ?? S - T;
  const mk = offset !== null ? maskRows(0, T, T, S, offset, probePos) : null;
  const probe = new Float32Array(T * R);
  for (let i = 0; i < T; i++) {
    for (let r = 0; r < P; r++) probe[i * R + r] = ps[i * P + r] + (mk ? mk[i * P + r] : 0);
    const j = i + shift;
    let own = -Infinity;
    if (j >= 0 && j < S && j % probeStride !== 0) {
      own = 0;
      for (let e = 0; e < d; e++) own += qd[i * d + e] * kd[j * d + e];
    }
    probe[i * R + P] = own;
  }
  // θ₀ per row: a lower bound of the probe subset's threshold (4 solver steps from the left).
  const theta = entmaxThresholdBounds(probe, T, R, alpha);
  const { rowError, qNorm } = roundingScales(qd, kd, T, S, d);
  const gamma = gammaF32(d + 2);
  // δ of row i against block b (see `roundingScales`); the floor's δ has no ball term.
  const margin = (i: number, b: number) =>
    5 * gamma * (rowError[i] + (b < 0 ? 0 : qNorm[i] * radius[b])) + 1e-12 * (1 + Math.abs(theta[i]));
  const keep: number[][] = [];
  let kept = 0,
    visible = 0;
  for (let a = 0; a < nQ; a++) {
    const rows = Math.min(bq, T - a * bq);
    const list: number[] = [], seen = visibleBlocks(a, bq, bk, T, S, offset);
    for (let b = 0; b < seen; b++) {
      visible++;
      for (let r = 0; r < rows; r++) {
        const i = a * bq + r,
          t = theta[i];
        if (!(ub[i * nK + b] <= t - margin(i, b))) {
          list.push(b);
          break;
        } // NaN keeps
      }
    }
    if (list.length === 0) list.push(0); // rows of no visible key: masked anyway
    kept += list.length;
    keep.push(list);
  }
  // Per row, a score at or below which p = 0 (θ₀ less the rounding margin): the row maps start there.
  const floor = Float64Array.from(theta, (t, i) => (Number.isFinite(t) ? t - margin(i, -1) : -Infinity));
  return { keep, keptShare: kept / Math.max(visible, 1), floor };
}

/**
 * A lower bound of the kept share `planBlocks` returns, from one score row per query block: its last
 * row i, which sees every key block the query block sees. The plan keeps (at least) each block
 * holding a nonzero of some row's map, so the blocks holding a nonzero of row i's map, summed over
 * the query blocks and divided by their visible blocks, cannot exceed the plan's kept share.
 * `scores` `[nQ, S]`: those rows' scores (scaled as the map sees them, unmasked); `last[a]` = i.
 */
export function keptShareBound(
  scores: Float32Array,
  last: readonly number[],
  S: number,
  alpha: number,
  offset: number | null,
  blockSize: number,
): number {
  const nQ = last.length;
  const lastKey = last.map((i) => (offset === null ? S - 1 : Math.min(S - 1, i + offset)));
  for (let a = 0; a < nQ; a++) scores.fill(-Infinity, a * S + Math.max(lastKey[a] + 1, 0), (a + 1) * S);
  const theta = entmaxThresholdBounds(scores, nQ, S, alpha, 100);        // converged: θ itself
  let need = 0, visible = 0;
  for (let a = 0; a < nQ; a++) {
    if (lastKey[a] < 0) continue;
    const blocks = Math.floor(lastKey[a] / blockSize) + 1;
    visible += blocks;
    for (let b = 0; b < blocks; b++) {
      for (let j = b * blockSize; j < Math.min((b + 1) * blockSize, S); j++) {
        if (scores[a * S + j] > theta[a]) { need++; break; }
      }
    }
  }
  return need / Math.max(visible, 1);
}

/** γ_n = n·u/(1 − n·u), u = 2⁻²⁴: a float32 sum of n products is off by at most γ_n Σ|x_i y_i|. */
export function gammaF32(n: number): number {
  const u = 2 ** -24;
  return (n * u) / (1 - n * u);
}

/**
 * What bounds the rounding of row i's float32 dot products with any key: W_i = Σ_d |q_id| max_j |k_jd|
 * (every |q_i·k_j| term sum Σ_d |q_id k_jd| is ≤ W_i), and ‖q_i‖ for the ball bound's ‖q‖·r term.
 * The skip test ub ≤ θ₀ − δ is safe with δ = 5 γ_{d+2} (W_i + ‖q_i‖ r_b) (docs/math.md): the
 * computed bound is off by at most (γ_{d+2} + u)(W_i + ‖q_i‖ r_b), the probe scores and so θ₀ (a
 * threshold moves by at most the largest change of its scores) by γ_d W_i, and the scores the dense
 * path computes by γ_d W_i, twice (the skipped score and the row's other scores).
 */
function roundingScales(qd: Float32Array, kd: Float32Array, T: number, S: number, d: number) {
  const kMax = new Float64Array(d);
  for (let j = 0; j < S; j++) for (let e = 0; e < d; e++) kMax[e] = Math.max(kMax[e], Math.abs(kd[j * d + e]));
  const rowError = new Float64Array(T), qNorm = new Float64Array(T);
  for (let i = 0; i < T; i++) {
    let w = 0, n2 = 0;
    for (let e = 0; e < d; e++) {
      const x = qd[i * d + e];
      w += Math.abs(x) * kMax[e];
      n2 += x * x;
    }
    rowError[i] = w;
    qNorm[i] = Math.sqrt(n2);
  }
  return { rowError, qNorm };
}

/** Bounding box and ball of each key block (the last block's missing rows ignored). */
function blockBounds(kd: Float32Array, S: number, d: number, bk: number) {
  const nK = Math.ceil(S / bk);
  const lo = new Float32Array(nK * d).fill(Infinity), hi = new Float32Array(nK * d).fill(-Infinity);
  const centre = new Float32Array(nK * d), radius = new Float32Array(nK);
  for (let b = 0; b < nK; b++) {
    const [j0, j1] = [b * bk, Math.min(S, (b + 1) * bk)];
    const c = new Float64Array(d);
    for (let j = j0; j < j1; j++) {
      for (let e = 0; e < d; e++) {
        const x = kd[j * d + e];
        c[e] += x;
        if (x < lo[b * d + e]) lo[b * d + e] = x;
        if (x > hi[b * d + e]) hi[b * d + e] = x;
      }
    }
    for (let e = 0; e < d; e++) centre[b * d + e] = c[e] / (j1 - j0);
    let r2 = 0;
    for (let j = j0; j < j1; j++) {
      let s = 0;
      for (let e = 0; e < d; e++) s += (kd[j * d + e] - centre[b * d + e]) ** 2;
      r2 = Math.max(r2, s);
    }
    radius[b] = Math.sqrt(r2) * (1 + 1e-6);
  }
  return { lo, hi, centre, radius };
}

/**
 * Additive mask rows for queries i0 … i0+rows−1 against the keys `cols`: −∞ for keys past S
 * (padding) or, with a causal offset, after i + offset (queries past T are padding: no causal mask).
 */
function maskRows(
  i0: number,
  rows: number,
  T: number,
  S: number,
  offset: number | null,
  cols: ArrayLike<number>,
): Float32Array {
  const n = cols.length;
  const m = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) {
    const i = i0 + r;
    const last = offset !== null && i < T ? i + offset : Infinity; // last visible key
    for (let c = 0; c < n; c++) if (cols[c] >= S || cols[c] > last) m[r * n + c] = -Infinity;
  }
  return m;
}

/**
 * Per row of query block a, how many of its (ascending) kept keys it sees: keys past S (padding)
 * and, with a causal offset, after i + offset are cut; queries past T (padding) see all real keys.
 * Also the number of real visible (query, key) pairs.
 */
function visibleCuts(a: number, keys: Int32Array, bq: number, T: number, S: number, offset: number | null) {
  const cuts = new Int32Array(bq);
  let visible = 0;
  for (let r = 0; r < bq; r++) {
    const i = a * bq + r;
    const last = Math.min(S - 1, offset !== null && i < T ? i + offset : Infinity);
    let lo = 0, hi = keys.length;                                       // first key > last
    while (lo < hi) { const mid = (lo + hi) >> 1; if (keys[mid] <= last) lo = mid + 1; else hi = mid; }
    cuts[r] = lo;
    if (i < T) visible += lo;
  }
  return { cuts, visible };
}

/**
 * The number of key blocks visible to query block a, the first ones: those whose first key is not
 * after the block's last query (causal), or all of them.
 */
function visibleBlocks(a: number, bq: number, bk: number, T: number, S: number, offset: number | null): number {
  const last = offset === null ? S - 1 : Math.min(S - 1, Math.min(T, (a + 1) * bq) - 1 + offset);
  return Math.max(0, Math.floor(last / bk) + 1);
}

/** (query, key) pairs that the masks leave visible. */
function countVisible(T: number, S: number, offset: number | null): number {
  if (offset === null) return T * S;
  let n = 0;
  for (let i = 0; i < T; i++) n += Math.max(0, Math.min(S, i + offset + 1));
  return Math.max(n, 1);
}

function checkInputs(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, cfg: Cfg): number[] {
  const shapes = `q [${q.shape}], k [${k.shape}], v [${v.shape}]`;
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4)
    throw new RangeError(
      `blockSparseAttention: expected q [B, H, T, d], k [B, H, S, d], v [B, H, S, dv]; got ${shapes}`,
    );
  for (const t of [q, k, v])
    if (t.dtype !== 'float32')
      throw new TypeError(`blockSparseAttention: q, k, v must be float32; got ${q.dtype}, ${k.dtype}, ${v.dtype}`);
  const [B, H, T, d] = q.shape;
  const [S, dv] = [k.shape[2] as number, v.shape[3] as number];
  if (
    k.shape[0] !== B ||
    v.shape[0] !== B ||
    k.shape[1] !== H ||
    v.shape[1] !== H ||
    k.shape[3] !== d ||
    v.shape[2] !== S
  ) {
    throw new RangeError(`blockSparseAttention: shapes do not match: ${shapes}`);
  }
  for (const key of ['blockSize', 'queryBlockSize', 'probeStride'] as const) {
    const x = cfg[key];
    if (!Number.isInteger(x) || x < 1)
      throw new RangeError(`blockSparseAttention: ${key} must be a positive integer, got ${x}`);
  }
  if (!(cfg.denseAbove >= 0 && cfg.denseAbove <= 1))
    throw new RangeError(`blockSparseAttention: denseAbove must be in [0, 1], got ${cfg.denseAbove}`);
  return [B, H, T, d, S, dv];
}
