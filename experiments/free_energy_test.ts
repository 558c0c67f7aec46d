/** Smoke test of experiment 4 (free energy) at a tiny size: every file written and well-formed, the verdicts sane. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './free_energy.js';

const TINY = [
  '--vectors',
  '12',
  '--sizes',
  '10,100',
  '--scales',
  '0.5,5',
  '--betas',
  '8',
  '--temps',
  '8',
  '--solve-vectors',
  '4',
  '--fractions',
  '0.1,0.5,0.9',
];

/** Rows of a CSV written by common.ts (no quoted cells here) as objects; checks every row has the header's width. */
function csv(file: string): Array<Record<string, string>> {
  const [head, ...lines] = readFileSync(file, 'utf8').trim().split('\n');
  const cols = head.split(',');
  expect(lines.length).toBeGreaterThan(0);
  return lines.map((l) => {
    const cells = l.split(',');
    expect(cells.length).toBe(cols.length);
    return Object.fromEntries(cells.map((c, i) => [cols[i], c]));
  });
}

describe('experiment: free energy', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'aes-exp-fe-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes well-formed files with sane verdicts', async () => {
    const summary = (await run(['--out', dir, '--backend', 'cpu', ...TINY])) as {
      identity: { maxAbsError: number };
      seedForm: { maxAbsDeviation: number };
      heatCapacity: { maxRelError: number; scored: number };
      solver: { convergedShare: number; maxResidualOverTol: number };
    };
    for (const f of ['config.json', 'identity.csv', 'heat_capacity.csv', 'solver.csv', 'summary.json'])
      expect(existsSync(join(dir, f)), f).toBe(true);
    for (const f of ['identity', 'heat_capacity', 'solver']) {
      expect(readFileSync(join(dir, `${f}.svg`), 'utf8')).toMatch(/^<svg/);
      expect([...readFileSync(join(dir, `${f}.png`)).subarray(0, 8)]).toEqual([
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a,
      ]);
    }
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).config.vectors).toBe(12);
    expect(JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'))).toEqual(summary);

    const identity = csv(join(dir, 'identity.csv'));
    expect(identity).toHaveLength(12 * 8);
    expect(Object.keys(identity[0])).toEqual(
      expect.arrayContaining(['beta', 'S', 'corrected', 'seedForm', 'identityErr', 'seedErr']),
    );
    for (const r of identity) expect(Math.abs(Number(r.S) - Number(r.corrected))).toBeLessThan(1e-9);
    expect(summary.identity.maxAbsError).toBeLessThan(1e-9);
    // the seed's printed form is off by far more than rounding
    expect(summary.seedForm.maxAbsDeviation).toBeGreaterThan(1e-1);

    const heat = csv(join(dir, 'heat_capacity.csv'));
    expect(heat).toHaveLength(4 * 8);
    for (const r of heat.filter((x) => x.scored === 'true')) expect(Number(r.relErr)).toBeLessThan(1e-4);
    expect(summary.heatCapacity.scored).toBeGreaterThan(heat.length / 2);
    expect(summary.heatCapacity.maxRelError).toBeLessThan(1e-4);

    const solver = csv(join(dir, 'solver.csv'));
    expect(solver).toHaveLength(4 * 3 * 4);
    const at6 = solver.filter((r) => Number(r.tol) === 1e-6);
    expect(at6).toHaveLength(12);
    for (const r of at6) {
      expect(r.converged).toBe('true');
      expect(Number(r.residual)).toBeLessThan(1e-4);
    }
    expect(summary.solver.convergedShare).toBe(1);
    expect(summary.solver.maxResidualOverTol).toBeLessThanOrEqual(1);
  });

  it('rejects bad overrides with the flag named', async () => {
    await expect(run(['--out', dir, '--backend', 'cpu', '--tols', '1e-6,0'])).rejects.toThrow(/--tols/);
    await expect(run(['--out', dir, '--backend', 'cpu', '--vectors', '0'])).rejects.toThrow(/--vectors/);
  });
});
