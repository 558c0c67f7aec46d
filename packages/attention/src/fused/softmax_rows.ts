/**
 * Scaled, causally masked softmax of attention scores as one webgpu program: what softmax attention
 * needs between its two products, in one dispatch instead of a scale, a mask built and uploaded on
 * the host, the softmax and the where-based handling of special rows (issue: "find the 17×").
 *
 *   p[r, j] = softmax_j(c · s[r, j] over the visible keys j ≤ i(r) + offset),  i(r) = r mod T
 *
 * with the library's row conventions (rows.ts): masked (invisible or −∞) entries get exactly 0, a
 * row with no visible key gives zeros, a row with NaN or +∞ anywhere gives NaN (as the composite
 * does, where NaN plus the mask's −∞ stays NaN).
 * One workgroup per row: the row maximum, then Σ exp(c·s − m) as workgroup-memory tree reductions,
 * then the probabilities. Scale, T and offset are uniforms, so a KV-cache step (T = 1, the offset
 * growing by one per token) reuses the compiled program.
 *
 * `maskedSoftmax` takes the kernel on webgpu and the composite softmax(c·s + causal mask) elsewhere;
 * the gradient is the same on both: dS = c · p ⊙ (dP − Σ p ⊙ dP).
 */
import * as tf from '@tensorflow/tfjs';
import { CAUSAL_MASK, causalMask } from '../scores.js';
import { softmax } from '../softmax.js';
import { BIT_TESTS, reductions, ROW_INDEX, type EntmaxProgram } from './entmax_wgsl.js';

export const MASKED_SOFTMAX = 'AesMaskedSoftmax';

interface UniformProgram extends EntmaxProgram {
  uniforms: string;
}
interface WebGPUBackendLike {
  runWebGPUProgram(
    program: UniformProgram,
    inputs: tf.TensorInfo[],
    dtype: 'float32',
    uniforms: Array<{ type: 'float32' | 'int32'; data: number[] }>,
  ): tf.TensorInfo;
}

/** The program for `rows × n` scores with `wg` threads per row (a power of 2). */
export function maskedSoftmaxProgram(rows: number, n: number, wg = n <= 1024 ? 64 : 256): UniformProgram {
  const getUserCode = () => `${reductions(wg)}
${BIT_TESTS}
fn main(index : i32) {${ROW_INDEX(wg)}
  let last = min(n - 1, row % uniforms.T + uniforms.offset);        // the last visible key
  var mx = -3.402823e38;
  var bad = 0.0;
  var seen = 0.0;
  for (var col = ti; col < n; col += ${wg}) {
    let z = scores[base + col];
    if (entIsInvalid(z)) {
      bad = 1.0;
    } else if (col <= last && !entIsNegInf(z)) {
      seen = 1.0;
      mx = max(mx, uniforms.scale * z);
    }
  }
  let rm = entMax(vec4<f32>(mx, bad, seen, 0.0), tid);
  var acc = 0.0;
  for (var col = ti; col <= last; col += ${wg}) {
    let z = scores[base + col];
    if (!entIsNegInf(z) && !entIsInvalid(z)) { acc = acc + exp(uniforms.scale * z - rm.x); }
  }
  let total = entSum(vec4<f32>(acc, 0.0, 0.0, 0.0), tid).x;
  if (rowRaw < rows) {
    for (var col = ti; col < n; col += ${wg}) {
      let z = scores[base + col];
      var p = 0.0;
      if (rm.y > 0.0) {
        p = uniforms.NAN;
      } else if (col <= last && rm.z > 0.0 && !entIsNegInf(z)) {
        p = exp(uniforms.scale * z - rm.x) / total;
      }
      setOutputAtIndex(base + col, p);
    }
  }
}`;
  return {
    variableNames: ['scores'],
    outputShape: [rows, n],
    shaderKey: `aesMaskedSoftmax_${wg}`,
    dispatchLayout: { x: [0, 1] },
    dispatch: [rows, 1, 1],
    workgroupSize: [wg, 1, 1],
    uniforms: 'scale : f32, T : i32, offset : i32,',
    getUserCode,
  };
}

/** The additive causal mask `[T, S]` (0 where key j ≤ i + offset, −∞ elsewhere), made on the device. */
export function causalMaskProgram(T: number, S: number): UniformProgram {
  return {
    variableNames: [],
    outputShape: [T, S],
    shaderKey: 'aesCausalMask',
    dispatchLayout: { x: [0, 1] },
    dispatch: [Math.ceil((T * S) / 64), 1, 1],
    workgroupSize: [64, 1, 1],
    size: true,
    uniforms: 'offset : i32,',
    getUserCode: () => `
fn main(index : i32) {
  if (index < uniforms.size) {
    let S = uniforms.outShape.y;
    setOutputAtIndex(index, select(0.0, -uniforms.INFINITY, index % S > index / S + uniforms.offset));
  }
}`,
  };
}

type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: unknown; attrs?: tf.NamedAttrMap };

function causalMaskWebGPU({ backend, attrs }: KernelArgs): tf.TensorInfo {
  const { T, S, offset } = attrs as { T: number; S: number; offset: number };
  return (backend as WebGPUBackendLike).runWebGPUProgram(causalMaskProgram(T, S), [], 'float32', [
    { type: 'int32', data: [offset] },
  ]);
}

function maskedSoftmaxWebGPU({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const [rows, n] = inputs.scores.shape;
  const { scale, T, offset } = attrs as { scale: number; T: number; offset: number };
  return (backend as WebGPUBackendLike).runWebGPUProgram(maskedSoftmaxProgram(rows, n), [inputs.scores], 'float32', [
    { type: 'float32', data: [scale] },
    { type: 'int32', data: [T] },
    { type: 'int32', data: [offset] },
  ]);
}

const KERNELS: Array<[string, (a: KernelArgs) => tf.TensorInfo]> = [
  [MASKED_SOFTMAX, maskedSoftmaxWebGPU],
  [CAUSAL_MASK, causalMaskWebGPU],
];

/** Registers the kernels for webgpu (at import; again after `unregisterMaskedSoftmax`). */
export function registerMaskedSoftmax(): void {
  for (const [kernelName, f] of KERNELS) {
    if (!tf.getKernel(kernelName, 'webgpu'))
      tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc: f as never });
  }
}

/** Removes them: `maskedSoftmax`, masks and softmax attention take the composite paths on webgpu too. */
export function unregisterMaskedSoftmax(): void {
  for (const [kernelName] of KERNELS) if (tf.getKernel(kernelName, 'webgpu')) tf.unregisterKernel(kernelName, 'webgpu');
}

registerMaskedSoftmax();

/** Whether the active backend runs `maskedSoftmax` as one kernel. */
export function maskedSoftmaxFused(): boolean {
  return !!tf.getKernel(MASKED_SOFTMAX, tf.getBackend());
}

/**
 * softmax over the last axis of `c · s` for scores s `[..., T, S]`, with key j of query i visible
 * when j ≤ i + offset (offset null: every key). See the file comment.
 * @example
 * maskedSoftmax(scores, 1 / Math.sqrt(d), S - T);        // causal attention weights [B, H, T, S]
 */
function maskedSoftmax_(s: tf.Tensor, scale: number, offset: number | null): tf.Tensor {
  const [T, S] = s.shape.slice(-2) as [number, number];
  const f = tf.customGrad((...a: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, save] = a as [tf.Tensor, tf.GradSaveFunc];
    let p: tf.Tensor;
    if (maskedSoftmaxFused()) {
      const attrs = { scale, T, offset: offset ?? S };
      const rows = tf.engine().runKernel(MASKED_SOFTMAX, { scores: tf.reshape(x, [-1, S]) }, attrs) as tf.Tensor;
      p = tf.reshape(rows, x.shape);
    } else {
      const mask = causalMask(T, S, offset);
      const scaled = tf.mul(x, scale);
      p = softmax(mask ? tf.add(scaled, mask) : scaled);
    }
    save([p]);
    const gradFunc = (dy: tf.Tensor, [y]: tf.Tensor[]) => {
      const py = tf.mul(y, dy);
      return tf.mul(tf.sub(py, tf.mul(y, tf.sum(py, -1, true))), scale);
    };
    return { value: p, gradFunc };
  });
  return f(s);
}

export const maskedSoftmax = tf.op({ maskedSoftmax_ });
