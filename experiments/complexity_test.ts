/** Smoke test of experiment 1 at a tiny size, and the strided kernel against dense masked attention. */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '@aes/attention';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, stridedAttention } from './complexity';

describe('experiment: complexity', () => {
  let dir: string;
  beforeAll(async () => { await selectBackend('cpu'); dir = mkdtempSync(join(tmpdir(), 'aes-exp-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the strided kernel equals dense attention under the strided mask', () => {
    for (const n of [9, 30, 64]) {
      const s = Math.ceil(Math.sqrt(n));
      const [q, k, v] = [1, 2, 3].map((seed) => tf.randomNormal([n, 8], 0, 1, 'float32', seed) as tf.Tensor2D);
      const mask = tf.tensor2d(Array.from({ length: n * n }, (_, t) => {
        const [i, j] = [Math.floor(t / n), t % n];
        return j <= i && (j > i - s || j % s === s - 1) ? 0 : -Infinity;
      }), [n, n]);
      const dense = tf.matMul(tf.softmax(tf.add(tf.div(tf.matMul(q, k, false, true), Math.sqrt(8)), mask)), v);
      const got = stridedAttention(q, k, v);
      expect(tf.max(tf.abs(tf.sub(got, dense))).dataSync()[0]).toBeLessThan(1e-5);
    }
  });

  it('writes well-formed files with sane numbers', async () => {
    const fits = await run(['--out', dir, '--backend', 'cpu', '--trained', '', '--lengths', '64,128,256', '--time-lengths', '64,128', '--rows', '8', '--repeats', '1', '--scales', '1,2']) as {
      flops: Record<string, number>; support: Record<string, number>;
    };
    for (const f of ['config.json', 'support.csv', 'flops.csv', 'timing.csv', 'fits.json', 'cost_vs_zeta.csv', 'support_vs_n.svg', 'support_vs_n.png', 'flops_vs_n.svg', 'time_vs_n.png']) {
      expect(existsSync(join(dir, f))).toBe(true);
    }
    const rows = readFileSync(join(dir, 'support.csv'), 'utf8').trim().split('\n');
    expect(rows[0].split(',')).toEqual(expect.arrayContaining(['n', 'scale', 'map', 'support', 'entropy', 'varentropy']));
    const cols = rows[0].split(',');
    for (const line of rows.slice(1)) {
      const r = Object.fromEntries(line.split(',').map((v, i) => [cols[i], v]));
      if (r.map === 'softmax') expect(Number(r.support)).toBe(Number(r.n));
      expect(Number(r.support)).toBeLessThanOrEqual(Number(r.n));
      expect(Number(r.support)).toBeGreaterThanOrEqual(1);
    }
    expect(fits.flops.dense).toBeCloseTo(2, 2);
    expect(fits.flops.strided).toBeLessThan(1.6);
    expect(readFileSync(join(dir, 'flops_vs_n.svg'), 'utf8')).toMatch(/^<svg/);
  });
});
