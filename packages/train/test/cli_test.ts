/**
 * The `aes` CLI: flag parsing and its errors, and one end-to-end run of train → sample (with a
 * trace) → eval as subprocesses on a small text.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlagError, parseFlags } from '../src/flags.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'src', 'main.ts');
const TSX = join(import.meta.dirname, '..', '..', '..', 'node_modules', '.bin', 'tsx');
const aes = (args: string[]) => run(TSX, ['--conditions=aes-source', CLI, ...args], { timeout: 120_000 }).then(
  (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
  (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }));

describe('flags', () => {
  const defaults = { steps: 10, evalEvery: 5, data: 'x', resume: false };
  it('parse camelCase, kebab-case, = and booleans', () => {
    expect(parseFlags(['--steps', '3', '--eval-every=7', '--resume', '--data', 'y'], defaults, 'train')).toEqual({
      steps: 3,
      evalEvery: 7,
      data: 'y',
      resume: true,
    });
    expect(parseFlags(['--resume', 'false'], defaults, 'train').resume).toBe(false);
  });
  it('reject unknown and malformed flags, listing the valid ones', () => {
    expect(() => parseFlags(['--stepz', '3'], defaults, 'train')).toThrow(
      /unknown flag --stepz. Valid flags: --steps \(10\), --eval-every \(5\), --data \("x"\), --resume \(false\)/,
    );
    expect(() => parseFlags(['--steps', 'ten'], defaults, 'train')).toThrow(/--steps expects a number, got 'ten'/);
    expect(() => parseFlags(['--steps'], defaults, 'train')).toThrow(/--steps needs a value/);
    expect(() => parseFlags(['steps'], defaults, 'train')).toThrow(FlagError);
    expect(() => parseFlags(['--resume', 'yes'], defaults, 'train')).toThrow(/true or false/);
  });
});

describe('aes (subprocess)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'aes-cli-'));
    writeFileSync(join(dir, 'text.txt'), 'to be or not to be, that is the question. '.repeat(30));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('--help, unknown command and unknown flag', async () => {
    expect((await aes(['--help'])).out).toMatch(/aes train\s+--data/);
    const bad = await aes(['train', '--bogus', '1']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/unknown flag --bogus. Valid flags: --data/);
    expect((await aes(['fly'])).err).toMatch(/unknown command 'fly'/);
    expect((await aes(['train', '--attention', 'relu', '--out', join(dir, 'x')])).err).toMatch(
      /unknown attention normaliser/,
    );
  }, 180_000);

  it('train → sample (trace) → eval on a small text', async () => {
    const out = join(dir, 'run');
    const t = await aes([
      'train',
      '--data',
      join(dir, 'text.txt'),
      '--steps',
      '4',
      '--out',
      out,
      '--layers',
      '1',
      '--heads',
      '2',
      '--embd',
      '16',
      '--block-size',
      '16',
      '--batch',
      '4',
      '--eval-every',
      '2',
      '--attention',
      'learned',
      '--backend',
      'cpu',
    ]);
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/final validation \(step 4\)/);
    expect(t.out).toMatch(/bits\/char/);
    for (const f of [
      'metrics.jsonl',
      'config.json',
      'ckpt/model.json',
      'loss.svg',
      'loss.png',
      'alpha.svg',
      'alpha.png',
    ])
      expect(existsSync(join(out, f))).toBe(true);
    const trace = join(dir, 'trace.jsonl');
    const s = await aes([
      'sample',
      '--ckpt',
      join(out, 'ckpt'),
      '--prompt',
      'to be',
      '--sampler',
      'topp',
      '--max-new-tokens',
      '12',
      '--trace',
      trace,
      '--backend',
      'cpu',
    ]);
    expect(s.code).toBe(0);
    expect(s.out.startsWith('to be')).toBe(true);
    const records = readFileSync(trace, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records).toHaveLength(12);
    expect(records[0]).toMatchObject({ step: 0 });
    expect(typeof records[0].token).toBe('number');
    const e = await aes(['eval', '--ckpt', join(out, 'ckpt'), '--backend', 'cpu']);
    expect(e.code).toBe(0);
    expect(e.out).toMatch(/loss \d+\.\d+ nats\/token/);
    expect((await aes(['sample', '--ckpt', join(dir, 'none'), '--backend', 'cpu'])).err).toMatch(/no checkpoint at/);
  }, 180_000);

  it('train and eval on a task at several lengths print the by-length table', async () => {
    const out = join(dir, 'lengths');
    const flags = ['--layers', '1', '--heads', '1', '--embd', '8', '--batch', '4', '--backend', 'cpu'];
    const t = await aes([
      'train', '--data', 'task:copy:len=4', '--pos', 'rope', '--steps', '2', '--eval-lengths', '1x,3x', '--out', out,
      ...flags,
    ]);
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/by length:\n  length  tokens  exact[^\n]*\n +4 +8 [^\n]*\n +12 +24 /);
    const e = await aes(['eval', '--ckpt', join(out, 'ckpt'), '--eval-lengths', '16', '--backend', 'cpu']);
    expect(e.code).toBe(0);
    expect(e.out).toMatch(/by length:\n[^\n]*\n +16 +32 /);
  }, 180_000);
});
