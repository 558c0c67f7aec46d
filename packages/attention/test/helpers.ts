/**
 * Test helpers: run a suite on every backend (like tfjs's describeWithFlags(ALL_ENVS)), seeded
 * random rows, tolerance checks, finite differences and a leak check.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect } from 'vitest';
import { selectBackend } from '@aes/node';
import { mulberry32, randn } from './reference.js';

/** Backends every op suite runs on (webgpu is checked on a GPU machine, see bench/gpu_check.ts). */
export const TEST_BACKENDS = ['cpu', 'wasm'] as const;

export function describeAllBackends(name: string, body: (backend: string) => void): void {
  for (const b of TEST_BACKENDS) {
    describe(`${name} [${b}]`, () => {
      beforeAll(async () => { await selectBackend(b); });
      body(b);
    });
  }
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
export function values(t: tf.Tensor): number[] {
  return Array.from(t.dataSync());
}

/**
 * Central finite difference of a scalar function along direction v: (f(x+hv) − f(x−hv))/2h.
 * f must be scalar-valued; float32, so h ≈ 1e-3 and relative tolerance ≈ 1e-2.
 */
export function directional(f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, v: tf.Tensor, h = 1e-3): number {
  return tf.tidy(() => {
    const up = f(tf.add(x, tf.mul(v, h))).dataSync()[0];
    const dn = f(tf.sub(x, tf.mul(v, h))).dataSync()[0];
    return (up - dn) / (2 * h);
  });
}

/** Runs `fn` a few times and asserts the live tensor count does not change. */
export function expectNoLeak(fn: () => void, repeats = 3): void {
  fn();                                              // first call may create cached constants
  const before = tf.memory().numTensors;
  for (let i = 0; i < repeats; i++) fn();
  expect(tf.memory().numTensors).toBe(before);
}
