/**
 * The webgpu-only paths, on the GPU adapter the test helper found (the software GPU on CI):
 * - `maskedSoftmax`'s kernel (fused/softmax_rows.ts) against a float64 reference and against the
 *   composite it replaces on cpu, values and gradients, causal offsets, masked and invalid rows, a
 *   KV-cache row (T = 1), long rows (the 256-thread layout);
 * - what one `attention()` call costs on the device, counted by @aes/node's `countWebGPUWork`:
 *   softmax attention dispatches no more programs than the plain tfjs composite + 2 and moves no data
 *   between host and device beyond its inputs; its output equals that composite's.
 * Without an adapter (outside CI) the suite is skipped, as the helper says.
 */
import * as tf from '@tensorflow/tfjs';
import { countWebGPUWork, selectBackend } from '@aes/node';
import { beforeAll, describe, expect, it } from 'vitest';
import { attention, causalMask } from '../src/index.js';
import { maskedSoftmax, maskedSoftmaxFused } from '../src/fused/softmax_rows.js';
import { directional, expectClose, randomRows, TEST_BACKENDS } from './helpers.js';
import { softmaxRef } from './reference.js';

/** float64 reference: softmax of c·s over the keys j ≤ i + offset of each row i (zeros when none is). */
function maskedRef(rows: number[][], scale: number, offset: number | null): number[][] {
  return rows.map((r, i) => {
    const last = offset === null ? r.length - 1 : Math.min(r.length - 1, i + offset);
    if (r.some((v) => Number.isNaN(v) || v === Infinity)) return r.map(() => NaN);
    const vis = r.slice(0, Math.max(0, last + 1)).map((v) => scale * v);
    if (!vis.some((v) => v > -Infinity)) return r.map(() => 0);
    const p = softmaxRef(vis);
    return r.map((_, j) => (j <= last ? p[j] : 0));
  });
}

async function on(backend: 'cpu' | 'webgpu', f: () => tf.Tensor | tf.Tensor[]): Promise<number[][]> {
  await selectBackend(backend);
  const out = tf.tidy(f);
  const list = Array.isArray(out) ? out : [out];
  const read = await Promise.all(list.map(async (t) => Array.from(await t.data())));
  tf.dispose(list);
  return read;
}

describe.skipIf(!TEST_BACKENDS.includes('webgpu'))('webgpu: masked softmax kernel and attention traffic', () => {
  beforeAll(async () => { await selectBackend('webgpu'); });

  it('the kernel is registered for webgpu only', async () => {
    expect(maskedSoftmaxFused()).toBe(true);
    await selectBackend('cpu');
    expect(maskedSoftmaxFused()).toBe(false);
  });

  const hand = [[1, 2, 3, 4], [0.5, -Infinity, 2, 1], [-Infinity, -Infinity, 1, 2], [NaN, 1, 2, 3],
    [3, 2, 1, Infinity]];
  for (const offset of [null, 0, 1, -1, 3]) {
    it(`known rows, offset ${offset}: float64 reference, cpu composite, gradients`, async () => {
      const x = () => tf.tensor2d(hand);
      const w = () => tf.tensor2d(randomRows(3, hand.length, 4));
      const f = (t: tf.Tensor) => tf.sum(tf.mul(maskedSoftmax(t, 0.7, offset), w()));
      const run = () => [maskedSoftmax(x(), 0.7, offset), tf.grad(f)(x())];
      const [gpu, cpu] = [await on('webgpu', run), await on('cpu', run)];
      expectClose(gpu[0], maskedRef(hand, 0.7, offset).flat(), 1e-6, 1e-6);
      expectClose(gpu[0], cpu[0], 1e-7, 1e-6);
      expectClose(gpu[1], cpu[1], 1e-6, 1e-5);
    });
  }

  it('random scores (causal, a KV-cache row, long rows): equal to cpu; gradients by finite differences', async () => {
    const cases: Array<[number[], number | null]> = [[[2, 3, 5, 9], 4], [[2, 3, 1, 9], 8], [[1, 1, 7, 3000], 2990],
      [[1, 2, 4, 6], null]];
    for (const [shape, offset] of cases) {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = randomRows(11, 1, n, 3)[0];
      const w = randomRows(12, 1, n)[0];
      const loss = (t: tf.Tensor) => tf.sum(tf.mul(maskedSoftmax(t, 0.125, offset), tf.tensor(w, shape)));
      const run = () => [maskedSoftmax(tf.tensor(data, shape), 0.125, offset), tf.grad(loss)(tf.tensor(data, shape))];
      const [gpu, cpu] = [await on('webgpu', run), await on('cpu', run)];
      expectClose(gpu[0], cpu[0], 1e-7, 1e-5);
      expectClose(gpu[1], cpu[1], 1e-7, 1e-4);
      if (n > 1000) continue;
      await selectBackend('webgpu');
      const dir = randomRows(13, 1, n)[0];
      const [v, x] = [tf.tensor(dir, shape), tf.tensor(data, shape)];
      const fd = await directional(loss, x, v);
      const dot = dir.reduce((a, vi, i) => a + vi * gpu[1][i], 0);
      expect(Math.abs(fd - dot)).toBeLessThanOrEqual(1e-2 * (1 + Math.abs(dot)));
      tf.dispose([v, x]);
    }
  });

  const PLANS: Array<[string, string[]]> = [
    ['softmax', ['softmax', 'softmax']], ['entmax15', ['entmax15', 'entmax15']],
    ['alpha=1.3', ['alpha=1.3', 'alpha=1.3']],
    ['learned', ['learned', 'learned']], ['learned + sparsemax', ['learned', 'sparsemax']],
  ];
  for (const [name, heads] of PLANS) {
    it(`attention with ${name} heads on the device path: output and gradients (q, k, v, α) equal cpu`, async () => {
      // [B, H, T, d] with T < S: a continued (KV-cache-like) call, and a non-causal one
      for (const [T, S, causal] of [[5, 9, true], [6, 6, false], [1, 7, true]] as const) {
        const [B, H, d] = [2, 2, 4];
        const data = [T, S, S].map((n, i) => randomRows(20 + i, 1, B * H * n * d, 1.5)[0]);
        const w = randomRows(30, 1, B * H * T * d)[0];
        const raw = [0.3, -0.8];
        const run = () => {
          const [q, k, v] = data.map((x, i) => tf.tensor(x, [B, H, i === 0 ? T : S, d]));
          const alphaRaw = tf.tensor1d(raw);
          const att = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, a: tf.Tensor) =>
            attention(qq, kk, vv, { normaliser: heads as never, causal, alphaRaw: a }).output;
          const f = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, a: tf.Tensor) =>
            tf.sum(tf.mul(att(qq, kk, vv, a), tf.tensor(w, [B, H, T, d])));
          const out = attention(q, k, v, { normaliser: heads as never, causal, alphaRaw }).output;
          const g = heads.includes('learned') ? tf.grads(f)([q, k, v, alphaRaw]) :
            tf.grads((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) => f(qq, kk, vv, alphaRaw))([q, k, v]);
          return [out, ...g];
        };
        const [gpu, cpu] = [await on('webgpu', run), await on('cpu', run)];
        gpu.forEach((g, i) => expectClose(g, cpu[i], 1e-5, 1e-4));
      }
    });
  }

  it('softmax attention: ≤ the composite + 2 dispatches, no traffic beyond the inputs, same output', async () => {
    await selectBackend('webgpu');
    const [B, H, T, d] = [1, 8, 128, 64];
    const [q, k, v] = [1, 2, 3].map((s) => tf.tensor(randomRows(s, 1, B * H * T * d)[0], [B, H, T, d]));
    const mask = causalMask(T, T, 0)!;
    tf.tidy(() => [q, k, v, mask].forEach((t) => tf.add(t, 0)));           // inputs on the device
    const composite = () => tf.matMul(tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / 8), mask)), v);
    const ours = () => attention(q, k, v, { normaliser: 'softmax', causal: true }).output;
    const counted = (f: () => tf.Tensor) => {
      tf.tidy(() => { f(); });                                            // compiles, first-use constants
      const c = countWebGPUWork();
      try {
        tf.tidy(() => { f(); });
        return c.counts();
      } finally {
        c.stop();
      }
    };
    const [plain, mine] = [counted(composite), counted(ours)];
    expect(plain.dispatches).toBe(5);                                   // 2 products, scale, mask, softmax
    expect(mine.dispatches).toBeLessThanOrEqual(plain.dispatches + 2);
    expect(mine.uploadBytes).toBe(0);
    expect(mine.downloads).toBe(0);
    // The other device paths, pinned as measured (8 heads): entmax15 3 dispatches (the flash kernels'
    // tile bounds and forward, the output's slice), learned α 7 (α = 1 + sigmoid, its broadcast to the
    // rows, then the same 3); no mask or score matrix is made, only scalars go up.
    const alphaRaw = tf.zeros([H]);
    tf.tidy(() => tf.add(alphaRaw, 0));
    const entmax15 = counted(() => attention(q, k, v, { normaliser: 'entmax15', causal: true }).output);
    const learned = counted(() => attention(q, k, v, { normaliser: 'learned', causal: true, alphaRaw }).output);
    console.log("COUNTS", JSON.stringify([entmax15, learned]));
    expect(entmax15.dispatches).toBeLessThanOrEqual(3);
    expect(learned.dispatches).toBeLessThanOrEqual(7);
    for (const c of [entmax15, learned]) {
      expect(c.uploadBytes).toBeLessThanOrEqual(64);                    // scalars (scale, α constants)
      expect(c.downloads).toBe(0);
    }
    alphaRaw.dispose();
    const [a, b] = [tf.tidy(ours), tf.tidy(composite)];
    expectClose(await a.data(), await b.data(), 1e-6, 1e-4);
    tf.dispose([a, b, q, k, v, mask]);
  });
});
