/**
 * Running sweep jobs: what one job does (`runSweepJob`: resume, restart or skip by what its
 * directory holds, then `train()`, then `done.json`), and a pool of forked runner processes
 * (runner.ts) that run jobs in parallel, one per process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TrainConfig } from './config.js';
import { train, type EvalMetrics } from './trainer.js';

/** One run as it travels to a runner (JSON). */
export interface SweepJob {
  sweep: string;
  name: string;
  axes: Record<string, string | number | boolean>;
  config: TrainConfig;
  backend: string;
}

/** What a finished run leaves in `done.json` and returns. */
export interface RunResult {
  sweep: string;
  name: string;
  axes: Record<string, string | number | boolean>;
  step: number;
  final: EvalMetrics;
  seconds: number;
}

/** What a run directory holds: a finished run, a checkpoint to resume, a run without one, or nothing. */
export function runState(dir: string): 'done' | 'resume' | 'restart' | 'fresh' {
  if (existsSync(join(dir, 'done.json'))) return 'done';
  if (existsSync(join(dir, 'ckpt', 'model.json')) || existsSync(join(dir, 'ckpt.old', 'model.json'))) return 'resume';
  if (existsSync(join(dir, 'metrics.jsonl')) || existsSync(join(dir, 'config.json'))) return 'restart';
  return 'fresh';
}

/** The result of a finished run (its done.json). */
export function readResult(dir: string): RunResult {
  return JSON.parse(readFileSync(join(dir, 'done.json'), 'utf8')) as RunResult;
}

/**
 * Trains one run to its end: resumes from its last checkpoint when there is one, moves a run
 * without a checkpoint aside (`overwrite`), returns the result of a run already finished.
 */
export async function runSweepJob(job: SweepJob): Promise<RunResult> {
  const dir = job.config.out;
  const state = runState(dir);
  if (state === 'done') return readResult(dir);
  const t0 = performance.now();
  const res = await train({ ...job.config, resume: state === 'resume', overwrite: state === 'restart' });
  const result: RunResult = { sweep: job.sweep, name: job.name, axes: job.axes, step: res.step, final: res.final,
    seconds: (performance.now() - t0) / 1000 };
  writeFileSync(join(dir, 'done.json'), `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

/**
 * The runner module next to this one and the node flags to start it: the built JavaScript as it
 * is, or the TypeScript sources (tests, `pnpm aes`) through tsx with the workspace's source condition.
 */
function runner(): { path: string; execArgv: string[] } {
  const ts = import.meta.url.endsWith('.ts');
  const path = fileURLToPath(new URL(ts ? './runner.ts' : './runner.js', import.meta.url));
  const loaded = process.execArgv.some((a) => a === 'tsx' || /[\\/]tsx[\\/]dist[\\/]/.test(a));
  return {
    path,
    execArgv: ts && !loaded ? [...process.execArgv, '--import', 'tsx', '--conditions=aes-source'] : process.execArgv,
  };
}

/** N runner processes, each on `threads` wasm threads; `run` sends a job to a free one. */
export class RunnerPool {
  private readonly idle: ChildProcess[] = [];
  private readonly waiting: Array<(c: ChildProcess) => void> = [];
  private readonly all: ChildProcess[] = [];
  private nextId = 0;

  constructor(size: number, private readonly threads = 1) {
    const { path, execArgv } = runner();
    for (let i = 0; i < size; i++) {
      const child = fork(path, [], { execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      child.once('message', () => this.release(child));              // { ready }
      this.all.push(child);
    }
  }

  /** Runs a job on the next free runner (`onStart` when it gets one); rejects with the run's error message. */
  async run(job: SweepJob, onStart?: () => void): Promise<RunResult> {
    const child = this.idle.pop() ?? (await new Promise<ChildProcess>((r) => this.waiting.push(r)));
    onStart?.();
    const id = this.nextId++;
    try {
      return await new Promise<RunResult>((resolve, reject) => {
        const onMessage = (m: { id?: number; ok?: boolean; result?: RunResult; error?: string }) => {
          if (m.id !== id) return;
          child.off('message', onMessage);
          child.off('exit', onExit);
          if (m.ok) resolve(m.result!); else reject(new Error(m.error));
        };
        const onExit = (code: number | null, signal: string | null) =>
          reject(new Error(`the runner process ended (${signal ?? `exit ${code}`}) during ${job.name}`));
        child.on('message', onMessage);
        child.once('exit', onExit);
        child.send({ id, job, threads: this.threads });
      });
    } finally {
      if (child.exitCode === null && child.signalCode === null) this.release(child);
    }
  }

  private release(child: ChildProcess): void {
    const next = this.waiting.shift();
    if (next) next(child); else this.idle.push(child);
  }

  close(): void {
    for (const c of this.all) c.kill();
  }
}
