/**
 * Backend selection, for entry points only (CLI, experiments, benches, tests). Library functions
 * never call this: they run on whatever backend the caller set.
 *
 * - `wasm` (default): @tensorflow/tfjs-backend-wasm, SIMD, on `threads` threads (default: one per core;
 *   1 is tfjs's own single-threaded build; more load its threaded build through wasm_threads.ts).
 * - `cpu`: plain JavaScript; slow, used for semantics tests.
 * - `webgpu`: @tensorflow/tfjs-backend-webgpu on Dawn (the `webgpu` package), when a GPU adapter
 *   exists (NVIDIA through Vulkan was verified); tfjs only self-registers it in browsers.
 * - `tensorflow` / `tensorflow-gpu`: @tensorflow/tfjs-node(-gpu) when it happens to be installed.
 *   It is not a dependency: its install step downloads libtensorflow, which fails offline.
 * - `auto`: the first that works of tensorflow-gpu, webgpu, tensorflow, wasm, cpu.
 */
import * as tf from '@tensorflow/tfjs';
import { availableParallelism } from 'node:os';
import { MAX_WASM_THREADS, threadedWasmBackend } from './wasm_threads.js';

export const BACKEND_NAMES = ['auto', 'wasm', 'cpu', 'webgpu', 'tensorflow', 'tensorflow-gpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
const AUTO_ORDER: BackendName[] = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'];

/** What `selectBackend` did: the active tfjs backend and why the others were skipped. */
export interface BackendChoice {
  /** The name asked for. */
  requested: BackendName;
  /** Our name of the backend now active. */
  name: Exclude<BackendName, 'auto'>;
  /** tfjs's name of it (`tf.getBackend()`). */
  tfName: string;
  /** Details worth logging (SIMD, adapter, …). */
  detail: string;
  /** Backends tried before it, with the reason each was unavailable. */
  skipped: Array<{ name: BackendName; reason: string }>;
  /** wasm only: the threads its pool really has. */
  threads?: number;
}

/** Options of `selectBackend`. */
export interface BackendOptions {
  /**
   * wasm only: threads of the XNNPACK pool (1 … 8; default: one per core, at most 8). Asking for a
   * different count than the active wasm backend has replaces that backend: its tensors are lost.
   */
  threads?: number;
}

/**
 * Makes a backend active and reports which. A backend that cannot run throws an Error naming it and
 * the reason, except under `auto`, which falls back and lists what it skipped.
 * @example
 * const b = await selectBackend('auto');
 * console.log(`backend ${b.name} (${b.detail})`);
 */
export async function selectBackend(
  requested: BackendName = 'wasm', opts: BackendOptions = {},
): Promise<BackendChoice> {
  if (!(BACKEND_NAMES as readonly string[]).includes(requested)) {
    throw new RangeError(`unknown backend '${String(requested)}'; choose one of ${BACKEND_NAMES.join(', ')}`);
  }
  const threads = opts.threads ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS) {
    throw new RangeError(`threads must be an integer in 1 … ${MAX_WASM_THREADS}, got ${threads}`);
  }
  const order = requested === 'auto' ? AUTO_ORDER : [requested];
  const skipped: BackendChoice['skipped'] = [];
  for (const name of order) {
    try {
      const active = name as Exclude<BackendName, 'auto'>;
      const { detail, threads: pool } = await activate(active, threads);
      const choice: BackendChoice = { requested, name: active, tfName: tf.getBackend(), detail, skipped };
      if (pool !== undefined) choice.threads = pool;
      return choice;
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      if (requested !== 'auto') throw new Error(`backend '${name}' is unavailable: ${reason}`);
      skipped.push({ name, reason });
    }
  }
  throw new Error(`no backend could start: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
}

/** One thread per core (what the machine lets this process use), at most tfjs's pool size. */
export function defaultThreads(): number {
  return Math.max(1, Math.min(MAX_WASM_THREADS, availableParallelism()));
}

/** Makes `name` active; says how (and, for wasm, with how many threads). */
async function activate(
  name: Exclude<BackendName, 'auto'>, threads: number,
): Promise<{ detail: string; threads?: number }> {
  switch (name) {
    case 'cpu':
      await use('cpu');
      return { detail: 'plain JavaScript' };
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      registerWasm(threads);
      await use('wasm');
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      const n = wasm.getThreadsCount();
      return { detail: `SIMD ${simd ? 'on' : 'off'}, ${n === 1 ? 'single thread' : `${n} threads`}`, threads: n };
    }
    case 'webgpu':
      return { detail: await useWebGPU() };
    case 'tensorflow':
    case 'tensorflow-gpu': {
      const pkg = name === 'tensorflow' ? '@tensorflow/tfjs-node' : '@tensorflow/tfjs-node-gpu';
      try {
        await import(/* @vite-ignore */ pkg);                          // registers 'tensorflow'
      } catch (e) {
        throw new Error(
          `${pkg} is not installed (it is optional; its install downloads libtensorflow): ${firstLine(e)}`,
        );
      }
      await use('tensorflow');
      return { detail: pkg };
    }
  }
}

type Factory = NonNullable<ReturnType<typeof tf.findBackendFactory>>;
/** tfjs's own (single-threaded) wasm factory, and the thread count of the factory now registered. */
let singleThreadFactory: Factory | undefined;
let registeredThreads = 1;

/** Registers the wasm factory for `threads`, replacing an active wasm backend of another count. */
function registerWasm(threads: number): void {
  singleThreadFactory ??= tf.findBackendFactory('wasm')!;
  if (threads === registeredThreads) return;
  tf.removeBackend('wasm');                                              // disposes it if it was started
  const factory: Factory = threads === 1 ? singleThreadFactory : () => threadedWasmBackend(threads);
  tf.registerBackend('wasm', factory, 2);
  registeredThreads = threads;
}

async function use(tfName: string): Promise<void> {
  const ok = await tf.setBackend(tfName);
  if (!ok) throw new Error(`tf.setBackend('${tfName}') failed`);
  await tf.ready();
}

/** Dawn in Node: install the WebGPU globals, find an adapter, register tfjs-backend-webgpu on it. */
async function useWebGPU(): Promise<string> {
  let dawn: { create: (opts: string[]) => GPU; globals: object };
  try {
    dawn = (await import('webgpu')) as unknown as typeof dawn;
  } catch (e) {
    throw new Error(`the Dawn addon (npm 'webgpu') did not load: ${firstLine(e)}`);
  }
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create([]);
  // tfjs-backend-webgpu checks navigator.gpu, which Node does not have (Node 20 has no navigator).
  const g = globalThis as unknown as { navigator?: { gpu?: GPU } };
  if (!g.navigator) g.navigator = { gpu };
  else if (!g.navigator.gpu) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('no GPU adapter found (Dawn/Vulkan sees no GPU on this machine)');
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  if (!tf.findBackendFactory('webgpu')) {
    tf.registerBackend('webgpu', async () => {
      const lim = adapter.limits;
      const device = await adapter.requestDevice({
        requiredFeatures: adapter.features.has('timestamp-query') ? ['timestamp-query'] : [],
        requiredLimits: {
          maxComputeWorkgroupStorageSize: lim.maxComputeWorkgroupStorageSize,
          maxComputeWorkgroupsPerDimension: lim.maxComputeWorkgroupsPerDimension,
          maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
          maxBufferSize: lim.maxBufferSize,
          maxComputeWorkgroupSizeX: lim.maxComputeWorkgroupSizeX,
          maxComputeInvocationsPerWorkgroup: lim.maxComputeInvocationsPerWorkgroup,
        },
      });
      return new WebGPUBackend(device, adapter.info);
    }, 3);
  }
  await use('webgpu');
  const info = adapter.info;
  return [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'GPU adapter';
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}
