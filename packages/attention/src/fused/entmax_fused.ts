/**
 * α-entmax as two fused custom kernels, 'AesEntmaxForward' and 'AesEntmaxBackward', registered at
 * import for the `webgpu` backend (WGSL, entmax_wgsl.ts: one workgroup per row) and the `cpu`
 * backend (the float32 mirror, entmax_mirror.ts, which follows the WGSL step by step), and the op
 * `entmaxFused` on top of them with gradients in the scores and in α. The math is that of
 * `entmaxBisect` (Peters et al. 2019; Correia et al. 2019) with a safeguarded Newton solver and an
 * exact finish; see entmax_mirror.ts.
 *
 * Kernel contract (rows = product of the leading axes; α has one value per row or one in all):
 *   AesEntmaxForward  {scores [rows, n], alphas [rows] | [1]}, attrs {nIter}
 *                     → [p [rows, n], rowStats [rows, 4] = (m, r, scale, flag)]
 *   AesEntmaxBackward {scores, alphas, rowStats, dy [rows, n]}, attrs {withAlpha}
 *                     → [dx [rows, n], rowGrad [rows, 2] = (Σg·dy/Σg, dα)]
 */
import * as tf from '@tensorflow/tfjs';
import { checkAlphaNumber, checkAlphaTensor, MIN_ALPHA_EXCESS, reduceTo } from '../entmax_bisect.js';
import { checkScores } from '../rows.js';
import { softmax } from '../softmax.js';
import { entmaxBackwardMirror, entmaxForwardMirror, FUSED_NITER } from './entmax_mirror.js';
import { gradProgram, gradRowProgram, probsProgram, rowProgram, type EntmaxProgram } from './entmax_wgsl.js';

export const FUSED_FORWARD = 'AesEntmaxForward';
export const FUSED_BACKWARD = 'AesEntmaxBackward';
/** Backends the kernels are registered for at import. */
export const FUSED_BACKENDS = ['webgpu', 'cpu'] as const;

export interface EntmaxFusedArgs {
  /** Solver steps (safeguarded Newton); the default reaches float32 precision for α ∈ [1.01, 4], n ≤ 8192. */
  nIter?: number;
}
export const ENTMAX_FUSED_DEFAULTS: Readonly<Required<EntmaxFusedArgs>> = Object.freeze({ nIter: FUSED_NITER });

/** What the kernels use of the backends (typed here so that tfjs-backend-webgpu is never imported). */
interface WebGPUBackendLike {
  runWebGPUProgram(program: EntmaxProgram, inputs: tf.TensorInfo[], dtype: 'float32'): tf.TensorInfo;
}
interface CpuBackendLike {
  readSync(dataId: tf.DataId): ArrayLike<number>;
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
}
type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: unknown; attrs?: tf.NamedAttrMap };

function webgpu(backend: unknown, name: string): WebGPUBackendLike {
  const b = backend as Partial<WebGPUBackendLike>;
  if (typeof b.runWebGPUProgram !== 'function')
    throw new Error(`${name}: the 'webgpu' backend here is not tfjs-backend-webgpu`);
  return b as WebGPUBackendLike;
}

function forwardWebGPU({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const { scores, alphas } = inputs;
  const [rows, n] = scores.shape;
  const b = webgpu(backend, FUSED_FORWARD);
  const stats = b.runWebGPUProgram(rowProgram(rows, n, attrs!.nIter as number), [scores, alphas], 'float32');
  return [b.runWebGPUProgram(probsProgram(rows, n), [scores, alphas, stats], 'float32'), stats];
}

function backwardWebGPU({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const { scores, alphas, rowStats, dy } = inputs;
  const [rows, n] = scores.shape;
  const b = webgpu(backend, FUSED_BACKWARD);
  const rowGrad = b.runWebGPUProgram(
    gradRowProgram(rows, n, attrs!.withAlpha as boolean),
    [scores, alphas, rowStats, dy],
    'float32',
  );
  return [b.runWebGPUProgram(gradProgram(rows, n), [scores, alphas, rowStats, dy, rowGrad], 'float32'), rowGrad];
}

function read(backend: CpuBackendLike, t: tf.TensorInfo): Float32Array {
  return Float32Array.from(backend.readSync(t.dataId));
}

function forwardCpu({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const b = backend as CpuBackendLike;
  const [rows, n] = inputs.scores.shape;
  const { p, stats } = entmaxForwardMirror(
    read(b, inputs.scores),
    read(b, inputs.alphas),
    rows,
    n,
    attrs!.nIter as number,
  );
  return [b.makeTensorInfo([rows, n], 'float32', p), b.makeTensorInfo([rows, 4], 'float32', stats)];
}

function backwardCpu({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const b = backend as CpuBackendLike;
  const [rows, n] = inputs.scores.shape;
  const [x, a, s, dy] = [inputs.scores, inputs.alphas, inputs.rowStats, inputs.dy].map((t) => read(b, t));
  const { dx, rowGrad } = entmaxBackwardMirror(x, a, s, dy, rows, n, attrs!.withAlpha as boolean);
  return [b.makeTensorInfo([rows, n], 'float32', dx), b.makeTensorInfo([rows, 2], 'float32', rowGrad)];
}

const KERNELS: Record<(typeof FUSED_BACKENDS)[number], Array<[string, (a: KernelArgs) => tf.TensorInfo[]]>> = {
  webgpu: [[FUSED_FORWARD, forwardWebGPU], [FUSED_BACKWARD, backwardWebGPU]],
  cpu: [[FUSED_FORWARD, forwardCpu], [FUSED_BACKWARD, backwardCpu]],
};

/**
 * Registers the fused kernels for the given backends (all of FUSED_BACKENDS by default); already
 * registered ones are left alone. Runs at import; call it again after `unregisterFusedEntmax`.
 */
export function registerFusedEntmax(backends: ReadonlyArray<(typeof FUSED_BACKENDS)[number]> = FUSED_BACKENDS): void {
  for (const backendName of backends) {
    for (const [kernelName, f] of KERNELS[backendName]) {
      if (!tf.getKernel(kernelName, backendName))
        tf.registerKernel({ kernelName, backendName, kernelFunc: f as unknown as tf.KernelFunc });
    }
  }
}

/**
 * Removes the fused kernels of a backend, so that `entmax()` and `attention()` take the composite
 * path there again (used by the GPU bench to time both).
 */
export function unregisterFusedEntmax(backendName: (typeof FUSED_BACKENDS)[number]): void {
  for (const [kernelName] of KERNELS[backendName])
    if (tf.getKernel(kernelName, backendName)) tf.unregisterKernel(kernelName, backendName);
}

registerFusedEntmax();

/** Whether the active backend has the fused kernels (webgpu and cpu once this module is loaded). */
export function fusedEntmaxAvailable(): boolean {
  const b = tf.getBackend();
  return !!tf.getKernel(FUSED_FORWARD, b) && !!tf.getKernel(FUSED_BACKWARD, b);
}

/**
 * α-entmax over the last axis by the fused kernels: the same map and gradients as `entmaxBisect`,
 * in two dispatches forward and two backward on webgpu.
 *
 * @param x float32 scores `[..., n]`; `-Infinity` masks an entry.
 * @param alpha α ≥ 1: a number (α = 1 is exactly `softmax`), or a float32 tensor that broadcasts to
 *   `[..., 1]` (raised to 1 + MIN_ALPHA_EXCESS; gradients flow to it).
 * @returns probabilities `[..., n]`, rows summing to 1 (zeros for a fully masked row, NaN for a row
 *   holding NaN or +∞).
 * @throws when the active backend has no fused kernel (see `fusedEntmaxAvailable`).
 * @example
 * entmaxFused(tf.tensor2d([[2, 1, -1]]), 1.5).print();          // [[0.8307, 0.1693, 0]]
 * entmaxFused(scores, tf.tensor([1.2, 1.8]).reshape([2, 1]));   // per-row α
 */
function entmaxFused_(x: tf.Tensor, alpha: number | tf.Tensor, args: EntmaxFusedArgs = {}): tf.Tensor {
  checkScores(x, 'entmaxFused');
  const { nIter } = { ...ENTMAX_FUSED_DEFAULTS, ...args };
  if (!Number.isInteger(nIter) || nIter < 1)
    throw new RangeError(`entmaxFused: nIter must be a positive integer, got ${nIter}`);
  if (typeof alpha === 'number') checkAlphaNumber(alpha, 'entmaxFused');
  else checkAlphaTensor(alpha, x, 'entmaxFused');
  if (alpha === 1) return softmax(x);
  if (!fusedEntmaxAvailable()) {
    throw new Error(
      `entmaxFused: no fused kernel for backend '${tf.getBackend()}' (registered: ${FUSED_BACKENDS.join(', ')}); ` +
      `use entmaxBisect there`,
    );
  }
  const n = x.shape[x.rank - 1];
  const rowShape = [...x.shape.slice(0, -1), 1];
  const rows = x.size / n;
  const forward = (input: tf.Tensor, alphas: tf.Tensor) =>
    tf.engine().runKernel(FUSED_FORWARD, { scores: tf.reshape(input, [rows, n]), alphas }, { nIter }) as tf.Tensor[];
  const backward = (input: tf.Tensor, alphas: tf.Tensor, stats: tf.Tensor, dy: tf.Tensor, withAlpha: boolean) =>
    tf
      .engine()
      .runKernel(
        FUSED_BACKWARD,
        { scores: tf.reshape(input, [rows, n]), alphas, rowStats: stats, dy: tf.reshape(dy, [rows, n]) },
        { withAlpha },
      ) as tf.Tensor[];
  if (typeof alpha === 'number') {
    const f = tf.customGrad((...a: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [input, save] = a as [tf.Tensor, tf.GradSaveFunc];
      const alphas = tf.tensor1d([Math.max(alpha, 1 + MIN_ALPHA_EXCESS)]);
      const [p, stats] = forward(input, alphas);
      save([input, alphas, stats]);
      const gradFunc = (dy: tf.Tensor, [xs, as, st]: tf.Tensor[]) =>
        tf.reshape(backward(xs, as, st, dy, false)[0], x.shape);
      return { value: tf.reshape(p, x.shape), gradFunc };
    });
    return f(x);
  }
  const alphaC = tf.maximum(alpha, 1 + MIN_ALPHA_EXCESS);             // gradient 0 below the floor
  const f = tf.customGrad((...a: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [input, al, save] = a as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const alphas = al.size === 1 ? tf.reshape(al, [1]) : tf.reshape(tf.broadcastTo(al, rowShape), [rows]);
    const [p, stats] = forward(input, alphas);
    save([input, alphas, stats]);
    const gradFunc = (dy: tf.Tensor, [xs, as, st]: tf.Tensor[]) => {
      const [dx, rowGrad] = backward(xs, as, st, dy, true);
      const dAlpha = tf.reshape(tf.slice(rowGrad, [0, 1], [rows, 1]), rowShape);
      return [tf.reshape(dx, x.shape), reduceTo(dAlpha, al.shape)];
    };
    return { value: tf.reshape(p, x.shape), gradFunc };
  });
  return f(x, alphaC);
}

export const entmaxFused = tf.op({ entmaxFused_ });
