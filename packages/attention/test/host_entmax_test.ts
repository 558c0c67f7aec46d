/**
 * hostEntmax, the α-entmax row kernel on the memory of the wasm and cpu backends: known values and
 * edge cases, the float64 reference (entmaxRef), gradients in x and α against the float64 Jacobian
 * and α-derivative and against finite differences, no reads of whole tensors through readSync on
 * wasm, no leaks, and entmax()'s dispatch of a head's one α to it.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '@aes/node';
import { entmax, entmaxBisect, hostEntmax, hostEntmaxAvailable } from '../src/index.js';
import { directional, expectClose, expectNoLeak, randomRows } from './helpers.js';
import { dot, entmax15Ref, entmaxAlphaDerivRef, entmaxJvpRef, entmaxRef, sparsemaxRef } from './reference.js';

const run = (x: number[][], a: number | tf.Tensor) =>
  tf.tidy(() => hostEntmax(tf.tensor2d(x), a).arraySync() as number[][]);
const ALPHAS = [1.01, 1.2, 1.5, 1.75, 2, 2.5, 4];

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`hostEntmax [${backend}]`, () => {
    beforeAll(async () => { await selectBackend(backend); });

    it('runs here and gives the values of the reference library', () => {
      expect(hostEntmaxAvailable()).toBe(true);
      expectClose(run([[2, 1, -1]], 1.5)[0], [0.8307, 0.1693, 0], 1e-4);
      expectClose(run([[0.5, 0.5, 0.5, 0.5]], 1.3)[0], [0.25, 0.25, 0.25, 0.25], 1e-7);
    });

    it('equals the float64 reference for every α, masked entries included', () => {
      const rows = randomRows(3, 12, 37, 2);
      rows[1][5] = rows[1][9] = -Infinity;
      for (const a of ALPHAS) {
        const got = run(rows, a);
        rows.forEach((r, i) => expectClose(got[i], entmaxRef(r, a), 2e-6));
      }
      const wide = randomRows(4, 3, 4096, 3);
      wide.forEach((r, i) => expectClose(run(wide, 1.3)[i], entmaxRef(r, 1.3), 2e-6));
    });

    it('equals the closed forms at α = 1.5 and 2', () => {
      const rows = randomRows(5, 6, 20, 3);
      rows.forEach((r, i) => {
        expectClose(run(rows, 1.5)[i], entmax15Ref(r), 1e-6);
        expectClose(run(rows, 2)[i], sparsemaxRef(r), 1e-6);
      });
    });

    it('edge cases: length 1, fully masked, NaN/+∞ rows, huge α, α below the floor, bad α', () => {
      expect(run([[3.5]], 1.7)).toEqual([[1]]);
      expect(run([[-Infinity, -Infinity]], 1.7)).toEqual([[0, 0]]);
      const bad = run([[1, NaN, 2], [1, Infinity, 0], [1, 2, 3]], 1.7);
      expect(bad[0].every(Number.isNaN) && bad[1].every(Number.isNaN)).toBe(true);
      expectClose(bad[2], entmaxRef([1, 2, 3], 1.7), 1e-6);
      expectClose(run([[1, 2.5, 2.4999]], 1e6)[0], [0, 1, 0], 1e-6);   // → argmax
      const below = tf.tidy(() => hostEntmax(tf.tensor2d([[0, 1]]), tf.scalar(0.5)).arraySync() as number[][]);
      expectClose(below[0], entmaxRef([0, 1], 1), 1e-5);                 // raised to 1 + 1e-6: softmax
      expect(() => run([[1, 2]], 1)).toThrow(/alpha must be finite and > 1/);
      expect(() => run([[1, 2]], NaN)).toThrow(/alpha must be finite and > 1/);
      expect(() => run([[1, 2]], tf.tensor1d([1.5, 1.6]))).toThrow(/one float32 value/);
    });

    it('gradient in x: the float64 Jacobian, and a finite difference', async () => {
      const rows = randomRows(6, 4, 15, 2);
      rows[2][3] = -Infinity;
      const dy = randomRows(7, 4, 15);
      for (const a of [1.2, 1.5, 2, 3]) {
        const dx = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(hostEntmax(x, a), dy)))(tf.tensor2d(rows))
          .arraySync() as number[][]);
        rows.forEach((r, i) => expectClose(dx[i], entmaxJvpRef(entmaxRef(r, a), a, dy[i]), 2e-5));
      }
      // Finite differences in the visible entries: x carries the scores, the mask is added in f.
      const finite = (r: number[][], masked: number) => r.map((q) => q.map((z) => (z === -Infinity ? masked : z)));
      const [x, v, w] = [finite(rows, 0), finite(randomRows(8, 4, 15), 0), dy].map((r) => tf.tensor2d(r));
      const mask = tf.tensor2d(rows.map((q) => q.map((z) => (z === -Infinity ? z : 0))));
      const f = (z: tf.Tensor) => tf.sum(tf.mul(hostEntmax(tf.add(z, mask), 1.4), w));
      const g = tf.tidy(() => tf.grad(f)(x));
      expect(await directional(f, x, v)).toBeCloseTo(tf.sum(tf.mul(g, v)).dataSync()[0], 2);
      tf.dispose([x, v, w, g, mask]);
    });

    it('gradient in α: the float64 derivative, and a finite difference', async () => {
      const rows = randomRows(9, 5, 25, 2);
      const dy = randomRows(10, 5, 25);
      for (const a of [1.05, 1.3, 1.5, 1.9, 2.5]) {
        const f = (al: tf.Tensor) => tf.sum(tf.mul(hostEntmax(tf.tensor2d(rows), al), dy));
        const da = tf.tidy(() => tf.grad(f)(tf.scalar(a)).dataSync()[0]);
        const ref = rows.reduce((s, r, i) => s + dot(entmaxAlphaDerivRef(r, a), dy[i]), 0);
        expect(Math.abs(da - ref)).toBeLessThanOrEqual(2e-3 * Math.max(1, Math.abs(ref)));
        const al = tf.scalar(a);
        expect(await directional(f, al, tf.scalar(1), 1e-2)).toBeCloseTo(da, 1);
        al.dispose();
      }
    });

    it('leaks no tensors, forward and backward', async () => {
      const x = tf.tensor2d(randomRows(11, 3, 9));
      const al = tf.scalar(1.6);
      const g = tf.grads((z: tf.Tensor, a: tf.Tensor) => tf.sum(tf.square(hostEntmax(z, a))));
      await expectNoLeak(() => tf.tidy(() => { g([x, al]); }));
      tf.dispose([x, al]);
    });

    it("entmax() sends a head's one α here and agrees with entmaxBisect", () => {
      const x = tf.tensor3d([randomRows(12, 4, 30, 2)]);
      const [viaEntmax, direct, bisect] = tf.tidy(() => [entmax(x, tf.scalar(1.37)), hostEntmax(x, tf.scalar(1.37)),
        entmaxBisect(x, tf.scalar(1.37), { solver: 'bisect' })].map((t) => Array.from(t.dataSync())));
      expect(viaEntmax).toEqual(direct);
      expectClose(direct, bisect, 1e-5);
      x.dispose();
    });
  });
}

describe('hostEntmax on the wasm heap', () => {
  beforeAll(async () => { await selectBackend('wasm'); });

  it('reads no tensor larger than α through readSync, forward or backward', () => {
    const b = tf.backend() as unknown as { readSync: (id: object, s?: number, e?: number) => ArrayLike<number> };
    const orig = b.readSync;
    const sizes: number[] = [];
    b.readSync = (id, s, e) => { const r = orig.call(b, id, s, e); sizes.push(r.length); return r; };
    const x = tf.tensor2d(randomRows(13, 64, 128));
    try {
      tf.tidy(() => tf.grads((z: tf.Tensor, a: tf.Tensor) => tf.sum(tf.square(hostEntmax(z, a))))([x, tf.scalar(1.6)]));
    } finally {
      b.readSync = orig;
      x.dispose();
    }
    expect(sizes.length).toBeGreaterThan(0);                 // α was read: the spy saw the kernel
    expect(sizes.every((n) => n <= 1)).toBe(true);
  });
});
