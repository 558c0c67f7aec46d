/** The strided √n kernel against dense attention under the same (causal, strided) mask. */
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { stridedAttention } from '../src/index.js';
import { describeAllBackends, value } from './helpers.js';

describeAllBackends('stridedAttention', () => {
  it('the strided kernel equals dense attention under the strided mask', async () => {
    for (const n of [9, 30, 64]) {
      const s = Math.ceil(Math.sqrt(n));
      const [q, k, v] = [1, 2, 3].map((seed) => tf.randomNormal([n, 8], 0, 1, 'float32', seed) as tf.Tensor2D);
      const mask = tf.tensor2d(Array.from({ length: n * n }, (_, t) => {
        const [i, j] = [Math.floor(t / n), t % n];
        return j <= i && (j > i - s || j % s === s - 1) ? 0 : -Infinity;
      }), [n, n]);
      const dense = tf.matMul(tf.softmax(tf.add(tf.div(tf.matMul(q, k, false, true), Math.sqrt(8)), mask)), v);
      const got = stridedAttention(q, k, v);
      expect(await value(tf.max(tf.abs(tf.sub(got, dense))))).toBeLessThan(1e-5);
    }
  });
});
