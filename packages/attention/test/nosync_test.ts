/**
 * The read-free paths taken on device backends (webgpu, where `dataSync` is impossible in Node),
 * exercised here on a clone of the cpu backend whose synchronous reads throw (@aes/node): every
 * op and attention() must run without one and agree with the cpu backend.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attention,
  EntropicMultiHeadAttention,
  entmax15,
  entmaxBisect,
  entmaxBisectLoss,
  logitStats,
  softmax,
  sparsemax,
  sparsemaxLoss,
  type NormaliserSpec,
} from '../src/index.js';
import { registerNoSyncBackend } from '@aes/node';
import { expectClose, randomRows } from './helpers.js';

const NOSYNC = 'nosync';

async function onBoth(f: () => tf.Tensor[]): Promise<[number[][], number[][]]> {
  await tf.setBackend('cpu');
  const ref = f().map((t) => Array.from(t.dataSync()));
  await tf.setBackend(NOSYNC);
  const got = await Promise.all(f().map(async (t) => Array.from(await t.data())));
  return [got, ref];
}

describe('read-free paths (a no-sync clone of cpu)', () => {
  let remove: () => void;
  beforeAll(async () => { await tf.setBackend('cpu'); remove = registerNoSyncBackend(NOSYNC); });
  afterAll(async () => { await tf.setBackend('cpu'); remove(); });

  it('the clone really refuses synchronous reads', async () => {
    await tf.setBackend(NOSYNC);
    expect(() => tf.ones([2]).dataSync()).toThrow(/synchronous read/);
  });

  it('maps (with masked and special rows), gradients, α-gradients, losses and logitStats agree with cpu', async () => {
    const rows = [...randomRows(1, 5, 40, 2), Array(40).fill(-Infinity), [NaN, ...Array(39).fill(0)]];
    const x = () => tf.tensor2d(rows);
    const dy = () => tf.tensor2d(randomRows(2, 7, 40, 1));
    for (const f of [
      softmax,
      sparsemax,
      entmax15,
      (z: tf.Tensor) => entmaxBisect(z, 1.5),
      (z: tf.Tensor) => entmaxBisect(z, tf.scalar(1.3)),
    ]) {
      const [got, ref] = await onBoth(() => [f(x()), tf.grad(f)(x(), dy())]);
      got.forEach((g, i) => expectClose(g, ref[i], 1e-6));
    }
    const clean = () => tf.tensor2d(randomRows(3, 6, 9, 2));
    const y = () => tf.tensor1d([0, 8, 3, -100, 2, 2], 'int32');
    const [got, ref] = await onBoth(() => {
      const a = tf.tensor2d([1.1, 1.3, 1.5, 1.7, 2, 2.4], [6, 1]);
      const [gz, ga] = tf.grads((z: tf.Tensor, al: tf.Tensor) => tf.sum(entmaxBisectLoss(z, y(), al)))([clean(), a]);
      const st = logitStats(clean());
      return [sparsemaxLoss(clean(), y()), gz, ga, st.entropy, st.varentropy];
    });
    got.forEach((g, i) => expectClose(g, ref[i], 1e-5));
  });

  it('attention with every non-AES normaliser (and its gradient) agrees with cpu', async () => {
    const shape = [2, 5, 6, 4];
    const t = (s: number) => tf.tensor4d(randomRows(s, 60, 4, 1.5).flat(), shape as [number, number, number, number]);
    const specs: NormaliserSpec[] = ['softmax', 'sparsemax', 'entmax15', 'alpha=1.3', 'learned'];
    const [got, ref] = await onBoth(() => {
      const f = (q: tf.Tensor) =>
        attention(q, t(2), t(3), { causal: true, normaliser: specs, alphaRaw: tf.tensor1d([0, 0, 0, 0, 0.7]) }).output;
      return [f(t(1)), tf.grad(f)(t(1))];
    });
    got.forEach((g, i) => expectClose(g, ref[i], 1e-5));
  });

  it('AES heads run read-free (gate and ζ on the device), agreeing with cpu over successive calls', async () => {
    const shape = [2, 5, 6, 4];
    const t = (s: number, scale = 1.5) =>
      tf.tensor4d(randomRows(s, 60, 4, scale).flat(), shape as [number, number, number, number]);
    const specs: NormaliserSpec[] = [
      { aes: { varentropyThreshold: 0 } },
      { aes: { varentropyThreshold: 100 } },
      'softmax',
      { aes: { gradient: 'schedule', measureOn: 'output' } },
      { aes: { S0: 0.2, Smax: 0.6 } },
    ];
    const keyMask = () =>
      tf.tensor2d([
        [1, 1, 1, 1, 1, 1],
        [1, 1, 0, 1, 1, 0],
      ]);
    const [got, ref] = await onBoth(() => {
      const out: tf.Tensor[] = [];
      let state: tf.Tensor | undefined;
      for (const [i, mode] of (['auto', 'auto', 'auto', 'frozen'] as const).entries()) {
        const args = { causal: true, keyMask: keyMask(), normaliser: specs, state, aesMode: mode };
        const f = (q: tf.Tensor) => attention(q, t(2 + i), t(3), args).output;
        const r = attention(t(1 + i, 1 + i), t(2 + i), t(3), args);
        out.push(r.output, tf.grad(f)(t(1 + i, 1 + i)));
        state = r.state!;
        out.push(state);
      }
      return out;
    });
    got.forEach((g, i) => expectClose(g, ref[i], 2e-5));
    const zetas = ref.filter((_, i) => i % 3 === 2);
    expect(zetas[0].filter(Number.isFinite).length).toBe(4); // every AES head has an estimate
    expect(new Set(zetas.map((z) => z.map((x) => x.toFixed(6)).join())).size).toBeGreaterThan(1); // and some move
    await tf.setBackend(NOSYNC);
    expect(attention(t(1), t(2), t(3), { normaliser: 'aes' }).modes).toEqual(Array(5).fill('device'));
  });

  it('the layer keeps its AES running ζ on the device: training calls update it as on cpu', async () => {
    const x = () => tf.tensor3d(randomRows(7, 2 * 6, 8, 2).flat(), [2, 6, 8]);
    const [got, ref] = await onBoth(() => {
      const layer = new EntropicMultiHeadAttention({
        numHeads: 2,
        keyDim: 4,
        causal: true,
        normaliser: ['aes', { aes: { varentropyThreshold: 0 } }],
      });
      layer.build([2, 6, 8]);
      layer.setWeights(layer.getWeights().map((w, i) => (/aes_zeta/.test(layer.weights[i].name) ? w
        : tf.tensor(randomRows(40 + i, 1, w.size, 0.5)[0], w.shape))));
      const outs = [0, 1, 2].map(() => layer.callWithStats(x(), { training: true }).output);
      outs.push(layer.callWithStats(x()).output);
      return [...outs, layer.weights.find((w) => /aes_zeta/.test(w.name))!.read()];
    });
    got.forEach((g, i) => expectClose(g, ref[i], 2e-5));
    expect(ref[ref.length - 1].every(Number.isFinite)).toBe(true);
  });
});
