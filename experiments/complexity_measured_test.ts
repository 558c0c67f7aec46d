/** Smoke test of experiment 1b (complexity measured on heads) at the quick size, on untrained models. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '@aes/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveBlockShare, run, wanted } from './complexity_measured.js';

describe('experiment: complexity measured', () => {
  let dir: string;
  beforeAll(async () => { await selectBackend('cpu'); dir = mkdtempSync(join(tmpdir(), 'aes-exp-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('counts and times every head; untrained (high-entropy) heads skip nothing and fall back to dense', async () => {
    const fits = (await run(['--out', dir, '--backend', 'cpu', '--lengths', '128,256', '--repeats', '1'])) as {
      work: Record<string, number>;
      skipRate: Record<string, number>;
    };
    for (const f of ['config.json', 'heads.csv', 'timing.csv', 'fits.json', 'scores_vs_n.svg', 'time_vs_n.png',
      'skip_vs_entropy.svg', 'skip_vs_varentropy.svg'])
      expect(existsSync(join(dir, f))).toBe(true);
    const [head, ...lines] = readFileSync(join(dir, 'heads.csv'), 'utf8').trim().split('\n');
    const cols = head.split(',');
    const rows = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
    expect(rows.length).toBe(2 * 2 * 4);                                  // 2 models × 2 lengths × 4 heads
    for (const r of rows) {
      const n = Number(r.n);
      expect(Number(r.visible)).toBe((n * (n + 1)) / 2);
      expect(Number(r.alpha)).toBeGreaterThan(1);
      expect(r.mode).toBe('dense');                                       // nothing to skip at init
      expect(Number(r.computed)).toBe(Number(r.visible));
      expect(Number(r.entropy)).toBeGreaterThan(0.9);                     // near-uniform rows
    }
    for (const m of Object.keys(fits.work)) expect(fits.work[m]).toBeCloseTo(Math.log(256 * 257 / (128 * 129)) /
      Math.log(2), 6);
    const timing = readFileSync(join(dir, 'timing.csv'), 'utf8').trim().split('\n');
    expect(timing.length - 1).toBe(2 * 2 * 5);                            // 2 models × 2 lengths × 5 methods
    expect(timing.filter((l) => l.includes(',exact-mask α-entmax,')).length).toBe(4);
  });

  it('the synthetic set: clustered low-noise heads skip most blocks at n = 512, the noisiest none', async () => {
    const out = join(dir, 'synthetic');
    await run(['--out', out, '--backend', 'cpu', '--synthetic', '--lengths', '512', '--time-up-to', '1']);
    const [head, ...lines] = readFileSync(join(out, 'heads.csv'), 'utf8').trim().split('\n');
    const cols = head.split(',');
    const cells = (l: string) => l.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/);      // commas outside quotes
    const rows = lines.map((l) => Object.fromEntries(cells(l).map((v, i) => [cols[i], v])));
    expect(rows.length).toBe(2 * 4);                                      // 2 sets × 4 heads
    for (const r of rows) {
      expect(Number(r.computed)).toBe(Math.round((1 - Number(r.skipRate)) * Number(r.visible)));
      expect(Number(r.visible)).toBe(512 * 513 / 2);
      // the plan is exact: it keeps at least every block pair holding a nonzero probability
      expect(Number(r.keptBlocks)).toBeGreaterThanOrEqual(Number(r.oracleKept) - 1e-9);
      expect(Number(r.oracleKept)).toBeGreaterThan(0);
    }
    const noisy = rows.filter((r) => r.model.includes('noise 0.1…1'));
    expect(Number(noisy[0].skipRate)).toBeGreaterThan(0.5);               // noise 0.1: topic blocks are skipped
    expect(noisy[3].mode).toBe('dense');                                  // noise 1: the plan keeps too much
    expect(Number(noisy[3].computed)).toBe(Number(noisy[3].visible));
    expect(readFileSync(join(out, 'timing.csv'), 'utf8').trim()).toBe('');  // counted, not timed
  });

  it('measures only the runs of the task and position encoding given (and the listed normalisers)', () => {
    const flip = { data: 'task:flipflop:len=48,vary=16', attention: 'entmax15', pos: 'rope' };
    const copy = { data: 'task:copy:len=8,vary=4', attention: 'entmax15', pos: 'rope' };
    const cfg = { data: 'task:flipflop:len=48,vary=16', pos: 'rope', models: '' };
    expect([wanted(flip, cfg), wanted(copy, cfg)]).toEqual([true, false]);
    expect(wanted({ ...flip, pos: 'nope' }, cfg)).toBe(false);
    expect(wanted(flip, { ...cfg, models: 'softmax,sparsemax' })).toBe(false);
    expect(wanted(copy, { data: '', pos: '', models: 'entmax15' })).toBe(true);
  });

  it('counts the causally visible block pairs that hold a nonzero probability', () => {
    const at = (n: number, cells: number[][]) => {
      const p = new Float32Array(n * n);
      for (const [i, j] of cells) p[i * n + j] = 0.5;
      return p;
    };
    const range = (n: number) => Array.from({ length: n }, (_, i) => i);
    // n = 8, blocks of 2: 4 query blocks, 1 + 2 + 3 + 4 = 10 visible pairs
    expect(liveBlockShare(at(8, range(8).map((i) => [i, i])), 8, 2)).toBe(4 / 10);           // the diagonal
    expect(liveBlockShare(at(8, range(8).flatMap((i) => [[i, i], [i, 0]])), 8, 2)).toBe(7 / 10); // + the first key
    expect(liveBlockShare(at(8, range(8).flatMap((i) => range(i + 1).map((j) => [i, j]))), 8, 2)).toBe(1);
    expect(liveBlockShare(at(8, [[0, 1], [2, 7]]), 8, 2)).toBe(0);          // entries above the diagonal: unseen
    expect(liveBlockShare(at(5, range(5).map((i) => [i, i])), 5, 2)).toBe(3 / 6);           // a last, short block
    expect(liveBlockShare(at(5, [[4, 0]]), 5, 5)).toBe(1);                                   // one block
  });
});
