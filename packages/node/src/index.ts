/**
 * @aes/node: what a Node.js entry point needs around the libraries, kept out of them so that
 * @aes/attention and @aes/models stay free of Node built-ins and of any particular backend:
 * backend selection (wasm, cpu, webgpu through Dawn, tfjs-node when installed) and a file-system
 * IOHandler for checkpoints and Layers models; and a no-sync clone of cpu that stands in for a device
 * backend in tests.
 */
export { selectBackend, BACKEND_NAMES, type BackendName, type BackendChoice } from './backend.js';
export { fileSystemIO } from './file_io.js';
export { registerNoSyncBackend } from './no_sync.js';
export { exitOnUncaught, silenceTfjs } from './entry.js';
