/** Smoke test of experiment 1 at a tiny size, and the strided kernel against dense masked attention. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '@aes/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './complexity.js';

describe('experiment: complexity', () => {
  let dir: string;
  beforeAll(async () => { await selectBackend('cpu'); dir = mkdtempSync(join(tmpdir(), 'aes-exp-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes well-formed files with sane numbers', async () => {
    const fits = (await run([
      '--out',
      dir,
      '--backend',
      'cpu',
      '--trained',
      '',
      '--lengths',
      '64,128,256',
      '--time-lengths',
      '64,128',
      '--rows',
      '8',
      '--repeats',
      '1',
      '--scales',
      '1,2',
    ])) as {
      flops: Record<string, number>;
      support: Record<string, number>;
    };
    for (const f of [
      'config.json',
      'support.csv',
      'flops.csv',
      'timing.csv',
      'fits.json',
      'cost_vs_zeta.csv',
      'support_vs_n.svg',
      'support_vs_n.png',
      'flops_vs_n.svg',
      'time_vs_n.png',
    ]) {
      expect(existsSync(join(dir, f))).toBe(true);
    }
    const rows = readFileSync(join(dir, 'support.csv'), 'utf8').trim().split('\n');
    expect(rows[0].split(',')).toEqual(
      expect.arrayContaining(['n', 'scale', 'map', 'support', 'entropy', 'varentropy']),
    );
    const cols = rows[0].split(',');
    for (const line of rows.slice(1)) {
      const r = Object.fromEntries(line.split(',').map((v, i) => [cols[i], v]));
      if (r.map === 'softmax') expect(Number(r.support)).toBe(Number(r.n));
      expect(Number(r.support)).toBeLessThanOrEqual(Number(r.n));
      expect(Number(r.support)).toBeGreaterThanOrEqual(1);
    }
    // (The FLOP exponents are the model's own algebra, so they are not asserted: the measured work is,
    // in complexity_measured_test.ts and block_sparse_test.ts.)
    expect(Object.keys(fits.flops)).toContain('dense');
    expect(readFileSync(join(dir, 'flops_vs_n.svg'), 'utf8')).toMatch(/^<svg/);
  });
});
