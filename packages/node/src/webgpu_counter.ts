/**
 * What the webgpu backend does on the device per call, counted device-independently (the same on a
 * software adapter as on a GPU): programs dispatched (by name), host→device uploads of tensor data,
 * device→host reads. The counter wraps three methods of the backend instance and undoes that on
 * `stop()`; it is for benches and tests, not for production runs.
 *
 * Not counted: the small uniform buffers (shapes, strides) each dispatch writes; buffer copies that
 * stay on the device.
 */
import * as tf from '@tensorflow/tfjs';

export interface WebGPUCounts {
  /** Programs dispatched (one compute pass dispatch each). */
  dispatches: number;
  /** Dispatches by program class name, e.g. `{MatMulPackedProgram: 2, SoftmaxProgram: 1}`. */
  programs: Record<string, number>;
  /** Tensors whose host values were copied to the device, and their bytes. */
  uploads: number;
  uploadBytes: number;
  /** Reads of device buffers back to the host (`data()`, `array()`), and their bytes. */
  downloads: number;
  downloadBytes: number;
}

export interface WebGPUCounter {
  /** The counts since the start or the last `reset()`. */
  counts(): WebGPUCounts;
  reset(): void;
  /** Restores the backend's own methods. */
  stop(): void;
}

type TensorData = { values: unknown; resource: unknown; dtype: string; shape: number[] };
type Backend = {
  runWebGPUProgram: (program: object, ...rest: unknown[]) => unknown;
  uploadToGPU: (dataId: object) => void;
  getBufferData: (buffer: { size: number }) => Promise<ArrayBuffer>;
  tensorMap: { get: (id: object) => TensorData };
};

/**
 * Starts counting on the active backend, which must be webgpu.
 * @example
 * const c = countWebGPUWork();
 * attention(q, k, v, {normaliser: 'softmax', causal: true}).output.dispose();
 * console.log(c.counts().dispatches); c.stop();
 */
export function countWebGPUWork(): WebGPUCounter {
  if (tf.getBackend() !== 'webgpu') throw new Error(`countWebGPUWork: the active backend is '${tf.getBackend()}'`);
  const backend = tf.backend() as unknown as Backend;
  const own = { run: backend.runWebGPUProgram, upload: backend.uploadToGPU, read: backend.getBufferData };
  let c: WebGPUCounts;
  const reset = () => {
    c = { dispatches: 0, programs: {}, uploads: 0, uploadBytes: 0, downloads: 0, downloadBytes: 0 };
  };
  reset();
  backend.runWebGPUProgram = function (this: Backend, program: object, ...rest: unknown[]) {
    const name = program.constructor.name;
    c.dispatches += 1;
    c.programs[name] = (c.programs[name] ?? 0) + 1;
    return own.run.call(this, program, ...rest);
  };
  backend.uploadToGPU = function (this: Backend, dataId: object) {
    const d = this.tensorMap.get(dataId);
    if (d.resource == null && d.values != null) {
      c.uploads += 1;
      c.uploadBytes += 4 * d.shape.reduce((a, b) => a * b, 1);
    }
    own.upload.call(this, dataId);
  };
  backend.getBufferData = function (this: Backend, buffer: { size: number }) {
    c.downloads += 1;
    c.downloadBytes += buffer.size;
    return own.read.call(this, buffer);
  };
  return {
    counts: () => structuredClone(c),
    reset,
    stop: () => {
      backend.runWebGPUProgram = own.run;
      backend.uploadToGPU = own.upload;
      backend.getBufferData = own.read;
    },
  };
}
