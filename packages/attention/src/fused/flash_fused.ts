/**
 * Flash-style α-entmax attention on webgpu: `flashEntmaxAttention(q, k, v, {alpha, …})` computes
 * entmax_α(s·q·kᵀ + masks)·v without writing the [T, S] scores or weights to global memory, and
 * skips key tiles whose scores are provably below every query's threshold (flash_wgsl.ts says how;
 * the result is the dense one). Two dispatches forward (tile bounds, then one workgroup per query
 * row), two backward (per query row: dq, the row's Jacobian sum and dα; per key tile: dk and dv).
 * Gradients flow to q, k, v and a tensor α. The kernels are registered for webgpu only.
 *
 * Kernel contract (rows = B·H·T; uniforms as attrs {scale, T, S, H, offset}, plus D, DV):
 *   AesFlashTiles     {keys [B·H·S, D], keyMask? [B, S]} → [B·H·NT, D + 3]
 *   AesFlashForward   {queries [rows, D], keys, values [B·H·S, DV], alphas [rows] | [1], tiles,
 *                     keyMask?}, attrs.nIter → fwd [rows, DV + 7 + NT]
 *   AesFlashRows      {queries, keys, values, fwd, dy [rows, DV], keyMask?} → [rows, D + 2]
 *   AesFlashKeys      {…, rowGrad} → [B·H·S, D + DV]
 */
import * as tf from '@tensorflow/tfjs';
import { checkAlphaNumber, checkAlphaTensor, MIN_ALPHA_EXCESS, reduceTo } from '../entmax_bisect.js';
import { causalMask, checkQkv } from '../scores.js';
import { softmax } from '../softmax.js';
import { FUSED_NITER } from './entmax_mirror.js';
import {
  backwardKeysProgram,
  backwardRowsProgram,
  flashUniforms,
  forwardProgram,
  MAX_TILES,
  MAX_WIDTH,
  TILE,
  tilesProgram,
  type FlashProgram,
} from './flash_wgsl.js';

export const FLASH_KERNELS = ['AesFlashTiles', 'AesFlashForward', 'AesFlashRows', 'AesFlashKeys'] as const;

export interface FlashAttentionArgs {
  /** α ≥ 1: a number, or a float32 tensor broadcasting to [B, H, T, 1] (per head: [H, 1, 1]). Default 1.5. */
  alpha?: number | tf.Tensor;
  /** Query i sees keys j ≤ i + queryOffset. Default false. */
  causal?: boolean;
  /** Position of the first query among the keys (causal). Default S − T. */
  queryOffset?: number;
  /** Padding mask [B, S]: 1 (or true) keeps a key, 0 masks it. */
  keyMask?: tf.Tensor;
  /** Score scale. Default 1/√d. */
  scale?: number;
  /** Solver steps (as entmaxFused). Default FUSED_NITER. */
  nIter?: number;
}

interface WebGPUBackendLike {
  runWebGPUProgram(
    program: FlashProgram,
    inputs: tf.TensorInfo[],
    dtype: 'float32',
    uniforms: ReturnType<typeof flashUniforms>,
  ): tf.TensorInfo;
}
type Attrs = { scale: number; T: number; S: number; H: number; offset: number; D: number; DV: number; nIter: number };
type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: unknown; attrs: Attrs };

function runner(backend: unknown, name: string) {
  const b = backend as Partial<WebGPUBackendLike>;
  if (typeof b.runWebGPUProgram !== 'function')
    throw new Error(`${name}: the 'webgpu' backend here is not tfjs-backend-webgpu`);
  return (p: FlashProgram, inputs: Array<tf.TensorInfo | undefined>, attrs: Attrs) =>
    b.runWebGPUProgram!(
      p,
      inputs.filter((t): t is tf.TensorInfo => !!t),
      'float32',
      flashUniforms(attrs),
    );
}

const KERNELS: Record<(typeof FLASH_KERNELS)[number], (a: KernelArgs) => tf.TensorInfo> = {
  AesFlashTiles: ({ inputs: x, backend, attrs: a }) =>
    runner(backend, 'AesFlashTiles')(
      tilesProgram(x.keys.shape[0] / a.S, a.S, a.D, !!x.keyMask),
      [x.keys, x.keyMask],
      a,
    ),
  AesFlashForward: ({ inputs: x, backend, attrs: a }) =>
    runner(backend, 'AesFlashForward')(
      forwardProgram(x.queries.shape[0], a.S, a.D, a.DV, a.nIter, !!x.keyMask),
      [x.queries, x.keys, x.values, x.alphas, x.tiles, x.keyMask],
      a,
    ),
  AesFlashRows: ({ inputs: x, backend, attrs: a }) =>
    runner(backend, 'AesFlashRows')(
      backwardRowsProgram(x.queries.shape[0], a.S, a.D, a.DV, !!x.keyMask),
      [x.queries, x.keys, x.values, x.fwd, x.dy, x.keyMask],
      a,
    ),
  AesFlashKeys: ({ inputs: x, backend, attrs: a }) =>
    runner(backend, 'AesFlashKeys')(
      backwardKeysProgram(x.keys.shape[0] / a.S, a.S, a.D, a.DV, !!x.keyMask),
      [x.queries, x.keys, x.values, x.fwd, x.dy, x.rowGrad, x.keyMask],
      a,
    ),
};

/** Registers the kernels for webgpu (at import; again after `unregisterFlashAttention`). */
export function registerFlashAttention(): void {
  for (const kernelName of FLASH_KERNELS) {
    if (!tf.getKernel(kernelName, 'webgpu'))
      tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc: KERNELS[kernelName] as never });
  }
}

/** Removes them (flashEntmaxAttention then throws on webgpu too). */
export function unregisterFlashAttention(): void {
  for (const kernelName of FLASH_KERNELS)
    if (tf.getKernel(kernelName, 'webgpu')) tf.unregisterKernel(kernelName, 'webgpu');
}

registerFlashAttention();

/** Whether the active backend runs flashEntmaxAttention (webgpu once this module is loaded). */
export function flashAttentionAvailable(): boolean {
  return FLASH_KERNELS.every((k) => !!tf.getKernel(k, tf.getBackend()));
}

/** The checked sizes and attributes of a call. */
function setup(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, args: FlashAttentionArgs, op: string) {
  const [B, H, T, D] = checkQkv(op, q, k, v, args.keyMask) as [number, number, number, number];
  const [S, DV] = [k.shape[2]!, v.shape[3]!];
  const shapes = `q [${q.shape}], k [${k.shape}], v [${v.shape}]`;
  if (T < 1 || S < 1) throw new RangeError(`${op}: T and S must be at least 1: ${shapes}`);
  if (D > MAX_WIDTH || DV > MAX_WIDTH) throw new RangeError(`${op}: head sizes up to ${MAX_WIDTH}: ${shapes}`);
  if (S > TILE * MAX_TILES) throw new RangeError(`${op}: at most ${TILE * MAX_TILES} keys, got ${S}`);
  const scale = args.scale ?? 1 / Math.sqrt(D);
  if (!Number.isFinite(scale)) throw new RangeError(`${op}: scale must be finite, got ${scale}`);
  const offset = args.causal ? (args.queryOffset ?? S - T) : S;
  if (!Number.isInteger(offset)) throw new RangeError(`${op}: queryOffset must be an integer, got ${offset}`);
  const nIter = args.nIter ?? FUSED_NITER;
  if (!Number.isInteger(nIter) || nIter < 1)
    throw new RangeError(`${op}: nIter must be a positive integer, got ${nIter}`);
  const alpha = args.alpha ?? 1.5;
  if (typeof alpha === 'number') checkAlphaNumber(alpha, op);
  else checkAlphaTensor(alpha, q, op);
  if (!flashAttentionAvailable())
    throw new Error(`${op}: no kernel for backend '${tf.getBackend()}' (webgpu only); use attention() there`);
  const attrs: Attrs = { scale, T, S, H, offset: Math.max(-S - 1, Math.min(offset, S)), D, DV, nIter };
  return { B, H, T, S, D, DV, attrs, alpha, rows: B * H * T };
}

type Setup = ReturnType<typeof setup>;

/** α as the kernels read it: one value `[1]`, or one per query row `[B·H·T]` (α broadcast to [B, H, T, 1]). */
function rowAlphas(c: Setup, alpha: tf.Tensor): tf.Tensor {
  return alpha.size === 1 ? tf.reshape(alpha, [1]) : tf.reshape(tf.broadcastTo(alpha, [c.B, c.H, c.T, 1]), [c.rows]);
}

function forwardOf(c: Setup, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, alphas: tf.Tensor, keyMask?: tf.Tensor) {
  const mask: tf.NamedTensorMap = keyMask ? { keyMask } : {};
  const [queries, keys, values] = [tf.reshape(q, [c.rows, c.D]), tf.reshape(k, [-1, c.D]), tf.reshape(v, [-1, c.DV])];
  const attrs = c.attrs as unknown as tf.NamedAttrMap;
  const tiles = tf.engine().runKernel('AesFlashTiles', { keys, ...mask }, attrs) as tf.Tensor;
  return tf
    .engine()
    .runKernel('AesFlashForward', { queries, keys, values, alphas, tiles, ...mask }, attrs) as tf.Tensor;
}

/** The mask as float32 [B, S] (1 keeps a key), or undefined. */
const maskOf = (m?: tf.Tensor) => (m ? tf.cast(tf.notEqual(m, 0), 'float32') : undefined);

/** softmax(s·q·kᵀ + masks)·v by the plain products, with the library's row conventions. */
function softmaxAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, c: Setup, keyMask?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    let s = tf.mul(tf.matMul(q, k, false, true), c.attrs.scale);
    const causal = c.attrs.offset < c.S ? causalMask(c.T, c.S, c.attrs.offset) : null;
    if (causal) s = tf.add(s, causal);
    if (keyMask) s = tf.where(tf.reshape(tf.notEqual(keyMask, 0), [c.B, 1, 1, c.S]), s, tf.fill(s.shape, -Infinity));
    return tf.matMul(softmax(s), v);
  });
}

/**
 * α-entmax attention in one pass over the keys per query row (see the file comment).
 *
 * @param q `[B, H, T, d]`; k `[B, H, S, d]`; v `[B, H, S, dv]` (float32; d, dv ≤ 256; S ≤ 65536).
 * @returns `[B, H, T, dv]`: zeros for a query with no visible key, NaN for one whose scores hold NaN
 *   or +∞. α = 1 (a number) is softmax attention by the plain products (nothing could be skipped);
 *   a tensor α is floored at 1 + 1e-6.
 * @throws off webgpu, and on bad shapes or arguments.
 * @example
 * flashEntmaxAttention(q, k, v, { alpha: 1.5, causal: true });
 * flashEntmaxAttention(q, k, v, { alpha: tf.tensor([1.2, 1.5, 1.8, 2]).reshape([4, 1, 1]) });   // per head
 */
export function flashEntmaxAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  args: FlashAttentionArgs = {},
): tf.Tensor {
  const c = setup(q, k, v, args, 'flashEntmaxAttention');
  const { rows, D, DV } = c;
  const attrs = c.attrs as unknown as tf.NamedAttrMap;
  if (c.alpha === 1) return softmaxAttention(q, k, v, c, args.keyMask);
  // backward: dq, the row sums and dα per query row, then dk and dv per key tile
  const backward = (
    qq: tf.Tensor,
    kk: tf.Tensor,
    vv: tf.Tensor,
    fwd: tf.Tensor,
    dy: tf.Tensor,
    keyMask?: tf.Tensor,
  ) => {
    const [queries, keys, values] = [tf.reshape(qq, [rows, D]), tf.reshape(kk, [-1, D]), tf.reshape(vv, [-1, DV])];
    const common = { queries, keys, values, fwd, dy: tf.reshape(dy, [rows, DV]), ...(keyMask ? { keyMask } : {}) };
    const rowGrad = tf.engine().runKernel('AesFlashRows', common, attrs) as tf.Tensor;
    const kv = tf.engine().runKernel('AesFlashKeys', { ...common, rowGrad }, attrs) as tf.Tensor;
    const BHS = kv.shape[0]!;
    return {
      dq: tf.reshape(tf.slice(rowGrad, [0, 0], [rows, D]), qq.shape),
      dk: tf.reshape(tf.slice(kv, [0, 0], [BHS, D]), kk.shape),
      dv: tf.reshape(tf.slice(kv, [0, D], [BHS, DV]), vv.shape),
      dAlpha: tf.reshape(tf.slice(rowGrad, [0, D + 1], [rows, 1]), [c.B, c.H, c.T, 1]),
    };
  };
  // forward: the output, and what the backward keeps (the mask is made here so that the tape holds it)
  const forward = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, alphas: tf.Tensor) => {
    const keyMask = maskOf(args.keyMask);
    const fwd = forwardOf(c, qq, kk, vv, alphas, keyMask);
    const output = tf.reshape(tf.slice(fwd, [0, 0], [rows, DV]), [c.B, c.H, c.T, DV]);
    return { output, kept: [fwd, ...(keyMask ? [keyMask] : [])] };
  };
  if (typeof c.alpha === 'number') {
    const alpha = Math.max(c.alpha, 1 + MIN_ALPHA_EXCESS);
    const f = tf.customGrad((...a: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [qq, kk, vv, save] = a as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
      const { output, kept } = forward(qq, kk, vv, tf.tensor1d([alpha]));
      save([qq, kk, vv, ...kept]);
      const gradFunc = (dy: tf.Tensor, [sq, sk, sv, sf, sm]: tf.Tensor[]) => {
        const g = backward(sq!, sk!, sv!, sf!, dy, sm);
        return [g.dq, g.dk, g.dv];
      };
      return { value: output, gradFunc };
    });
    return f(q, k, v);
  }
  const f = tf.customGrad((...a: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [qq, kk, vv, al, save] = a as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const alphas = rowAlphas(c, al);
    const { output, kept } = forward(qq, kk, vv, alphas);
    save([qq, kk, vv, ...kept]);
    const gradFunc = (dy: tf.Tensor, [sq, sk, sv, sf, sm]: tf.Tensor[]) => {
      const g = backward(sq!, sk!, sv!, sf!, dy, sm);
      return [g.dq, g.dk, g.dv, reduceTo(g.dAlpha, al.shape)];
    };
    return { value: output, gradFunc };
  });
  // α is floored (gradient 0 below the floor)
  return tf.tidy(() => f(q, k, v, tf.maximum(c.alpha as tf.Tensor, 1 + MIN_ALPHA_EXCESS)));
}

/**
 * The key tiles (TILE keys each) the forward computes and the ones a query could see, summed per
 * head: `{kept, visible}`, float32 `[B, H]`; 1 − kept/visible is the skip rate.
 */
export function flashSkipCounts(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  args: FlashAttentionArgs = {},
): { kept: tf.Tensor; visible: tf.Tensor } {
  const c = setup(q, k, v, args, 'flashSkipCounts');
  return tf.tidy(() => {
    const alpha = typeof c.alpha === 'number' ? tf.tensor1d([c.alpha]) : c.alpha;
    const alphas = rowAlphas(c, tf.maximum(alpha, 1 + MIN_ALPHA_EXCESS));
    const fwd = forwardOf(c, q, k, v, alphas, maskOf(args.keyMask));
    const per = (col: number) => tf.sum(tf.reshape(tf.slice(fwd, [0, c.DV + col], [c.rows, 1]), [c.B, c.H, c.T]), 2);
    return { kept: per(4), visible: per(5) };
  });
}
