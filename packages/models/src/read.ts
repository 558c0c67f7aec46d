/**
 * Host values of device tensors without synchronous reads: webgpu in Node has no `dataSync`, and
 * on any GPU each read is a round trip that waits for the queue. `readTensors` makes one transfer
 * for many tensors, so a training step, an evaluation batch or a sampled token costs one read.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * The values of `tensors`, each flattened row-major, read with one `await data()` of their
 * concatenation (as float32: int32 values are exact up to 2²⁴, e.g. token ids and argmax indices).
 * The inputs are not disposed.
 * @example
 * const [[loss], [norm]] = await readTensors([lossT, normT]);
 */
export async function readTensors(tensors: readonly tf.Tensor[]): Promise<Float32Array[]> {
  if (!tensors.length) return [];
  const flat = tf.tidy(() => tf.concat(tensors.map((t) => tf.reshape(tf.cast(t, 'float32'), [-1]))));
  const all = (await flat.data()) as Float32Array;
  flat.dispose();
  let o = 0;
  return tensors.map((t) => all.subarray(o, (o += t.size)));
}
