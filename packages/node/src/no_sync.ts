/**
 * A stand-in for a device backend without a GPU: a clone of the cpu backend, registered under
 * another name, on which user-level synchronous reads (`dataSync`, `arraySync`) throw, as webgpu's
 * do in Node. Code that passes on it makes no synchronous read on a device backend (the library
 * treats any backend outside capabilities.ts's host-memory list as one); its results can be
 * compared with cpu's, kernel for kernel.
 */
import * as tf from '@tensorflow/tfjs';

type Ctor = new () => tf.KernelBackend;
type Engine = { readSync: (id: object) => unknown };

/**
 * Registers the clone as `name` (the cpu kernels, custom ones included, are registered for it too)
 * and returns a function that removes it and restores synchronous reads.
 * @example
 * const remove = registerNoSyncBackend('nosync');
 * await tf.setBackend('nosync');          // x.dataSync() now throws; await x.data() works
 */
export function registerNoSyncBackend(name = 'nosync'): () => void {
  if (tf.findBackendFactory(name)) throw new Error(`registerNoSyncBackend: a backend '${name}' is already registered`);
  const Cpu = tf.findBackend('cpu')?.constructor as Ctor | undefined;
  if (!Cpu)
    throw new Error("registerNoSyncBackend: the cpu backend must be initialised first (await tf.setBackend('cpu'))");
  tf.registerBackend(name, () => new Cpu(), -1);
  const kernels = tf.getKernelsForBackend('cpu').map((k) => k.kernelName);
  for (const k of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...k, backendName: name });
  const engine = tf.engine() as unknown as Engine;
  const readSync = engine.readSync;
  engine.readSync = function (this: unknown, id: object) {
    if (tf.getBackend() === name) throw new Error(`synchronous read on the no-sync backend '${name}'`);
    return readSync.call(this, id);
  };
  return () => {
    engine.readSync = readSync;
    for (const k of kernels) tf.unregisterKernel(k, name);
    tf.removeBackend(name);
  };
}
