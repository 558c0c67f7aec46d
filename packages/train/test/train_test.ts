/**
 * The training loop: the loss falls on a task and learned α moves inside (1, 2); a run interrupted
 * and resumed logs exactly the losses of an uninterrupted one; a NaN loss stops the run naming the
 * step and the last checkpoint; no tensors leak across steps; text data gives bits/char; plots.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '@aes/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRAIN_DEFAULTS, train, writeTrainingPlots, type TrainConfig, type TrainEvent } from '../src/index.js';

let root: string;
const cfg = (over: Partial<TrainConfig>): TrainConfig => ({
  ...TRAIN_DEFAULTS,
  layers: 1,
  heads: 2,
  embd: 16,
  batch: 8,
  evalBatches: 1,
  evalEvery: 1000,
  ckptEvery: 1000,
  logEvery: 1,
  warmup: 2,
  out: join(root, `run-${Math.random().toString(36).slice(2)}`),
  ...over,
});
const lines = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describe('train', () => {
  // One wasm thread: vitest already runs two files at a time on the two cores.
  beforeAll(async () => {
    await selectBackend('wasm', { threads: 1 });
    root = mkdtempSync(join(tmpdir(), 'aes-train-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('lowers the loss on a task; learned α moves, stays in (1, 2); metrics, config and plots are written', async () => {
    const c = cfg({
      data: 'task:recall:pairs=3',
      steps: 150,
      layers: 2,
      heads: 2,
      embd: 32,
      batch: 16,
      lr: 5e-3,
      alphaLr: 0.1,
      evalEvery: 50,
      evalBatches: 2,
    });
    const res = await train(c, undefined, { backend: 'wasm' });
    const m = lines(c.out);
    const trainLoss = m.filter((r) => r.split === 'train').map((r) => r.loss);
    const early = trainLoss.slice(0, 10).reduce((a: number, b: number) => a + b) / 10;
    const late = trainLoss.slice(-10).reduce((a: number, b: number) => a + b) / 10;
    expect(late).toBeLessThan(0.75 * early);
    const alphas = res.final.alpha.flat();
    expect(alphas.every((a) => a > 1 && a < 2)).toBe(true);
    expect(alphas.some((a) => Math.abs(a - 1.5) > 0.02)).toBe(true);
    const val = m.filter((r) => r.split === 'val');
    expect(val.map((r) => r.step)).toEqual([0, 50, 100, 150]);
    for (const k of ['loss', 'exactMatch', 'alpha', 'entropy', 'varentropy', 'supportFraction'])
      expect(val[0]).toHaveProperty(k);
    expect(m[1]).toMatchObject({ step: 1, split: 'train' });
    for (const k of ['loss', 'lr', 'tokensPerSecond']) expect(typeof m[1][k]).toBe('number');
    expect(JSON.parse(readFileSync(join(c.out, 'config.json'), 'utf8'))).toMatchObject({
      train: { steps: 150 },
      backend: 'wasm',
    });
    const files = await writeTrainingPlots(c.out);
    expect(files.map((f) => f.split('/').pop())).toEqual(['loss.svg', 'loss.png', 'alpha.svg', 'alpha.png']);
    expect(readFileSync(files[0], 'utf8')).toMatch(/^<svg/);
    expect(readFileSync(files[1]).subarray(1, 4).toString()).toBe('PNG');
  });

  it('resume: an interrupted and resumed run logs the same metrics as an uninterrupted one', async () => {
    const base = {
      data: 'task:copy:len=4',
      steps: 8,
      ckptEvery: 4,
      evalEvery: 4,
      dropout: 0.1,
      attention: 'learned,aes',
      layers: 2,
    };
    const a = cfg(base);
    await train(a);
    const b = cfg(base);
    await train({ ...b, stopAt: 4 });
    expect(lines(b.out).map((r) => r.step).at(-1)).toBe(4);
    await train({ ...b, resume: true });
    const strip = (rs: Array<Record<string, unknown>>) => rs.map(({ tokensPerSecond: _t, ...r }) => r);
    expect(strip(lines(b.out))).toEqual(strip(lines(a.out)));
    await expect(train({ ...b, batch: 4, resume: true })).rejects.toThrow(/cannot resume: batch differ/);
    await expect(train({ ...cfg(base), resume: true })).rejects.toThrow(/cannot resume: no checkpoint at/);
  });

  it('a non-finite loss stops the run, naming the step and the last good checkpoint; nothing is lost', async () => {
    const c = cfg({ data: 'task:copy:len=4', steps: 50, ckptEvery: 1, lr: 1e30, warmup: 0, clip: 0 });
    await expect(train(c)).rejects.toThrow(
      /the loss is (NaN|Infinity) at step (\d+); the last good checkpoint is .*ckpt \(step \d+\)/,
    );
    expect(existsSync(join(c.out, 'ckpt', 'model.json'))).toBe(true);
    expect(lines(c.out).length).toBeGreaterThan(0);
  });

  it('no leaked tensors across steps; text data reports bits per character', async () => {
    const text = join(root, 'tiny.txt');
    writeFileSync(text, 'the quick brown fox jumps over the lazy dog. '.repeat(40));
    const counts: number[] = [];
    const onEvent = (e: TrainEvent) => { if (e.type === 'step') counts.push(tf.memory().numTensors); };
    const res = await train(
      cfg({ data: text, steps: 12, blockSize: 16, evalEvery: 6, layers: 2, attention: 'softmax,learned/aes' }),
      onEvent,
    );
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(res.final.bitsPerChar).toBeGreaterThan(0);
    expect(res.final.bitsPerChar).toBeLessThan(8);
  });
});
