/**
 * GPT: shapes and config errors, KV-cache logits equal the full pass for every normaliser,
 * checkpoints (identical logits, learned α, AES state, tokenizer; clear errors), tokenizers,
 * generation (determinism, cache on/off, cropping past blockSize), embedding gradients on wasm, leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend, fileSystemIO } from '@aes/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ByteTokenizer,
  CharTokenizer,
  GPT,
  generate,
  loadCheckpoint,
  saveCheckpoint,
  tokenizerFromJSON,
  type Sampler,
} from '../src/index.js';

const greedy: Sampler = (logits) => ({
  token: tf.tidy(() => tf.argMax(logits).dataSync()[0]),
  record: { sampler: 'greedy' },
});
const small = { vocabSize: 11, nLayer: 2, nHead: 2, nEmbd: 8, blockSize: 12 };
const tokens = (rows: number[][]) => tf.tensor2d(rows, [rows.length, rows[0].length], 'int32');
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`GPT [${backend}]`, () => {
    beforeAll(async () => { await selectBackend(backend); });

    it('forward shapes, per-layer and per-head normalisers, config errors', async () => {
      const gpt = new GPT({ ...small, attention: [['softmax', 'learned'], 'aes'] }, { seed: 1 });
      const r = gpt.forward(tokens([[1, 2, 3], [4, 5, 6]]), { returnStats: true });
      expect(r.logits.shape).toEqual([2, 3, 11]);
      expect(r.stats!.length).toBe(2);
      expect(r.stats![0].entropy.shape).toEqual([2, 2, 3]);
      expect(gpt.alphaVariables().size).toBe(1);
      expect((await gpt.alphas())[0]).toEqual([1, 1.5]);
      expect(() => new GPT({ ...small, nEmbd: 9 }, { seed: 0 })).toThrow(/divisible by nHead/);
      expect(() => new GPT({ ...small, attention: ['softmax'] }, { seed: 0 })).toThrow(
        /lists 1 layers, but nLayer is 2/,
      );
      expect(() => new GPT({ ...small, layers: 3 } as never, { seed: 0 })).toThrow(/unknown model option\(s\) layers/);
      expect(() => new GPT({ ...small, attention: 'relu' as never }, { seed: 0 })).toThrow(
        /unknown attention normaliser/,
      );
      expect(() => gpt.forward(tf.tensor2d([[1, 2]], [1, 2], 'float32'))).toThrow(/int32/);
      expect(() => gpt.forward(tokens([Array(13).fill(1)]))).toThrow(
        /exceed blockSize 12, where learned positions stop .*--pos rope/,
      );
      gpt.dispose();
    });

    it('rope, alibi and nope run past blockSize; learned positions have no table beyond it', () => {
      for (const pos of ['rope', 'alibi', 'nope'] as const) {
        const gpt = new GPT({ ...small, pos }, { seed: 3 });
        expect(gpt.params.has('wpe')).toBe(false);
        expect(gpt.forward(tokens([Array(30).fill(2)])).logits.shape).toEqual([1, 30, 11]);
        gpt.dispose();
      }
      expect(() => new GPT({ ...small, pos: 'sinusoidal' as never }, { seed: 0 })).toThrow(
        /pos must be one of learned, rope, alibi, nope/,
      );
    });

    const cases = [
      ...(
        [
          'softmax',
          'sparsemax',
          'entmax15',
          'alpha=1.3',
          'learned',
          'aes',
          'aes-row',
          'ssmax',
          'asentmax',
          'adaptive-temp',
        ] as const
      ).map((spec) => [spec, 'learned'] as const),
      ...(['rope', 'alibi', 'nope'] as const).flatMap(
        (pos) =>
          [
            ['learned', pos],
            ['aes-row', pos],
          ] as const,
      ),
    ];
    for (const [spec, pos] of cases) {
      it(`${spec}, ${pos} positions: logits with the KV cache equal the full pass`, () => {
        const gpt = new GPT({ ...small, attention: spec, pos }, { seed: 2 });
        const seq = [3, 1, 4, 1, 5, 9, 2, 6];
        gpt.forward(tokens([seq]), { training: true }).logits.dispose();    // AES: sets the running ζ
        const full = gpt.forward(tokens([seq])).logits;
        let cache;
        const steps: tf.Tensor[] = [];
        for (const [i, t] of [[0, 3], [3, 5], [5, 6], [6, 7], [7, 8]]) {   // chunks of 3, 2, 1, 1, 1
          const r = gpt.forward(tokens([seq.slice(i, t)]), { cache, keepCache: true });
          cache = r.present;
          steps.push(r.logits);
        }
        expect(maxDiff(tf.concat(steps, 1), full)).toBeLessThan(2e-5);
        gpt.dispose();
      });
    }

    it('the same seed gives the same weights (tfjs reads a seed of 0 as none: ours never pass 0)', () => {
      const [a, b] = [new GPT(small, { seed: 0 }), new GPT(small, { seed: 0 })];
      for (const [n, v] of a.params) expect(maxDiff(v, b.params.get(n)!)).toBe(0);
      expect(maxDiff(a.params.get('wte')!, new GPT(small, { seed: 1 }).params.get('wte')!)).toBeGreaterThan(0);
    });

    it('embedding gradients train on this backend (one-hot products, no gather gradient)', () => {
      const gpt = new GPT({ ...small, attention: 'learned' }, { seed: 3 });
      const loss = () => tf.tidy(() => {
        const logits = gpt.forward(tokens([[1, 2, 3, 4]])).logits;
        return tf.losses.softmaxCrossEntropy(
          tf.oneHot(tf.tensor1d([2, 3, 4, 5], 'int32'), 11).reshape([1, 4, 11]),
          logits,
        ) as tf.Scalar;
      });
      const { value, grads } = tf.variableGrads(loss);
      const g = (n: string) => grads[gpt.params.get(n)!.name];
      expect(tf.sum(tf.abs(g('wte'))).dataSync()[0]).toBeGreaterThan(0);
      expect(tf.sum(tf.abs(g('h0.attn.alpha'))).dataSync()[0]).toBeGreaterThan(0);
      tf.dispose([value, ...Object.values(grads)]);
      gpt.dispose();
    });

    it('keepQueries: layer 0\'s queries are LayerNorm(token embedding)·W_q, split by head (float64 in JS)', () => {
      const gpt = new GPT({ ...small, pos: 'nope', attention: 'sparsemax' }, { seed: 6 });
      const seq = [3, 1, 4, 1, 5];
      const r = gpt.forward(tokens([seq]), { keepQueries: true, keepCache: true });
      expect(r.queries!.map((q) => q.shape)).toEqual([[1, 2, 5, 4], [1, 2, 5, 4]]);
      const [wte, wq, g, b] = ['wte', 'h0.attn.wq', 'h0.ln1.g', 'h0.ln1.b'].map((n) => gpt.params.get(n)!.dataSync());
      const C = 8, q0 = r.queries![0].dataSync();
      seq.forEach((tok, t) => {
        const x = Array.from(wte.subarray(tok * C, (tok + 1) * C));
        const mean = x.reduce((a, v) => a + v, 0) / C;
        const sd = Math.sqrt(x.reduce((a, v) => a + (v - mean) ** 2, 0) / C + 1e-5);
        const ln = x.map((v, c) => ((v - mean) / sd) * g[c] + b[c]);
        for (let col = 0; col < C; col++) {
          const want = ln.reduce((a, v, c) => a + v * wq[c * C + col], 0);
          const [h, e] = [Math.floor(col / 4), col % 4];
          expect(Math.abs(q0[(h * 5 + t) * 4 + e] - want)).toBeLessThan(1e-5);
        }
      });
      tf.dispose([r.logits, ...r.queries!, ...r.present.flatMap((c) => [c.k, c.v])]);
      gpt.dispose();
    });

    it('no leaked tensors across forward passes and generation', async () => {
      const gpt = new GPT({ ...small, attention: ['aes', 'sparsemax'] }, { seed: 4 });
      const x = tokens([[1, 2, 3]]);
      const run = async () => {
        const r = gpt.forward(x, { returnStats: true, training: true, keepCache: true });
        tf.dispose([r.logits, ...r.present.flatMap((c) => [c.k, c.v]), ...r.stats!.flatMap((s) => Object.values(s))]);
        await generate(gpt, [1, 2], { maxNewTokens: 4, sampler: greedy, attentionStats: true });
      };
      await run();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) await run();
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      gpt.dispose();
    });
  });
}

describe('generation, checkpoints, tokenizers [cpu]', () => {
  let dir: string;
  beforeAll(async () => { await selectBackend('cpu'); dir = mkdtempSync(join(tmpdir(), 'aes-ckpt-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('generate: deterministic, cache on/off agree, crops past blockSize, streams tokens', async () => {
    const gpt = new GPT({ ...small, attention: ['entmax15', 'learned'] }, { seed: 5 });
    const seen: number[] = [];
    const a = await generate(gpt, [1, 2, 3], { maxNewTokens: 20, sampler: greedy, onToken: (t) => seen.push(t) });
    const b = await generate(gpt, [1, 2, 3], { maxNewTokens: 20, sampler: greedy, useCache: false });
    expect(a.tokens).toHaveLength(20);                                  // 3 + 20 > blockSize 12: the window slid
    expect(a.tokens).toEqual(b.tokens);
    expect(seen).toEqual(a.tokens);
    expect(a.records[0]).toMatchObject({ step: 0, sampler: 'greedy' });
    const prompt = Array.from({ length: 30 }, (_, i) => i % 11);
    const long = await generate(gpt, prompt, { maxNewTokens: 2, sampler: greedy });
    expect(long.tokens).toHaveLength(2);
    const withAttn = await generate(gpt, [1], { maxNewTokens: 1, sampler: greedy, attentionStats: true });
    expect(Object.keys(withAttn.records[0].attention as object)).toEqual([
      'entropy',
      'varentropy',
      'agreement',
      'interactionStrength',
    ]);
    await expect(generate(gpt, [], { maxNewTokens: 1, sampler: greedy })).rejects.toThrow(/at least one token/);
    await expect(generate(gpt, [11], { maxNewTokens: 1, sampler: greedy })).rejects.toThrow(/outside \[0, 11\)/);
    gpt.dispose();
  });

  it('checkpoint round trip: identical logits, learned α, AES state, tokenizer, extra state', async () => {
    const tok = new CharTokenizer('hello world');
    const gpt = new GPT({ ...small, vocabSize: tok.vocabSize, attention: ['learned', 'aes'] }, { seed: 6 });
    gpt.params.get('h0.attn.alpha')!.assign(tf.tensor1d([0.7, -1.2]));
    gpt.forward(tokens([[1, 2, 3]]), { training: true }).logits.dispose();
    await saveCheckpoint(fileSystemIO(join(dir, 'a')), gpt, tok, {
      meta: { step: 7 },
      tensors: { 'adam/m': tf.ones([2, 2]) },
    });
    const { model, tokenizer, meta, tensors } = await loadCheckpoint(fileSystemIO(join(dir, 'a')), join(dir, 'a'));
    const x = tokens([[1, 5, 2, 7]]);
    expect(maxDiff(model.forward(x).logits, gpt.forward(x).logits)).toBe(0);
    expect(await model.alphas()).toEqual(await gpt.alphas());
    expect(Number.isFinite(model.params.get('h1.attn.aes_zeta')!.dataSync()[0])).toBe(true);
    expect(tokenizer.decode(tokenizer.encode('hello'))).toBe('hello');
    expect(meta).toEqual({ step: 7 });
    expect(Array.from(tensors['adam/m'].dataSync())).toEqual([1, 1, 1, 1]);
  });

  it('checkpoint errors are clear: missing, garbled, truncated, wrong shapes', async () => {
    await expect(loadCheckpoint(fileSystemIO(join(dir, 'nope')), join(dir, 'nope'))).rejects.toThrow(
      /no checkpoint at .*nope/,
    );
    const g = join(dir, 'garbled');
    const gpt = new GPT(small, { seed: 7 });
    await saveCheckpoint(fileSystemIO(g), gpt, new ByteTokenizer());
    writeFileSync(join(g, 'weights.bin'), Buffer.alloc(10));
    await expect(loadCheckpoint(fileSystemIO(g), g)).rejects.toThrow(/holds 10 bytes, its manifest expects/);
    writeFileSync(join(g, 'model.json'), '{"format": "aes-gpt", ');
    await expect(loadCheckpoint(fileSystemIO(g), g)).rejects.toThrow(/not valid JSON/);
  });

  it('tokenizers: byte round trip of any text; char vocabulary from the text, unseen → <unk> (U+FFFD)', () => {
    const b = new ByteTokenizer();
    const text = 'naïve café — 東京 🚀';
    expect(b.decode(b.encode(text))).toBe(text);
    expect(b.vocabSize).toBe(256);
    const c = new CharTokenizer('abcab 🚀');
    expect(c.vocabSize).toBe(6);                                        // <unk> + ' ', a, b, c, 🚀
    expect(c.decode(c.encode('cab 🚀'))).toBe('cab 🚀');
    expect(c.encode('abz')).toEqual([2, 3, 0]);
    expect(c.decode(c.encode('abz'))).toBe('ab\uFFFD');
    expect(tokenizerFromJSON(JSON.parse(JSON.stringify(c.toJSON()))).encode('cab')).toEqual(c.encode('cab'));
    expect(() => c.decode([9])).toThrow(/token id 9 outside \[0, 6\)/);
    expect(() => tokenizerFromJSON({ kind: 'bpe' })).toThrow(/not a saved tokenizer/);
  });
});
