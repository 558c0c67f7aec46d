/** Smoke test of experiment 3 (sampling) at a tiny size: every file written and well-formed, the numbers sane. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './sampling.js';

const SAMPLERS = ['greedy', 'temperature', 'topk', 'topp', 'minp', 'typical', 'entmax', 'entropix', 'free-energy'];
const [PROMPTS, SEEDS, NEW] = [['The ', 'export function '], 2, 24];            // 24 > blockSize: the window slides
const MODEL = ['--layers', '1', '--heads', '2', '--embd', '16', '--block-size', '16', '--batch', '4'];
const TINY = [
  '--backend',
  'cpu',
  '--steps',
  '4',
  ...MODEL,
  '--new-tokens',
  String(NEW),
  '--samples',
  String(SEEDS),
  '--prompts',
  PROMPTS.join('|'),
  '--val-batches',
  '1',
];

/** Rows of a CSV written by common.ts (cells with commas are quoted); checks every row has the header's width. */
function csv(file: string): Array<Record<string, string>> {
  const split = (line: string) => {
    const cells: string[] = [];
    let [cell, quoted] = ['', false];
    for (let i = 0; i < line.length; i++) {
      const ch = line[i];
      if (quoted && ch === '"' && line[i + 1] === '"') { cell += '"'; i++; } else if (ch === '"') quoted = !quoted;
      else if (ch === ',' && !quoted) { cells.push(cell); cell = ''; } else cell += ch;
    }
    return [...cells, cell];
  };
  const [head, ...lines] = readFileSync(file, 'utf8').trim().split('\n');
  const cols = split(head);
  expect(lines.length).toBeGreaterThan(0);
  return lines.map((l) => {
    const cells = split(l);
    expect(cells.length).toBe(cols.length);
    return Object.fromEntries(cells.map((c, i) => [cols[i], c]));
  });
}

interface Summary {
  model: { trained: boolean; config: { vocabSize: number } };
  entropixDecisions: number;
  consistency: { checked: number; maxAbsLogPDiff: number };
  freeEnergyTarget: { medianValidationEntropy: number };
}
type SampleOut = { sampler: string; prompt: string; seed: number; text: string; meanLogLik: number };

describe('experiment: sampling', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'aes-exp-sampling-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('trains, samples with every sampler and writes well-formed files with sane numbers', async () => {
    const out = join(dir, 'a');
    const summary = await run(['--out', out, ...TINY]) as unknown as Summary;
    for (const f of [
      'config.json',
      'metrics.csv',
      'trajectory.csv',
      'branches.csv',
      'samples.json',
      'summary.json',
      'model/ckpt/model.json',
    ])
      expect(existsSync(join(out, f)), f).toBe(true);
    for (const f of ['diversity', 'entropy_trajectory', 'entropix_branches']) {
      expect(readFileSync(join(out, `${f}.svg`), 'utf8')).toMatch(/^<svg/);
      expect([...readFileSync(join(out, `${f}.png`)).subarray(0, 8)]).toEqual([
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a,
      ]);
    }
    expect(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))).toEqual(summary);
    expect(summary.model.trained).toBe(true);
    const lnV = Math.log(summary.model.config.vocabSize);

    const metrics = csv(join(out, 'metrics.csv'));
    expect(metrics.map((r) => r.sampler)).toEqual(SAMPLERS);
    for (const r of metrics) {
      expect(Number(r.tokens)).toBe(PROMPTS.length * SEEDS * NEW);
      for (const k of ['distinct1', 'distinct2', 'distinct3', 'repetition4']) {
        expect(Number(r[k]), `${r.sampler} ${k}`).toBeGreaterThanOrEqual(0);
        expect(Number(r[k]), `${r.sampler} ${k}`).toBeLessThanOrEqual(1);
      }
      expect(Number(r.meanLogLik)).toBeLessThanOrEqual(0);
      expect(Number(r.meanEntropy)).toBeGreaterThan(0);
      expect(Number(r.meanEntropy)).toBeLessThanOrEqual(lnV + 1e-4);
    }
    expect(Number(metrics.find((r) => r.sampler === 'greedy')!.meanKept)).toBe(1);

    const samples = JSON.parse(readFileSync(join(out, 'samples.json'), 'utf8')) as SampleOut[];
    expect(samples).toHaveLength(SAMPLERS.length * PROMPTS.length * SEEDS);
    for (const s of samples) {
      expect(Array.from(s.text)).toHaveLength(NEW); // char tokenizer: one character per token
      expect(s.meanLogLik).toBeLessThanOrEqual(0);
    }
    for (const p of PROMPTS) {
      const greedy = samples.filter((s) => s.sampler === 'greedy' && s.prompt === p);
      expect(greedy).toHaveLength(SEEDS);
      expect(new Set(greedy.map((s) => s.text)).size).toBe(1);               // greedy ignores the seed
    }

    const trajectory = csv(join(out, 'trajectory.csv'));
    expect(trajectory).toHaveLength(SAMPLERS.length * NEW);
    for (const r of trajectory) {
      expect(Number(r.entropy)).toBeGreaterThan(0);
      expect(Number(r.logLik)).toBeLessThanOrEqual(0);
    }

    const branches = csv(join(out, 'branches.csv'));
    expect(branches.map((r) => r.branch)).toEqual(['argmax', 'careful', 'exploring', 'resampling', 'adaptive']);
    expect(summary.entropixDecisions).toBe(PROMPTS.length * SEEDS * NEW);
    expect(branches.reduce((n, r) => n + Number(r.count), 0)).toBe(summary.entropixDecisions);

    // the teacher-forced ln p is the log of the probability each sampler saw while generating
    expect(summary.consistency.checked).toBe(3 * PROMPTS.length * SEEDS * NEW);
    expect(summary.consistency.maxAbsLogPDiff).toBeLessThan(1e-3);
    expect(summary.freeEnergyTarget.medianValidationEntropy).toBeGreaterThan(0);

    // --ckpt reuses the checkpoint without training: the same model gives the same greedy texts
    const again = (await run([
      '--out',
      join(dir, 'b'),
      ...TINY,
      '--ckpt',
      join(out, 'model', 'ckpt'),
    ])) as unknown as Summary;
    expect(again.model.trained).toBe(false);
    expect(existsSync(join(dir, 'b', 'model'))).toBe(false);
    const greedyAgain = (JSON.parse(readFileSync(join(dir, 'b', 'samples.json'), 'utf8')) as SampleOut[]).filter(
      (s) => s.sampler === 'greedy',
    );
    expect(greedyAgain.map((s) => s.text)).toEqual(samples.filter((s) => s.sampler === 'greedy').map((s) => s.text));
  });

  it('rejects bad overrides with the flag named', async () => {
    const out = join(dir, 'bad');
    await expect(run(['--out', out, '--backend', 'cpu', '--new-tokens', '2'])).rejects.toThrow(/--newTokens/);
    await expect(run(['--out', out, '--backend', 'cpu', '--fe-target', 'hot'])).rejects.toThrow(/--feTarget/);
    await expect(run(['--out', out, '--backend', 'cpu', '--prompts', 'a||b'])).rejects.toThrow(/--prompts/);
    await expect(run(['--out', out, '--backend', 'cpu', '--top-p', '0'])).rejects.toThrow(/--topP/);
  });
});
