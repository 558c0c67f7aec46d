/**
 * Evaluation at fixed lengths: the chunked KV-cache pass gives the loss, exact match, token accuracy
 * and per-head α / entropy / support of one full pass (computed here in float64 from the full
 * logits, the oracle); lengths beyond where learned positions stop are refused naming --pos; a
 * training run logs one row per length at each evaluation; nothing leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPT } from '@aes/models';
import { selectBackend } from '@aes/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateLengths, openSource, parseLengths, train, TRAIN_DEFAULTS, type Source } from '../src/index.js';

let root: string;
beforeAll(async () => { await selectBackend('cpu'); root = mkdtempSync(join(tmpdir(), 'aes-lengths-')); });
afterAll(() => rmSync(root, { recursive: true, force: true }));

const source = (data: string) =>
  openSource({
    data,
    blockSize: 17,
    tokenizer: 'char',
    valFraction: 0.1,
    evalBatches: 2,
    batch: 4,
    cacheDir: root,
    seed: 3,
  });

/** Float64 loss, exact match and token accuracy of full forward passes (no cache) over the same batches. */
function oracle(model: GPT, src: Source, length: number, sequences: number) {
  let nll = 0, count = 0, exact = 0, seqs = 0, right = 0;
  const stats = { alpha: 0, entropy: 0, support: 0 };
  for (const [bi, batch] of src.evalAt(length, sequences).entries()) {
    const [B, T] = [batch.x.length, batch.x[0].length];
    const x = tf.tensor2d(batch.x, [B, T], 'int32');
    const r = model.forward(x, { returnStats: bi === 0 });
    const logits = r.logits.arraySync() as number[][][];
    if (r.stats) {
      const mean = (t: tf.Tensor) => Array.from(t.dataSync()).reduce((a, v) => a + v, 0) / t.size;
      stats.alpha = mean(r.stats[0].rowAlpha);
      stats.entropy = mean(r.stats[0].entropy);
      stats.support = mean(r.stats[0].supportFraction);
      r.stats.forEach((s) => tf.dispose(Object.values(s)));
    }
    tf.dispose([x, r.logits]);
    for (let b = 0; b < B; b++) {
      let all = true;
      for (let t = 0; t < T; t++) {
        if (batch.mask && !batch.mask[b][t]) continue;
        const row = logits[b][t];
        const max = Math.max(...row);
        const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
        nll += lse - row[batch.y[b][t]];
        count += 1;
        const arg = row.indexOf(max);
        if (arg === batch.y[b][t]) right += 1; else all = false;
      }
      if (all) exact += 1;
      seqs += 1;
    }
  }
  return { loss: nll / count, exact: exact / seqs, tokenAccuracy: right / count, ...stats };
}

describe('evaluateLengths', () => {
  for (const pos of ['rope', 'alibi', 'nope'] as const) {
    it(`${pos}: chunks of 6 positions through the KV cache give one full pass's metrics`, async () => {
      const src = await source('task:copy:len=8');
      const model = new GPT(
        {
          vocabSize: src.vocabSize,
          nLayer: 2,
          nHead: 2,
          nEmbd: 16,
          blockSize: 17,
          pos,
          attention: ['entmax15', 'softmax'],
        },
        { seed: 5 },
      );
      const before = tf.memory().numTensors;
      const rows = await evaluateLengths(model, src, [4, 20], 7, { chunk: 6, tokensPerBatch: 3 * 40, minSequences: 1 });
      expect(tf.memory().numTensors).toBe(before);
      expect(rows.map((r) => [r.length, r.tokens, r.step])).toEqual([[4, 8, 7], [20, 40, 7]]);
      for (const r of rows) {
        const o = oracle(model, src, r.length, Math.floor((3 * 40) / r.tokens));
        expect(r.loss).toBeCloseTo(o.loss, 4);
        expect(r.exact).toBe(o.exact);
        expect(r.tokenAccuracy).toBeCloseTo(o.tokenAccuracy, 10);
        expect(r.alpha[0]).toHaveLength(2);
        expect((r.alpha[0][0] + r.alpha[0][1]) / 2).toBeCloseTo(o.alpha, 4);
        expect((r.entropy[0][0] + r.entropy[0][1]) / 2).toBeCloseTo(o.entropy, 4);
        expect((r.support[0][0] + r.support[0][1]) / 2).toBeCloseTo(o.support, 4);
        expect(r.peakMB).toBeGreaterThan(0);
      }
      // entmax15 in layer 0, head 0 is sparse, softmax in layer 1 is dense (known values of the maps)
      expect(rows[1].alpha[0][0]).toBeCloseTo(1.5, 6);
      expect(rows[1].support[1].every((s) => s === 1)).toBe(true);
      model.dispose();
    });
  }

  it('texts: windows of the given length from the validation text', async () => {
    const file = join(root, 'text.txt');
    writeFileSync(file, 'the quick brown fox jumps over the lazy dog. '.repeat(40));
    const src = await source(file);
    const model = new GPT(
      { vocabSize: src.vocabSize, nLayer: 1, nHead: 1, nEmbd: 8, blockSize: 17, pos: 'rope' },
      { seed: 1 },
    );
    const [r] = await evaluateLengths(model, src, [40], 0, { chunk: 16, tokensPerBatch: 80, minSequences: 1 });
    expect(r.tokens).toBe(40);
    expect(r.exact).toBeUndefined();
    expect(r.loss).toBeCloseTo(oracle(model, src, 40, 2).loss, 4);
    model.dispose();
  });

  it('refuses lengths beyond the block size of learned positions, naming --pos', async () => {
    const src = await source('task:copy:len=8');
    const model = new GPT({ vocabSize: src.vocabSize, nLayer: 1, nHead: 1, nEmbd: 8, blockSize: 17 }, { seed: 1 });
    expect((await evaluateLengths(model, src, [8], 0))[0].tokens).toBe(16);
    await expect(evaluateLengths(model, src, [8, 9], 0)).rejects.toThrow(
      '--eval-lengths 9 needs 18 positions, beyond the block size 17 where learned positions stop; train with --pos',
    );
    model.dispose();
  });

  it('parses lists and rejects bad ones', () => {
    expect(parseLengths('')).toEqual([]);
    expect(parseLengths(' 64, 128 ')).toEqual([64, 128]);
    expect(parseLengths('1x,2x,100,0.5x', 48)).toEqual([48, 96, 100, 24]);
    expect(parseLengths('1x,2x', undefined)).toEqual([NaN, NaN]);
    expect(() => parseLengths('64,x')).toThrow("--eval-lengths takes positive integers or multiples like 2x, got 'x'");
    expect(() => parseLengths('0')).toThrow("got '0'");
    expect(() => parseLengths('0x', 48)).toThrow("got '0x'");
    expect(() => parseLengths('1.5')).toThrow("got '1.5'");
    expect(() => parseLengths('2x,96', 48)).toThrow('lists a length twice');
    expect(() => parseLengths('8,8')).toThrow('lists a length twice');
  });

  it('a training run logs one row per length at every evaluation', async () => {
    const out = join(root, 'run');
    const res = await train(
      {
        ...TRAIN_DEFAULTS, data: 'task:copy:len=8', pos: 'rope', layers: 1, heads: 1, embd: 8, batch: 4, steps: 4,
        evalEvery: 2, ckptEvery: 4, logEvery: 4, evalBatches: 1, warmup: 1, evalLengths: '8,16', out,
      },
      undefined,
      { backend: 'cpu' },
    );
    const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const lengthRows = rows.filter((r) => r.length !== undefined);
    expect(lengthRows.map((r) => [r.step, r.length])).toEqual([[2, 8], [2, 16], [4, 8], [4, 16]]);
    expect(res.lengths.map((r) => r.length)).toEqual([8, 16]);
    expect(res.lengths[1].tokens).toBe(32);
  });
});
