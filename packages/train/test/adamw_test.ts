/**
 * AdamW against a hand computation, decoupled decay, groups, clipping, the schedule, state round
 * trip; and gradient accumulation: 2 micro-batches of 4 follow the same trajectory as batches of 8.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '@aes/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdamW, clipByGlobalNorm, lrScaleAt, TRAIN_DEFAULTS, train } from '../src/index.js';

describe('AdamW', () => {
  let dir: string;
  beforeAll(async () => { await selectBackend('cpu'); dir = mkdtempSync(join(tmpdir(), 'aes-adamw-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('two steps match a hand computation; decay is decoupled and skips rank-1 tensors and the α group', () => {
    const w = tf.variable(tf.tensor2d([[1, -2]]));
    const b = tf.variable(tf.tensor1d([3]));
    const a = tf.variable(tf.tensor1d([0.5]));
    const opt = new AdamW(
      [
        {
          params: new Map<string, tf.Variable>([
            ['w', w],
            ['b', b],
          ]),
          lr: 0.1,
          weightDecay: 0.5,
        },
        { params: new Map<string, tf.Variable>([['a', a]]), lr: 0.2, weightDecay: 0.5 },
      ],
      { beta1: 0.9, beta2: 0.99, eps: 1e-8 },
    );
    const g1 = new Map<string, tf.Tensor>([
      ['w', tf.tensor2d([[0.2, 0.4]])],
      ['b', tf.tensor1d([-1])],
      ['a', tf.tensor1d([2])],
    ]);
    const g2 = new Map<string, tf.Tensor>([
      ['w', tf.tensor2d([[-0.1, 0.3]])],
      ['b', tf.tensor1d([0.5])],
      ['a', tf.tensor1d([-1])],
    ]);
    // hand computation in float64: lr scaled by 1, then 0.5 (the schedule's factor)
    const ref = (p0: number, gs: number[], lr: number, wd: number, scales = [1, 0.5]) => {
      let [p, m, v] = [p0, 0, 0];
      gs.forEach((g, i) => {
        const t = i + 1, l = lr * scales[i];
        m = 0.9 * m + 0.1 * g; v = 0.99 * v + 0.01 * g * g;
        p -= l * ((m / (1 - 0.9 ** t)) / (Math.sqrt(v / (1 - 0.99 ** t)) + 1e-8) + wd * p);
      });
      return p;
    };
    opt.apply(g1, 1);
    opt.apply(g2, 0.5);
    expect(ref(1, [0.2], 0.1, 0.5)).toBeCloseTo(1 - 0.1 * (1 + 0.5), 6);       // first step: m̂/√v̂ ≈ sign(g)
    const got = [...w.dataSync(), ...b.dataSync(), ...a.dataSync()];
    const want = [
      ref(1, [0.2, -0.1], 0.1, 0.5),
      ref(-2, [0.4, 0.3], 0.1, 0.5),
      ref(3, [-1, 0.5], 0.1, 0),
      ref(0.5, [2, -1], 0.2, 0),
    ];
    got.forEach((x, i) => expect(x).toBeCloseTo(want[i], 5));
    // state round trip: a fresh optimizer with the saved state continues identically
    const st = opt.state();
    const opt2 = new AdamW(
      [
        {
          params: new Map<string, tf.Variable>([
            ['w', w],
            ['b', b],
          ]),
          lr: 0.1,
          weightDecay: 0.5,
        },
        { params: new Map<string, tf.Variable>([['a', a]]), lr: 0.2, weightDecay: 0.5 },
      ],
      { beta1: 0.9, beta2: 0.99 },
    );
    opt2.loadState(st.step, st.tensors);
    expect(opt2.step).toBe(2);
    expect(() => opt2.loadState(2, {})).toThrow(/optimizer state lacks m\/w/);
  });

  it('clipping scales to the global norm; the schedule warms up linearly and decays by a cosine', () => {
    const g = new Map<string, tf.Tensor>([['a', tf.tensor1d([3])], ['b', tf.tensor1d([4])]]);
    expect(clipByGlobalNorm(g, 1).dataSync()[0]).toBeCloseTo(5, 6);
    expect(g.get('a')!.dataSync()[0]).toBeCloseTo(0.6, 5);
    expect(clipByGlobalNorm(g, 0).dataSync()[0]).toBeCloseTo(1, 5);           // 0 = off
    expect(g.get('b')!.dataSync()[0]).toBeCloseTo(0.8, 5);
    expect(clipByGlobalNorm(g, 2).dataSync()[0]).toBeCloseTo(1, 5);           // below the bound: unchanged
    expect(g.get('b')!.dataSync()[0]).toBeCloseTo(0.8, 5);
    expect(lrScaleAt(5, 10, 100, 0.1)).toBeCloseTo(0.5);
    expect(lrScaleAt(10, 10, 100, 0.1)).toBeCloseTo(1);
    expect(lrScaleAt(55, 10, 100, 0.1)).toBeCloseTo(0.1 + 0.9 * 0.5);
    expect(lrScaleAt(100, 10, 100, 0.1)).toBeCloseTo(0.1);
  });

  it('gradient accumulation: 2 × 4 sequences per step follow the trajectory of 8 per step', async () => {
    const base = {
      ...TRAIN_DEFAULTS,
      data: 'task:copy:len=4',
      layers: 1,
      heads: 2,
      embd: 16,
      steps: 5,
      evalEvery: 100,
      ckptEvery: 100,
      logEvery: 1,
      warmup: 1,
      evalBatches: 1,
    };
    await train({ ...base, batch: 8, accum: 1, out: join(dir, 'a') });
    await train({ ...base, batch: 4, accum: 2, out: join(dir, 'b') });
    const losses = (d: string) =>
      readFileSync(join(d, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .filter((r) => r.split === 'train')
        .map((r) => r.loss);
    const [a, b] = [losses(join(dir, 'a')), losses(join(dir, 'b'))];
    expect(a).toHaveLength(5);
    a.forEach((x: number, i: number) => expect(b[i]).toBeCloseTo(x, 4));
  });
});
