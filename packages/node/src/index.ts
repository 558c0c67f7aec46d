/**
 * @aes/node: what a Node.js entry point needs around the libraries, kept out of them so that
 * @aes/attention and @aes/models stay free of Node built-ins and of any particular backend:
 * backend selection (wasm, cpu, webgpu through Dawn, tfjs-node when installed) and a file-system
 * IOHandler for checkpoints and Layers models; and, for tests, a no-sync clone of cpu that stands in
 * for a device backend and the decision whether webgpu suites run.
 */
export {
  selectBackend, defaultThreads, BACKEND_NAMES, type BackendName, type BackendChoice, type BackendOptions,
} from './backend.js';
export { MAX_WASM_THREADS } from './wasm_threads.js';
export { fileSystemIO } from './file_io.js';
export { registerNoSyncBackend } from './no_sync.js';
export { webgpuForTests } from './test_backends.js';
export { countWebGPUWork, type WebGPUCounts, type WebGPUCounter } from './webgpu_counter.js';
export { exitOnUncaught, silenceTfjs } from './entry.js';
