/**
 * Multi-threaded wasm in Node. tfjs-backend-wasm ships a threaded SIMD build (XNNPACK on a pthread
 * pool) but never uses it in Node: its feature flag answers "no threads" there, its worker script and
 * main script are handed over as Blob URLs, which Node's worker_threads cannot load, and the C++ side
 * caps the pool at half of `emscripten_num_logical_cores()` (it assumes two hyperthreads per core), so
 * on a 2-core machine it would use one thread anyway.
 *
 * This loads the same threaded build with Node-compatible answers: the worker script is written once to
 * a file in the temporary directory (the pthread workers are `worker_threads.Worker`s started from a
 * file path), the main script is passed as its own path (each worker reads it with `importScripts`),
 * and the logical-core import the C++ reads is answered with 2·threads, so that the pool gets exactly
 * `threads` threads (at most the 8 workers tfjs pre-spawns). The kernels are tfjs's own: only the
 * module under `BackendWasm` changes.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KernelBackend } from '@tensorflow/tfjs';

const require = createRequire(import.meta.url);
const BUILD = '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd';
/** tfjs pre-spawns this many pthread workers; its pool never uses more. */
export const MAX_WASM_THREADS = 8;

/** The module object tfjs's BackendWasm expects (its `init()` builds the same `tfjs` table). */
type WasmModule = Record<string, unknown> & {
  cwrap: (name: string, ret: string | null, args: string[]) => (...a: number[]) => number;
  PThread?: { terminateAllThreads(): void; runningWorkers: Array<{ unref(): void }> };
};

/**
 * tfjs's BackendWasm on its threaded build with a pool of `threads` threads (2 … 8). The pool's
 * threads run for the backend's whole life; emscripten keeps a running thread's worker ref'd, which
 * would keep a finished process alive, so they are unref'd once the pool exists.
 */
export async function threadedWasmBackend(threads: number): Promise<KernelBackend> {
  const { BackendWasm, setThreadsCount } = await import('@tensorflow/tfjs-backend-wasm');
  const module = await loadThreadedWasm(threads);
  setThreadsCount(threads);
  const backend = new BackendWasm(module as never);                  // creates the pool
  for (const w of module.PThread?.runningWorkers ?? []) w.unref();
  return backend;
}

/** Loads tfjs's threaded SIMD wasm build, its logical-core count answered as 2·threads. */
async function loadThreadedWasm(threads: number): Promise<WasmModule> {
  const mainScript = require.resolve(`${BUILD}.js`);
  const binary = readFileSync(require.resolve(`${BUILD}.wasm`));
  const worker = workerScript();
  const factory = require(mainScript) as ((cfg: object) => Promise<WasmModule>) & { default?: unknown };
  // The emscripten glue adds process-wide uncaughtException / unhandledRejection listeners that
  // rethrow; the entry point's own handlers decide what an error does, so those are taken off again.
  const before = listeners();
  try {
    const module = await (typeof factory.default === 'function' ? factory.default as typeof factory : factory)({
      locateFile: (path: string) => (path.endsWith('.worker.js') ? worker : path),
      mainScriptUrlOrBlob: mainScript,
      instantiateWasm(imports: { env: Record<string, unknown> }, receive: (i: unknown, m: unknown) => void) {
        imports.env.emscripten_num_logical_cores = () => 2 * threads;
        WebAssembly.instantiate(binary, imports as WebAssembly.Imports).then((r) => receive(r.instance, r.module));
        return {};
      },
    });
    module.tfjs = {
      init: module.cwrap('init', null, []),
      initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
      getThreadsCount: module.cwrap('get_threads_count', 'number', []),
      registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
      disposeData: module.cwrap('dispose_data', null, ['number']),
      dispose: module.cwrap('dispose', null, []),
    };
    return module;
  } finally {
    for (const l of process.listeners('uncaughtException')) {
      if (!before.uncaught.includes(l)) process.removeListener('uncaughtException', l);
    }
    for (const l of process.listeners('unhandledRejection')) {
      if (!before.rejection.includes(l)) process.removeListener('unhandledRejection', l);
    }
  }
}

function listeners() {
  return { uncaught: process.listeners('uncaughtException'), rejection: process.listeners('unhandledRejection') };
}

/**
 * The pthread worker script as a file (content-addressed, so concurrent processes agree on it). The
 * script is shipped as a template string whose "\n" escapes became newlines; they are escaped back,
 * as tfjs does before making its Blob.
 */
function workerScript(): string {
  const { wasmWorkerContents } = require(`${BUILD}.worker.js`) as { wasmWorkerContents: string };
  const source = wasmWorkerContents.replace(/\n/g, '\\n');
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const path = join(tmpdir(), `aes-tfjs-wasm-worker-${hash}.cjs`);
  if (!existsSync(path)) {
    const partial = `${path}.${process.pid}.tmp`;
    try {
      writeFileSync(partial, source);
      renameSync(partial, path);
    } catch (e) {
      throw new Error(`threaded wasm needs a writable temporary directory (${tmpdir()}) for its worker script: ` +
        `${e instanceof Error ? e.message : String(e)}; use --threads 1`);
    }
  }
  return path;
}
