/**
 * EntropicMultiHeadAttention and multiHeadAttention: projections against an independent tf
 * computation, KV-cache decoding, use in tf.sequential / tf.model, training, save/load round trip
 * (learned α and AES state included), config errors, leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileSystemIO } from '@aes/node';
import { expect, it } from 'vitest';
import { attention, EntropicMultiHeadAttention, multiHeadAttention, type NormaliserSpec } from '../src/index.js';
import { describeAllBackends, expectClose, expectNoLeak, values } from './helpers.js';

const [B, T, D, H, d] = [2, 6, 12, 3, 4];

async function roundTrip(model: tf.LayersModel): Promise<tf.LayersModel> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return tf.loadLayersModel(tf.io.fromMemory(saved!));
}

describeAllBackends('EntropicMultiHeadAttention', () => {
  const x = () => tf.randomNormal([B, T, D], 0, 1, 'float32', 7);

  it('equals projections + attention() computed independently (batched matMul)', async () => {
    const layer = new EntropicMultiHeadAttention({
      numHeads: H,
      keyDim: d,
      causal: true,
      normaliser: ['softmax', 'sparsemax', 'entmax15'],
    });
    const xs = x();
    const y = layer.apply(xs) as tf.Tensor;
    const [wq, wk, wv, wo, bq, bk, bv, bo] = layer.getWeights();
    const heads = (w: tf.Tensor, b: tf.Tensor) =>
      tf.transpose(
        tf.reshape(tf.add(tf.matMul(xs, tf.tile(tf.expandDims(w, 0), [B, 1, 1])), b), [B, T, H, d]),
        [0, 2, 1, 3],
      );
    const att = attention(heads(wq, bq), heads(wk, bk), heads(wv, bv), {
      causal: true,
      normaliser: ['softmax', 'sparsemax', 'entmax15'],
    }).output;
    const merged = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B * T, H * d]);
    const expected = tf.reshape(tf.add(tf.matMul(merged, wo), bo), [B, T, D]);
    expectClose(await values(y), await values(expected), 1e-5);
  });

  const cached: NormaliserSpec[] = [
    'softmax',
    'sparsemax',
    'entmax15',
    'alpha=1.3',
    'learned',
    'aes-row',
    'ssmax',
    'asentmax',
    { asentmax: { alpha: 'learned' } },
    'adaptive-temp',
  ];
  for (const spec of cached) {
    it(`${JSON.stringify(spec)}: KV-cache decoding, one token at a time, equals the full causal pass`, async () => {
      const layer = new EntropicMultiHeadAttention({
        numHeads: H,
        keyDim: d,
        causal: true,
        normaliser: spec,
        alphaInit: 1.3,
      });
      const xs = x();
      const full = layer.apply(xs) as tf.Tensor;
      const w = layer.getWeights();
      const weights = {
        wq: w[0],
        wk: w[1],
        wv: w[2],
        wo: w[3],
        bq: w[4],
        bk: w[5],
        bv: w[6],
        bo: w[7],
        params: Object.fromEntries(layer.plan.params.map((p, i) => [p.name, w[8 + i]])),
      };
      const cfg = { numHeads: H, keyDim: d, causal: true, plan: layer.plan };
      const state = layer.plan.aesGroups.length ? w[8 + layer.plan.params.length] : undefined;
      let cache;
      const steps: tf.Tensor[] = [];
      for (let t = 0; t < T; t++) {
        const r = multiHeadAttention(tf.slice(xs, [0, t, 0], [B, 1, D]), weights, cfg, {
          cache,
          state,
          aesMode: 'frozen',
        });
        cache = r.present;
        steps.push(r.output);
      }
      expectClose(await values(tf.concat(steps, 1)), await values(full), 2e-5);
    });
  }

  it('trains inside tf.sequential: loss falls, learned α moves and stays in (1, 2), AES state updates', async () => {
    const layer = new EntropicMultiHeadAttention({
      inputShape: [T, D],
      numHeads: H,
      keyDim: d,
      causal: true,
      normaliser: ['learned', 'learned', 'aes'],
    });
    const model = tf.sequential({ layers: [layer] });
    model.compile({ optimizer: tf.train.adam(0.05), loss: 'meanSquaredError' });
    const xs = x();
    const ys = tf.randomNormal([B, T, D], 0, 1, 'float32', 8);
    const before = await layer.alphas();
    expect(before.slice(0, 2)).toEqual([1.5, 1.5]);
    expect(Number.isNaN(before[2])).toBe(true);                       // no AES estimate yet
    const h = await model.fit(xs, ys, { epochs: 20, verbose: 0 });
    const loss = h.history.loss as number[];
    expect(loss[loss.length - 1]).toBeLessThan(0.9 * loss[0]);
    const after = await layer.alphas();
    expect(after.slice(0, 2).every((a) => a > 1 && a < 2)).toBe(true);
    expect(Math.abs(after[0] - 1.5) + Math.abs(after[1] - 1.5)).toBeGreaterThan(1e-3);
    expect(after[2] >= 1 && after[2] <= 2).toBe(true);                 // AES estimate set by training calls
  });

  it('save/load round trip: same outputs, learned α and AES state restored; usable in tf.model', async () => {
    const q = tf.input({ shape: [T, D] });
    const c = tf.input({ shape: [T + 2, 8] });
    const layer = new EntropicMultiHeadAttention({
      numHeads: H,
      keyDim: d,
      outputDim: 5,
      normaliser: ['learned', 'aes', { alpha: 1.7 }],
      alphaInit: 1.2,
    });
    const model = tf.model({ inputs: [q, c], outputs: layer.apply([q, c]) as tf.SymbolicTensor });
    const inputs = [x(), tf.randomNormal([B, T + 2, 8], 0, 1, 'float32', 9)];
    model.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    await model.fit(inputs, tf.zeros([B, T, 5]), { epochs: 2, verbose: 0 }); // moves α, sets the AES state
    const loaded = await roundTrip(model);
    const predicted = await values(model.predict(inputs) as tf.Tensor);
    expectClose(await values(loaded.predict(inputs) as tf.Tensor), predicted, 0);
    const restored = loaded.layers.find((l) => l instanceof EntropicMultiHeadAttention) as EntropicMultiHeadAttention;
    expect(await restored.alphas()).toEqual(await layer.alphas());
    expect(restored.weights.some((w) => /aes_zeta/.test(w.name))).toBe(true);
    expect(restored.getConfig()).toMatchObject({ numHeads: H, keyDim: d, outputDim: 5, alphaInit: 1.2 });
  });

  it('config errors are clear; no leaked tensors across 100 calls', async () => {
    expect(() => new EntropicMultiHeadAttention({ numHeads: 0, keyDim: 4 })).toThrow(/numHeads/);
    expect(
      () => new EntropicMultiHeadAttention({ numHeads: 2, keyDim: 4, normaliser: 'tanh' as NormaliserSpec }),
    ).toThrow(/unknown attention normaliser/);
    expect(() => new EntropicMultiHeadAttention({ numHeads: 2, keyDim: 4, normaliser: ['softmax'] })).toThrow(
      /1 normalisers for 2 heads/,
    );
    expect(() => new EntropicMultiHeadAttention({ numHeads: 2, keyDim: 4, alphaInit: 2 })).toThrow(/alphaInit/);
    expect(() => new EntropicMultiHeadAttention({ numHeads: 2, keyDim: 4, kernelInitializer: 'magic' })).toThrow(
      /kernelInitializer/,
    );
    const layer = new EntropicMultiHeadAttention({
      numHeads: H,
      keyDim: d,
      causal: true,
      normaliser: ['learned', 'aes', 'sparsemax'],
    });
    const xs = x();
    await expectNoLeak(() => tf.dispose(layer.apply(xs) as tf.Tensor), 100);
    await expectNoLeak(() => {
      const r = layer.callWithStats(xs, { training: true, returnStats: true });
      tf.dispose([r.output, ...Object.values(r.stats!)]);
    }, 20);
  });
});

describeAllBackends('EntropicMultiHeadAttention serialisation', () => {
  // Every normaliser kind and every AES option, strings with capitals and symbols included.
  const specs: NormaliserSpec[] = [
    'softmax', 'sparsemax', 'entmax15', 'alpha=1.3', 'learned', 'aes', 'aes-row', 'ssmax', 'asentmax', 'adaptive-temp',
    { alpha: 2.5 }, { alpha: 'learned' }, { ssmax: { init: 0.4 } }, { asentmax: { alpha: 'learned', delta: 0.5 } },
    { aes: { per: 'row', scale: 'log-n', width: 'min(1, V / 2)', learn: true } },
    { aes: { S0: 0.2, Smax: 0.9, zmax: 2, shape: 'zmax * ((Smax - S) / (Smax - S0))^2' } },
    { aes: { shape: 'logistic', varentropyThreshold: 0.3, momentum: 0.25, measureOn: 'output', gradient: 'schedule' } },
  ];
  const input = () => tf.randomNormal([2, 5, 8], 0, 1, 'float32', 11);

  it('every normaliser kind and AES option survives memory and file round trips exactly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aes-layer-'));
    try {
      for (const [i, normaliser] of [...specs.map((s) => [s] as NormaliserSpec[]), specs].entries()) {
        const H = normaliser.length;
        const args = { inputShape: [5, 8], numHeads: H, keyDim: 4, causal: true, normaliser };
        const layer = new EntropicMultiHeadAttention(args);
        const model = tf.sequential({ layers: [layer] });
        layer.callWithStats(input(), { training: true });                // sets the AES state
        const expected = model.predict(input()) as tf.Tensor;
        for (const via of ['memory', 'file'] as const) {
          const io = fileSystemIO(join(dir, `m${i}`));
          if (via === 'file') await model.save(io);
          const loaded = via === 'memory' ? await roundTrip(model) : await tf.loadLayersModel(io);
          const restored = loaded.layers[0] as EntropicMultiHeadAttention;
          expect(restored.plan.specs).toEqual(normaliser);               // strings exactly as given
          expectClose(await values(loaded.predict(input()) as tf.Tensor), await values(expected), 1e-6);
          expect(await restored.alphas()).toEqual(await layer.alphas());
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an invalid formula fails in the constructor, with the reason', async () => {
    const make = (shape: string) => () =>
      new EntropicMultiHeadAttention({ numHeads: 1, keyDim: 4, normaliser: { aes: { shape } } });
    expect(make('zmax * (S -')).toThrow(/cannot parse formula/);
    expect(make('zmax * S')).toThrow(/not monotone|misses the endpoint/);
  });
});
