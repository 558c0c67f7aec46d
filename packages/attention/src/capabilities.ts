/**
 * The two backend capabilities the ops depend on: whether a synchronous read (`dataSync`) is cheap,
 * and whether `exp` and `log` are accurate to a few ulps everywhere.
 *
 * On backends whose tensors live in host memory (cpu, wasm, tfjs-node's 'tensorflow') a read costs a
 * copy at most, so ops may look at data to choose a faster algorithm: skip the special-row path when
 * every row is ordinary, stop a solver when no row moves, size a partial sort, dispatch a head's α to
 * the exact map. Everywhere else (webgpu, whose Node build cannot read synchronously at all; webgl,
 * where a read stalls the pipeline; any backend this list does not know) the ops take read-free
 * paths of tensor ops only, which give the same results on every backend.
 *
 * The same host backends compute `exp` and `log` with their math libraries. A GPU need not: WGSL
 * promises `log` only to 2⁻²¹ absolute on [0.5, 2], no relative accuracy near 1 (2% at 1 − 1e-5 on
 * Mesa's lavapipe), and tfjs's webgpu `expm1` is exp(x) − 1. There numerics.ts takes series instead.
 */
import * as tf from '@tensorflow/tfjs';

/** tfjs names of the backends that keep tensors in host memory. */
export const HOST_MEMORY_BACKENDS: readonly string[] = Object.freeze(['cpu', 'wasm', 'tensorflow']);

/** Whether the active backend reads synchronously at the cost of a copy (see the file comment). */
export function readsAreCheap(): boolean {
  return HOST_MEMORY_BACKENDS.includes(tf.getBackend());
}

/** Whether the active backend's `exp`, `log` and `expm1` are accurate near 0 and 1 (see the file comment). */
export function mathIsExact(): boolean {
  return HOST_MEMORY_BACKENDS.includes(tf.getBackend());
}
