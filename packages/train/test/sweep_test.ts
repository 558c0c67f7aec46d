/**
 * Sweeps: grid files and their errors; a 4-run grid on the local pool (finished runs skipped on
 * restart, a report); the same grid through BullMQ on a real redis-server with one worker SIGKILLed
 * in the middle of a run and another finishing everything: every run done once, nothing lost, and
 * the same metrics as the local pool's.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandGrid, loadGrid, QUEUE_NAME, runLocal, runQueued, type Sweep } from '../src/index.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const MAIN = join(import.meta.dirname, '..', 'src', 'main.ts');
const quiet = { progress: () => {}, failed: () => {} };
const grid = (out: string) => ({
  name: 'tiny',
  out,
  base: {
    data: 'task:copy:len=3',
    steps: 30,
    layers: 1,
    heads: 2,
    embd: 16,
    batch: 8,
    'eval-every': 15,
    'eval-batches': 1,
    'ckpt-every': 10,
    'log-every': 5,
  },
  axes: { attention: ['softmax', 'learned'], seed: [1, 2] },
});
/** The metric lines of a run, without timings. */
const metrics = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean)
  .map((l) => { const { tokensPerSecond: _t, ...r } = JSON.parse(l); return r; });

describe('sweep grids', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'aes-grid-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('expand into named runs, from JSON and YAML', () => {
    const s = expandGrid(grid('/x'), 'g');
    expect(s.runs.map((r) => r.name)).toEqual(['attention=softmax,seed=1', 'attention=softmax,seed=2',
      'attention=learned,seed=1', 'attention=learned,seed=2']);
    expect(s.runs[2].config).toMatchObject({
      attention: 'learned',
      seed: 1,
      steps: 30,
      evalEvery: 15,
      out: '/x/attention=learned,seed=1',
    });
    writeFileSync(join(dir, 'g.yaml'), 'axes:\n  seed: [1, 2, 3]\nbase:\n  steps: 5\n');
    const y = loadGrid(join(dir, 'g.yaml'));
    expect([y.name, y.out, y.runs.length]).toEqual(['g', join('runs', 'sweeps', 'g'), 3]);
  });

  it('bad grids are refused before anything runs, with the reason', () => {
    const bad = (g: unknown, re: RegExp) => expect(() => expandGrid(g, 'g')).toThrow(re);
    bad({ axes: { stepz: [1] } }, /unknown flag 'stepz' in axes; valid: data/);
    bad({ axes: { seed: [] } }, /axis seed is empty/);
    bad({ axes: {} }, /axes is empty/);
    bad({ axes: { seed: 3 } }, /axis seed must be a list/);
    bad({ base: { seed: 1 }, axes: { seed: [1] } }, /seed is both in base and in axes/);
    bad({ axes: { steps: [0] } }, /run steps=0: --steps must be a positive integer/);
    bad({ axes: { steps: ['ten'] } }, /steps must be a number/);
    bad({ axes: { seed: [1] }, workers: 2 }, /unknown key\(s\) workers/);
    writeFileSync(join(dir, 'bad.yaml'), 'axes: [seed: 1\n');
    expect(() => loadGrid(join(dir, 'bad.yaml'))).toThrow(/bad\.yaml is not valid YAML/);
    writeFileSync(join(dir, 'empty.json'), '');
    expect(() => loadGrid(join(dir, 'empty.json'))).toThrow(/is empty/);
    expect(() => loadGrid(join(dir, 'none.json'))).toThrow(/does not exist/);
  });
});

describe('sweeps: local pool and BullMQ on a real redis-server', () => {
  let dir: string, port: number, redis: ChildProcess;
  const workers: ChildProcess[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'aes-sweep-'));
    if (spawnSync('redis-server', ['--version']).error) {
      throw new Error('redis-server is not installed (Debian: apt-get install -y redis-server; .ci/run installs it)');
    }
    port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    for (
      let i = 0;
      i < 50 &&
      spawnSync('redis-cli', ['-p', String(port), 'ping'])
        .stdout?.toString()
        .trim() !== 'PONG';
      i++
    ) {
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(() => {
    for (const w of workers) w.kill('SIGKILL');
    redis?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  let local: Sweep;
  it('the local pool runs every run on two runners; a restart skips them all', async () => {
    local = expandGrid(grid(join(dir, 'local')), 'tiny');
    const failures = await runLocal(local, { workers: 2, retries: 0, backend: 'cpu' }, quiet);
    expect(failures).toEqual({});
    for (const r of local.runs) expect(existsSync(join(r.config.out, 'done.json'))).toBe(true);
    const seen: number[] = [];
    await runLocal(local, { workers: 2, retries: 0, backend: 'cpu' }, { ...quiet, progress: (p) => seen.push(p.done) });
    expect(seen).toEqual([4]);                                             // nothing ran again
  }, 180_000);

  it('BullMQ: a worker SIGKILLed mid-run, another resumes it from its checkpoint; results equal local', async () => {
    const sweep = expandGrid(grid(join(dir, 'queued')), 'tiny');
    const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
    const worker = () => {
      const w = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          '--conditions=aes-source',
          MAIN,
          'worker',
          '--queue',
          `redis://127.0.0.1:${port}`,
          '--backend',
          'cpu',
          '--lock-seconds',
          '3',
        ],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      workers.push(w);
      return w;
    };
    const first = worker();
    const follow = runQueued(sweep, { connection, retries: 0, backend: 'cpu', follow: true, pollMs: 200 }, quiet);
    // Wait until the first worker is inside a run: a checkpoint written, the run not finished.
    const inside = () =>
      sweep.runs.find(
        (r) => existsSync(join(r.config.out, 'ckpt', 'model.json')) && !existsSync(join(r.config.out, 'done.json')),
      );
    for (let i = 0; i < 600 && !inside(); i++) await new Promise((r) => setTimeout(r, 50));
    const victim = inside();
    expect(victim).toBeDefined();
    first.kill('SIGKILL');
    const second = worker();
    expect(await follow).toEqual({});
    for (const r of sweep.runs) {
      expect(existsSync(join(r.config.out, 'done.json'))).toBe(true);
      const mine = local.runs.find((l) => l.name === r.name)!;
      expect(metrics(r.config.out)).toEqual(metrics(mine.config.out)); // exact resume, nothing twice
    }
    // resumed, not started again: a restart would have moved the victim's first attempt aside
    expect(readdirSync(join(dir, 'queued')).filter((n) => n.includes('.bak-'))).toEqual([]);
    // the killed run itself: every step's rows once, as in the uninterrupted sweep
    const victimLocal = local.runs.find((l) => l.name === victim!.name)!;
    expect(metrics(victim!.config.out).length).toBeGreaterThan(1);
    expect(metrics(victim!.config.out)).toEqual(metrics(victimLocal.config.out));
    const queue = new Queue(QUEUE_NAME, { connection });
    const jobs = await Promise.all(sweep.runs.map((r) => queue.getJob(`tiny__${r.name}`)));
    expect(await Promise.all(jobs.map((j) => j!.getState()))).toEqual(Array(4).fill('completed'));
    await queue.close();
    second.kill('SIGTERM');
  }, 240_000);
});
