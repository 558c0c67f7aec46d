/**
 * The GPT on a backend without synchronous reads (@aes/node's no-sync clone of cpu, which stands in
 * for webgpu): training steps with AES heads keep the running ζ on the device, in the model's
 * non-trainable variables, and agree with cpu step for step.
 */
import * as tf from '@tensorflow/tfjs';
import { registerNoSyncBackend } from '@aes/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPT } from '../src/index.js';

const NOSYNC = 'nosync';

/** Five SGD steps of next-token loss on fixed tokens; returns the AES state and logits after each. */
function trainAes(): tf.Tensor[] {
  const gpt = new GPT(
    {
      vocabSize: 12,
      nLayer: 2,
      nHead: 2,
      nEmbd: 16,
      blockSize: 8,
      attention: [
        ['aes', 'softmax'],
        { aes: { varentropyThreshold: 0, S0: 0.5, Smax: 0.95, shape: 'linear', momentum: 1 } },
      ],
    },
    { seed: 3 },
  );
  const x = tf.tensor2d([[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]], [2, 6], 'int32');
  const y = tf.oneHot(tf.tensor1d([2, 3, 4, 5, 6, 7, 5, 4, 3, 2, 1, 0], 'int32'), 12);
  const opt = tf.train.sgd(1);
  const out: tf.Tensor[] = [];
  for (let step = 0; step < 5; step++) {
    opt.minimize(
      () =>
        tf.losses.softmaxCrossEntropy(y, tf.reshape(gpt.forward(x, { training: true }).logits, [12, 12])) as tf.Scalar,
      false,
      [...gpt.weightVariables().values()],
    );
    out.push(tf.clone(gpt.params.get('h0.attn.aes_zeta')!), tf.clone(gpt.params.get('h1.attn.aes_zeta')!));
  }
  out.push(gpt.forward(x).logits);
  gpt.dispose();
  return out;
}

describe('GPT on a no-sync backend', () => {
  let remove: () => void;
  beforeAll(async () => { await tf.setBackend('cpu'); remove = registerNoSyncBackend(NOSYNC); });
  afterAll(async () => { await tf.setBackend('cpu'); remove(); });

  it('AES state after each training step and the final logits equal cpu', async () => {
    await tf.setBackend('cpu');
    const ref = trainAes().map((t) => Array.from(t.dataSync()));
    await tf.setBackend(NOSYNC);
    const got = await Promise.all(trainAes().map(async (t) => Array.from(await t.data())));
    got.forEach((g, i) => g.forEach((v, j) => {
      if (!(Object.is(v, ref[i][j]) || Math.abs(v - ref[i][j]) <= 2e-5 * (1 + Math.abs(ref[i][j]))))
        throw new Error(`output ${i}[${j}]: ${v} vs cpu ${ref[i][j]}`);
    }));
    // After the first step (state NaN before): layer 0's AES head has an estimate, its softmax head
    // none; layer 1's two AES heads have estimates in [0, ζmax].
    expect(ref[0][0]).toBeGreaterThanOrEqual(0);
    expect(Number.isNaN(ref[0][1])).toBe(true);
    for (const z of ref[1]) expect(z >= 0 && z <= 1).toBe(true);
  });
});
