/**
 * Smoke test of experiment 6 at a tiny size: one row per run × length with the right lengths and
 * token counts, the known α and support of softmax and entmax15 at every length, summaries over
 * seeds, the verdict and the plots; a second call finds the runs finished and rewrites the same cells;
 * `--merge` adds a later slice to the table.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCsv } from './common.js';
import { run } from './length.js';

describe('experiment: length generalisation', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'aes-exp-length-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes every cell, the summaries over seeds, the verdict and the plots; resumes', async () => {
    const grid = join(dir, 'grid.yaml');
    writeFileSync(grid, 'base: {layers: 1, heads: 2, embd: 8, batch: 4, eval-batches: 1}\n' +
      'axes: {data: [task:copy], attention: [softmax], pos: [rope], seed: [0]}\n');
    const args = ['--out', dir, '--backend', 'cpu', '--grid', grid, '--steps', '3', '--eval-lengths', '1x,2x,4x',
      '--data', 'task:copy:len=3,vary=1', '--attention', 'softmax,entmax15', '--seeds', '0,1'];
    const verdict = (await run(args)) as Record<string, { rankingAtLongest: string[]; longest: number }>;
    expect(verdict['task:copy:len=3,vary=1 rope'].longest).toBe(4);
    expect(verdict['task:copy:len=3,vary=1 rope'].rankingAtLongest).toHaveLength(2);
    const cells = readCsv(join(dir, 'cells.csv'));
    expect(cells).toHaveLength(2 * 2 * 3);
    expect(cells.map((c) => `${c.length}/${c.times}/${c.tokens}`).sort()).toEqual(
      Array(4).fill(['12/4/24', '3/1/6', '6/2/12']).flat().sort(),
    );
    for (const c of cells) {
      expect(Number(c.exact)).toBeGreaterThanOrEqual(0);
      expect(Number(c.exact)).toBeLessThanOrEqual(1);
      if (c.attention === 'softmax') {
        expect(Number(c.alpha)).toBe(1);
        expect(Number(c.support)).toBeCloseTo(1, 6);
      } else {
        expect(Number(c.alpha)).toBeCloseTo(1.5, 6);
        expect(Number(c.support)).toBeGreaterThan(0);
        expect(Number(c.support)).toBeLessThanOrEqual(1);
      }
    }
    const summary = readCsv(join(dir, 'summary.csv'));
    expect(summary).toHaveLength(2 * 3);
    expect(summary.every((r) => r.seeds === '2')).toBe(true);
    for (const f of ['config.json', 'verdict.json', 'accuracy_vs_length.svg', 'accuracy_vs_length.png',
      'heads_vs_length.svg', 'heads_vs_length.png'])
      expect(existsSync(join(dir, f))).toBe(true);
    const before = readFileSync(join(dir, 'cells.csv'), 'utf8');
    await run(args);
    expect(readFileSync(join(dir, 'cells.csv'), 'utf8')).toBe(before);
    // --merge: a later slice (seed 2 of softmax) adds to the table; the earlier cells stay as they were
    const slice = [...args.slice(0, -4), '--attention', 'softmax', '--seeds', '2', '--merge'];
    const merged = (await run(slice)) as { runs: number; seeds: number[]; runsThisCall: number };
    expect([merged.runs, merged.runsThisCall, merged.seeds]).toEqual([5, 1, [0, 1, 2]]);
    const after = readCsv(join(dir, 'cells.csv'));
    expect(after).toHaveLength(5 * 3);
    const old = readCsv(join(dir, 'cells.csv')).filter((c) => c.seed !== '2');
    expect(old.map((c) => JSON.stringify(c)).sort()).toEqual(cells.map((c) => JSON.stringify(c)).sort());
    const sums = readCsv(join(dir, 'summary.csv'));
    expect(sums.filter((r) => r.attention === 'softmax').every((r) => r.seeds === '3')).toBe(true);
    expect(sums.filter((r) => r.attention === 'entmax15').every((r) => r.seeds === '2')).toBe(true);
    // a run of the slice again replaces its own cells, it does not add them twice
    await run(slice);
    expect(readCsv(join(dir, 'cells.csv'))).toHaveLength(5 * 3);
  }, 300_000);
});
