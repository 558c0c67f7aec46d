/**
 * AES leaves softmax where it should: trained on copy (whose heads learn to look at one earlier
 * token: low entropy), AES heads end with α clearly above 1 and exact zeros in their rows; on
 * high-entropy random rows AES stays exactly softmax.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attention } from '@aes/attention';
import { selectBackend } from '@aes/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRAIN_DEFAULTS, train } from '../src/index.js';

describe('AES in training', () => {
  let root: string;
  // One wasm thread: vitest already runs two files at a time on the two cores.
  beforeAll(async () => {
    await selectBackend('wasm', { threads: 1 });
    root = mkdtempSync(join(tmpdir(), 'aes-adapt-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('on copy, AES heads become sparse (α > 1.3 somewhere, support < 100%); on random rows α stays 1', async () => {
    const res = await train({
      ...TRAIN_DEFAULTS,
      data: 'task:copy:len=6',
      attention: 'aes',
      steps: 300,
      layers: 2,
      heads: 2,
      embd: 32,
      batch: 16,
      evalEvery: 300,
      evalBatches: 2,
      ckptEvery: 300,
      logEvery: 100,
      warmup: 30,
      out: join(root, 'copy'),
    });
    const alphas = res.final.alpha.flat();
    expect(res.final.exactMatch).toBeGreaterThan(0.5);                       // the task is learned
    expect(Math.max(...alphas)).toBeGreaterThan(1.3);
    expect(Math.min(...res.final.supportFraction.flat())).toBeLessThan(0.9);   // exact zeros
    const [q, k, v] = [1, 2, 3].map((s) => tf.randomNormal([1, 2, 64, 32], 0, 1, 'float32', s));
    const r = attention(q, k, v, { normaliser: 'aes', causal: true, returnStats: true });
    expect(Array.from(r.stats!.alpha.dataSync())).toEqual([1, 1]);
  }, 120_000);                                // about 20 s alone, up to 60 s beside another file
});
