/**
 * Test helpers: run a suite on every backend (like tfjs's describeWithFlags(ALL_ENVS)), seeded
 * random rows, tolerance checks, asynchronous reads, finite differences and a leak check.
 *
 * Backends: cpu and wasm always, and webgpu where Dawn finds a GPU adapter (a real GPU, or the
 * software one, Mesa's lavapipe, that `bash scripts/software-gpu.sh` installs). Under CI
 * (`CI=true`) a missing adapter fails the run; elsewhere webgpu is left out with one console line.
 * `AES_TEST_WEBGPU=0` leaves it out on purpose (the software GPU is slow).
 *
 * webgpu in Node cannot read synchronously (`dataSync` / `arraySync` throw there), so suites read
 * tensors only through the async helpers below (`values`, `value`, `read`) and await them.
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, beforeEach, describe, expect } from 'vitest';
import { selectBackend, webgpuForTests } from '@aes/node';
import { mulberry32, randn } from './reference.js';

export type TestBackend = 'cpu' | 'wasm' | 'webgpu';

/** Backends every op suite runs on (webgpu probed once per test file's process, see the header). */
export const TEST_BACKENDS: readonly TestBackend[] = Object.freeze(
  (await webgpuForTests(process.env)) ? ['cpu', 'wasm', 'webgpu'] : ['cpu', 'wasm'],
);

/**
 * `body` once per backend, that backend active. On webgpu small tensors are not forwarded to tfjs's
 * CPU kernels (its default below 1000 entries, `WEBGPU_CPU_FORWARD`), so the suites run the device's
 * own kernels and arithmetic. After each test its leftover tensors are disposed (on the software GPU
 * each live buffer holds one of the process's memory mappings) and the device drains its queue
 * (see `settle`).
 */
export function describeAllBackends(name: string, body: (backend: TestBackend) => void): void {
  for (const b of TEST_BACKENDS) {
    describe(`${name} [${b}]`, () => {
      beforeAll(async () => {
        await selectBackend(b);
        if (b === 'webgpu') tf.env().set('WEBGPU_CPU_FORWARD', false);
      });
      beforeEach(() => { tf.engine().startScope(); });
      afterEach(async () => {
        tf.engine().endScope();
        await settle();
      });
      body(b);
    });
  }
}

/**
 * Waits until the device has run everything submitted (a read waits for the work queued before it);
 * nothing to do on cpu and wasm. Dawn on the software GPU leaks a memory mapping for most staging
 * memory it frees while the device lags behind, and a test file that never waits would exhaust the
 * process's mappings (vm.max_map_count, 65530) and crash.
 */
export async function settle(): Promise<void> {
  if (tf.getBackend() !== 'webgpu') return;
  const t = tf.fill([1], 0);                         // runs on the device: no host values to forward
  await t.data();
  t.dispose();
}

/** `rows × n` standard normal values times `scale`, from a seeded generator. */
export function randomRows(seed: number, rows: number, n: number, scale = 1): number[][] {
  const rng = mulberry32(seed);
  return Array.from({ length: rows }, () => Array.from({ length: n }, () => scale * randn(rng)));
}

/** Asserts |a − e| ≤ atol + rtol·|e| elementwise (same length), naming the first offender. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol = 0): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const [a, e] = [actual[i], expected[i]];
    if (!Object.is(a, e) && !(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      throw new Error(`entry ${i}: got ${a}, expected ${e} (atol ${atol}, rtol ${rtol})`);
    }
  }
}

/** Row-major values of a tensor as a plain array. */
export async function values(t: tf.Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

/** The first (for a scalar, the only) value of a tensor. */
export async function value(t: tf.Tensor): Promise<number> {
  return (await t.data())[0];
}

/**
 * The nested array of the tensor `fn` returns: `fn` runs inside `tf.tidy` (which cannot await), its
 * result is read and then disposed. The caller names the array type, e.g. `read<number[][]>(…)`.
 */
export async function read<A = number[]>(fn: () => tf.Tensor): Promise<A> {
  const t = tf.tidy(fn);
  try {
    return (await t.array()) as A;
  } finally {
    t.dispose();
  }
}

/**
 * Central finite difference of a scalar function along direction v: (f(x+hv) − f(x−hv))/2h.
 * f must be scalar-valued; float32, so h ≈ 1e-3 and relative tolerance ≈ 1e-2.
 */
export async function directional(
  f: (x: tf.Tensor) => tf.Tensor,
  x: tf.Tensor,
  v: tf.Tensor,
  h = 1e-3,
): Promise<number> {
  const [up, dn] = tf.tidy(() => [f(tf.add(x, tf.mul(v, h))), f(tf.sub(x, tf.mul(v, h)))]);
  const [u, d] = await Promise.all([value(up), value(dn)]);
  tf.dispose([up, dn]);
  return (u - d) / (2 * h);
}

/** Runs `fn` a few times and asserts the live tensor count does not change (the device settled after each run). */
export async function expectNoLeak(fn: () => void, repeats = 3): Promise<void> {
  fn();                                              // first call may create cached constants
  await settle();
  const before = tf.memory().numTensors;
  for (let i = 0; i < repeats; i++) {
    fn();
    await settle();
  }
  expect(tf.memory().numTensors).toBe(before);
}
