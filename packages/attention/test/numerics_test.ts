/** The accuracy helpers against float64 JavaScript on every backend (wasm's log1p, webgpu's expm1 are inexact). */
import * as tf from '@tensorflow/tfjs';
import { it } from 'vitest';
import { expm1, log1p, phi, psi } from '../src/numerics.js';
import { describeAllBackends, expectClose, values } from './helpers.js';

const T = [-0.999, -0.5, -0.09, -3e-3, -1e-6, -1e-9, 0, 1e-9, 1e-6, 4e-3, 0.099, 0.2, 3];

describeAllBackends('numerics', () => {
  it('log1p is accurate to 1e-6 relative down to 1e-9', async () => {
    expectClose(await values(log1p(tf.tensor1d(T))), T.map((t) => Math.log1p(Math.fround(t))), 0, 1e-6);
    expectClose(await values(log1p(tf.tensor1d([-1]))), [-Infinity], 0);
  });
  it('expm1 is accurate to 1e-6 relative down to 1e-9; −1 at −∞', async () => {
    const wide = [...T, -30, 20];
    expectClose(await values(expm1(tf.tensor1d(wide))), wide.map((t) => Math.expm1(Math.fround(t))), 0, 1e-6);
    expectClose(await values(expm1(tf.tensor1d([-Infinity]))), [-1], 0);
  });
  it('φ(t) = log1p(t) − t/(1+t) and ψ(a) = a eᵃ − expm1(a) match float64 on both sides of the series cut', async () => {
    const phiRef = (t: number) => Math.log1p(t) - t / (1 + t);
    const psiRef = (a: number) => a * Math.exp(a) - Math.expm1(a);
    // float64 itself cancels below ~1e-4; compare there against the leading terms.
    const big = T.filter((t) => Math.abs(t) > 1e-3);
    expectClose(await values(phi(tf.tensor1d(big))), big.map((t) => phiRef(Math.fround(t))), 1e-12, 2e-5);
    expectClose(await values(psi(tf.tensor1d(big))), big.map((a) => psiRef(Math.fround(a))), 1e-12, 2e-5);
    const small = [1e-6, -1e-6, 3e-5];
    expectClose(await values(phi(tf.tensor1d(small))), small.map((t) => t * t / 2 - 2 * t ** 3 / 3), 0, 1e-5);
    expectClose(await values(psi(tf.tensor1d(small))), small.map((a) => a * a / 2 + a ** 3 / 3), 0, 1e-5);
  });
});
