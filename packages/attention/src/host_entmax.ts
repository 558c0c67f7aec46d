/**
 * α-entmax for any α > 1 as one row kernel on the backend's own memory, for the backends that keep
 * tensors in host memory: on wasm the scores are read, and the probabilities and gradients written,
 * in place on the wasm heap (through the backend's `typedArrayFromHeap` and `makeOutput`: no copy);
 * on cpu the backend's arrays are used as they are. Where the tensor path (`entmaxBisect`) runs a
 * dozen elementwise kernels per Halley step over every entry, this runs js_rows.ts: per row one pass
 * for the max, the candidates (max − 1/(α − 1), max] compacted, float64 Halley on those with an
 * exact finish, and the backward pass over the support only.
 *
 * α is a number or a one-element float32 tensor (a head's learned or AES α), with gradients wrt the
 * scores and wrt α. Same conventions and results as `entmaxBisect` (masked −∞ → 0, a fully masked row
 * → zeros, NaN or +∞ in a row → NaN row).
 */
import * as tf from '@tensorflow/tfjs';
import { entmaxRows, entmaxRowsAlphaVjp, entmaxRowsVjp } from './js_rows.js';
import { MIN_ALPHA_EXCESS } from './entmax_bisect.js';

/** The two methods of tfjs's wasm backend this kernel uses (duck-typed: no import of that package). */
interface HeapBackend {
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}

/** Backends whose memory this kernel reads directly. */
const HOST_ROW_BACKENDS: readonly string[] = Object.freeze(['wasm', 'cpu']);

/** Whether `hostEntmax` runs on the active backend (wasm or cpu). */
export function hostEntmaxAvailable(): boolean {
  return HOST_ROW_BACKENDS.includes(tf.getBackend());
}

function heapBackend(): HeapBackend | null {
  const b = tf.backend() as unknown as Partial<HeapBackend>;
  return typeof b.makeOutput === 'function' && typeof b.typedArrayFromHeap === 'function' ? (b as HeapBackend) : null;
}

/**
 * Allocates float32 outputs of the given shapes, then calls `fill` with their memory and the memory
 * of `inputs` (on wasm, views taken after every allocation: growing the heap detaches older views).
 * `fill` must not call tfjs.
 */
function hostKernel(
  inputs: tf.Tensor[],
  shapes: number[][],
  fill: (outs: Float32Array[], ins: Float32Array[]) => void,
): tf.Tensor[] {
  const heap = heapBackend();
  if (heap) {
    const infos = shapes.map((s) => heap.makeOutput(s, 'float32'));
    fill(infos.map((i) => heap.typedArrayFromHeap(i)), inputs.map((t) => heap.typedArrayFromHeap(t)));
    return infos.map((i) => tf.engine().makeTensorFromTensorInfo(i));
  }
  const outs = shapes.map((s) => new Float32Array(s.reduce((a, b) => a * b, 1)));
  fill(outs, inputs.map((t) => t.dataSync() as Float32Array));
  return outs.map((o, i) => tf.tensor(o, shapes[i], 'float32'));
}

/**
 * α-entmax over the last axis of float32 scores on wasm or cpu (see the file comment).
 * @param alpha a number > 1, or a float32 tensor of one element (raised to 1 + MIN_ALPHA_EXCESS).
 */
export function hostEntmax(x: tf.Tensor, alpha: number | tf.Tensor): tf.Tensor {
  if (!hostEntmaxAvailable()) throw new Error(`hostEntmax: needs the wasm or cpu backend, not '${tf.getBackend()}'`);
  const n = x.shape[x.rank - 1];
  const rows = x.size / n;
  const forward = (input: tf.Tensor, a: number) =>
    hostKernel([input], [input.shape], ([p], [z]) => { entmaxRows(z, rows, n, a, p); })[0];
  const scoreVjp = (dy: tf.Tensor, p: tf.Tensor, a: number) =>
    hostKernel([p, dy], [p.shape], ([dx], [ps, dys]) => { entmaxRowsVjp(ps, dys, rows, n, a, dx); })[0];
  if (typeof alpha === 'number') {
    if (!(alpha > 1) || !Number.isFinite(alpha))
      throw new RangeError(`hostEntmax: alpha must be finite and > 1, got ${alpha}`);
    return tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
      const p = forward(input, alpha);
      save([p]);
      return { value: p, gradFunc: (dy: tf.Tensor, [ps]: tf.Tensor[]) => scoreVjp(dy, ps, alpha) };
    })(x);
  }
  if (alpha.size !== 1 || alpha.dtype !== 'float32')
    throw new RangeError(`hostEntmax: a tensor alpha must be one float32 value, got shape [${alpha.shape}]`);
  return tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [input, al, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const raw = al.dataSync()[0];                                   // one value: a 4-byte read
    const a = Math.max(raw, 1 + MIN_ALPHA_EXCESS);                  // gradient 0 below the floor
    const p = forward(input, a);
    save([p]);
    const gradFunc = (dy: tf.Tensor, [ps]: tf.Tensor[]) => {
      const [pv, dyv] = hostReads(ps, dy);
      const dAlpha = raw < a ? 0 : entmaxRowsAlphaVjp(pv, dyv, rows, n, a);
      return [scoreVjp(dy, ps, a), tf.fill(al.shape, dAlpha)];
    };
    return { value: p, gradFunc };
  })(x, alpha);
}

/** The memory of host tensors, for reads only (on wasm: views valid until the next allocation). */
function hostReads(...ts: tf.Tensor[]): Float32Array[] {
  const heap = heapBackend();
  return ts.map((t) => (heap ? heap.typedArrayFromHeap(t) : (t.dataSync() as Float32Array)));
}
