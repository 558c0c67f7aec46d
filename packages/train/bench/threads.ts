/**
 * What threads buy on the wasm backend: matMul GFLOP/s, attention() forward and forward+backward, and
 * `aes train` tokens/s on 1 thread and on N, each measured in a fresh process (a process has one wasm
 * backend, so one thread count), the processes interleaved over rounds (1, N, 1, N, …) so that drift
 * in machine speed hits both alike. Ratios are N-thread over 1-thread speed within a round, their
 * median over rounds.
 *
 *   pnpm bench:threads [--threads N (default: one per core)] [--rounds 3] [--json bench/threads.json]
 *
 * Targets (issue 18, on 2 cores): ≥ 1.7× on matMul, ≥ 1.5× on training.
 */
import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defaultThreads, exitOnUncaught, selectBackend, silenceTfjs } from '@aes/node';
import { parseFlags } from '../src/flags.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const MATMUL_SIZES = [256, 512, 1024];

/** Child mode: matMul GFLOP/s on `threads` threads, median of 7 after a warm-up, as JSON on stdout. */
async function matMulChild(threads: number): Promise<void> {
  const b = await selectBackend('wasm', { threads });
  const out: Record<string, number> = { threads: b.threads! };
  // The pool's workers load the wasm module after the backend is up: until they have, products run
  // slower than on one thread (256² at 0.3× in a first run). Half a second of large products first.
  const [a, c] = [1, 2].map((s) => tf.randomNormal([1024, 1024], 0, 1, 'float32', s));
  for (const t0 = performance.now(); performance.now() - t0 < 500;) tf.matMul(a, c).dispose();
  tf.dispose([a, c]);
  for (const n of MATMUL_SIZES) {
    const [x, y] = [1, 2].map((s) => tf.randomNormal([n, n], 0, 1, 'float32', s));
    const times: number[] = [];
    for (let r = 0; r < 8; r++) {
      const t0 = performance.now();
      const z = tf.matMul(x, y);
      await z.data();
      if (r > 0) times.push(performance.now() - t0);
      z.dispose();
    }
    tf.dispose([x, y]);
    out[`matMul ${n}`] = (2 * n ** 3) / (median(times) / 1000) / 1e9;
  }
  console.log(JSON.stringify(out));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** Runs a TypeScript entry of this workspace in a fresh process, the way this one was started. */
function runScript(script: string, args: string[]): string {
  return execFileSync(process.execPath, [...process.execArgv, join(ROOT, script), ...args],
    { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
}

/** One round's speeds on `threads` threads: higher is faster for every entry. */
function measure(threads: number, dir: string): Record<string, number> {
  const speeds: Record<string, number> = JSON.parse(
    runScript('packages/train/bench/threads.ts', ['--child', 'matmul', '--threads', String(threads)]).trim()
      .split('\n').pop()!,
  );
  const att = join(dir, `attention-${threads}.json`);
  runScript('packages/attention/bench/attention.ts', ['--threads', String(threads), '--lengths', '1024',
    '--only', 'learned α', '--repeats', '3', '--json', att]);
  for (const r of JSON.parse(readFileSync(att, 'utf8')).rows as Array<Record<string, string | number>>) {
    if (r.normaliser === 'strided √n') continue;
    speeds[`attention ${r.normaliser} T=${r.T} fwd (1/s)`] = 1000 / Number(r.fwdMs);
    speeds[`attention ${r.normaliser} T=${r.T} fwd+bwd (1/s)`] = 1000 / Number(r.fwdBwdMs);
  }
  const tr = join(dir, `train-${threads}.json`);
  runScript('packages/train/bench/train.ts', ['--threads', String(threads), '--rounds', '1', '--steps', '30',
    '--only', 'learned', '--json', tr]);
  for (const r of JSON.parse(readFileSync(tr, 'utf8')).rows as Array<Record<string, string | number>>) {
    speeds[`train ${r.size} ${r.normaliser} (tok/s)`] = Number(r.tokensPerSecond);
  }
  return speeds;
}

async function main(argv: string[]) {
  const f = parseFlags(argv, { threads: defaultThreads(), rounds: 3, json: '', child: '' }, 'bench:threads');
  if (f.child === 'matmul') return matMulChild(f.threads);
  if (f.threads < 2) throw new Error('bench:threads compares 1 thread with --threads N ≥ 2');
  const dir = mkdtempSync(join(tmpdir(), 'aes-bench-threads-'));
  const rounds: Array<Record<number, Record<string, number>>> = [];
  try {
    for (let r = 0; r < f.rounds; r++) {
      rounds.push({ 1: measure(1, dir), [f.threads]: measure(f.threads, dir) });
      console.error(`round ${r + 1}/${f.rounds} done`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const keys = Object.keys(rounds[0][1]).filter((k) => k !== 'threads');
  console.log(`wasm, 1 thread vs ${f.threads} threads (${rounds[0][f.threads].threads} in the pool); median of ` +
    `${f.rounds} interleaved rounds; ratio = ${f.threads}-thread speed / 1-thread speed in the same round`);
  const rows = keys.map((k) => {
    const one = median(rounds.map((x) => x[1][k]));
    const many = median(rounds.map((x) => x[f.threads][k]));
    const ratio = median(rounds.map((x) => x[f.threads][k] / x[1][k]));
    const unit = k.startsWith('matMul') ? 'GFLOP/s' : '';
    console.log(`  ${k.padEnd(44)} ${one.toFixed(1).padStart(9)} → ${many.toFixed(1).padStart(9)} ${unit.padEnd(8)}` +
      ` ${ratio.toFixed(2)}×`);
    return { measure: k, oneThread: one, threads: many, ratio };
  });
  if (f.json) {
    writeFileSync(f.json, `${JSON.stringify({ date: new Date().toISOString().slice(0, 10), tfjs: tf.version.tfjs,
      threads: f.threads, rounds: f.rounds, rows }, null, 2)}\n`);
  }
}

silenceTfjs();
exitOnUncaught();
main(process.argv.slice(2)).catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
