/** Smoke test of experiment 2 at a tiny size: files, shapes and sane numbers. */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './training.js';

describe('experiment: training comparison', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'aes-exp-train-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes per-run and summary tables, α values and plots', async () => {
    const grid = join(dir, 'grid.yaml');
    writeFileSync(grid, 'base: {layers: 1, heads: 2, embd: 8, batch: 4}\n' +
      'axes: {data: [task:copy:len=3], attention: [softmax, learned, aes], seed: [0, 1]}\n');
    const verdict = (await run([
      '--out', dir, '--backend', 'cpu', '--grid', grid, '--steps', '4', '--eval-batches', '1',
    ])) as Record<string, { ranking: string[] }>;
    expect(verdict['task:copy:len=3'].ranking).toHaveLength(3);
    for (const f of [
      'config.json',
      'runs.csv',
      'summary.csv',
      'alpha.csv',
      'verdict.json',
      'val_loss.svg',
      'val_loss.png',
      'alpha_hist.png',
      'speed.svg',
    ])
      expect(existsSync(join(dir, f))).toBe(true);
    const [head, ...rows] = readFileSync(join(dir, 'runs.csv'), 'utf8').trim().split('\n');
    const cols = head.split(',');
    expect(rows).toHaveLength(6);
    for (const line of rows) {
      const r = Object.fromEntries(line.split(',').map((v, i) => [cols[i], v]));
      expect(Number(r.accuracy)).toBeGreaterThanOrEqual(0);
      expect(Number(r.accuracy)).toBeLessThanOrEqual(1);
      expect(Number(r.supportFraction)).toBeLessThanOrEqual(1);
      if (r.normaliser === 'softmax') expect(Number(r.supportFraction)).toBeCloseTo(1, 6);
      expect(Number(r.valLoss)).toBeGreaterThan(0);
    }
    const alphas = readFileSync(join(dir, 'alpha.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
    const learned = alphas.filter((a) => a[1] === 'learned').map((a) => Number(a[5]));
    expect(learned.length).toBe(2 * 2);
    expect(learned.every((a) => a > 1 && a < 2)).toBe(true);
  });
});
