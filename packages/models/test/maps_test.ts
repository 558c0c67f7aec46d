/**
 * attentionMaps: the weights it returns equal a float64 plain-TS softmax / sparsemax of the model's
 * own queries and keys; known values (one token: weight 1); causal zeros above the diagonal; the
 * comparison maps; α of learned heads; support counted from exact zeros; bad tokens; no leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '@aes/node';
import { beforeAll, describe, expect, it } from 'vitest';
import { GPT, attentionMaps } from '../src/index.js';

const small = { vocabSize: 11, nLayer: 2, nHead: 2, nEmbd: 8, blockSize: 12 };
const seq = [1, 5, 2, 9, 3, 3, 7];

function softmax64(s: number[]): number[] {
  const m = Math.max(...s);
  const e = s.map((x) => Math.exp(x - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

/** Sparsemax by sorting (Martins & Astudillo 2016): τ from the largest k with 1 + k z_(k) > Σ_{j≤k} z_(j). */
function sparsemax64(s: number[]): number[] {
  const z = [...s].sort((a, b) => b - a);
  let cum = 0;
  let tau = 0;
  z.forEach((v, i) => {
    cum += v;
    if (1 + (i + 1) * v > cum) tau = (cum - 1) / (i + 1);
  });
  return s.map((x) => Math.max(0, x - tau));
}

/** Float64 causal maps from the model's queries and keys `[1, H, T, d]` of layer `l`. */
async function reference(gpt: GPT, l: number, map: (s: number[]) => number[]): Promise<number[][][]> {
  const x = tf.tensor2d([seq], [1, seq.length], 'int32');
  const r = gpt.forward(x, { keepQueries: true, keepCache: true });
  const q = (await r.queries![l].array()) as number[][][][];
  const k = (await r.present[l].k.array()) as number[][][][];
  tf.dispose([x, r.logits, r.queries!, r.present.flatMap((c) => [c.k, c.v])]);
  const d = q[0][0][0].length;
  return q[0].map((qh, h) => qh.map((qi, i) => {
    const s = k[0][h].slice(0, i + 1).map((kj) => kj.reduce((a, v, c) => a + v * qi[c], 0) / Math.sqrt(d));
    return [...map(s), ...new Array(seq.length - i - 1).fill(0)];
  }));
}

const maxDiff = (a: number[][][], b: number[][][]) =>
  Math.max(...a.flatMap((m, h) => m.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[h][i][j])))));

describe('attentionMaps [cpu]', () => {
  beforeAll(async () => { await selectBackend('cpu'); });

  it('softmax and sparsemax heads equal float64 maps of the model\'s own queries and keys (RoPE)', async () => {
    for (const [name, f] of [['softmax', softmax64], ['sparsemax', sparsemax64]] as const) {
      const gpt = new GPT({ ...small, attention: name, pos: 'rope' }, { seed: 3 });
      const { layers } = await attentionMaps(gpt, seq);
      for (let l = 0; l < 2; l++) {
        const ref = await reference(gpt, l, f);
        expect(maxDiff(layers[l].model.map((m) => m.probs), ref)).toBeLessThan(1e-5);
        // the same scores through the comparison of the same name give the same map
        expect(maxDiff(layers[l].compare[name].map((m) => m.probs), ref)).toBeLessThan(1e-5);
        layers[l].model.forEach((m) => expect(m.alpha).toBe(name === 'softmax' ? 1 : 2));
      }
      gpt.dispose();
    }
  });

  it('exact zeros are counted: support 1 for softmax; causal zeros above the diagonal; rows sum to 1', async () => {
    const gpt = new GPT({ ...small, attention: 'softmax' }, { seed: 1 });
    // large query weights make sparsemax rows sparse on the same scores
    gpt.params.get('h0.attn.wq')!.assign(tf.mul(gpt.params.get('h0.attn.wq')!, 100));
    const { layers } = await attentionMaps(gpt, seq);
    for (const { model, compare } of layers) {
      model.forEach((m) => expect(m.support).toBe(1));
      for (const m of [...model, ...compare.sparsemax, ...compare.softmax]) {
        m.probs.forEach((row, i) => {
          expect(row.slice(i + 1).every((v) => v === 0)).toBe(true);
          expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
        });
      }
    }
    const sparse = layers[0].compare.sparsemax[0];
    const zeros = sparse.probs.reduce((n, row, i) => n + row.slice(0, i + 1).filter((v) => v === 0).length, 0);
    expect(zeros).toBeGreaterThan(0);
    expect(sparse.support).toBeCloseTo(1 - zeros / 28, 12);
    gpt.dispose();
  });

  it('one token: every map is [[1]]; learned α = 1 + sigmoid(a); default comparisons', async () => {
    const gpt = new GPT({ ...small, attention: [['learned', 'aes'], ['softmax', 'sparsemax']] }, { seed: 2 });
    gpt.params.get('h0.attn.alpha')!.assign(tf.tensor1d([0.3, -1]));
    const { layers } = await attentionMaps(gpt, [4]);
    for (const { model, compare } of layers) {
      expect(Object.keys(compare)).toEqual(['softmax', 'sparsemax', 'aes']);
      for (const m of [...model, ...Object.values(compare).flat()]) expect(m.probs).toEqual([[1]]);
    }
    expect(layers[0].model[0].alpha).toBeCloseTo(1 + 1 / (1 + Math.exp(-0.3)), 6);
    expect(layers[1].model.map((m) => m.alpha)).toEqual([1, 2]);
    gpt.dispose();
  });

  it('bad tokens get a clear error; nothing leaks', async () => {
    const gpt = new GPT({ ...small, attention: 'aes-row', pos: 'alibi' }, { seed: 1 });
    await expect(attentionMaps(gpt, [])).rejects.toThrow(/at least one token/);
    await expect(attentionMaps(gpt, [1, 11])).rejects.toThrow(/token 11 outside \[0, 11\)/);
    await expect(attentionMaps(gpt, [1, 2.5])).rejects.toThrow(/token 2.5/);
    await attentionMaps(gpt, seq);
    const before = tf.memory().numTensors;
    await attentionMaps(gpt, seq, { compare: ['entmax15'] });
    expect(tf.memory().numTensors).toBe(before);
    gpt.dispose();
  });
});
