/**
 * `aes sweep`: the runs of a grid (grid.ts) on a local pool of runner processes, or through a
 * BullMQ queue in Redis that `aes worker` processes on any machine take runs from. Runs write to the
 * sweep's output directory, which every worker must see at the same path (a shared filesystem):
 * checkpoints, metrics and `done.json` live there, so a run given to another worker after its first
 * one died (BullMQ's stalled-job detection) resumes from its last checkpoint.
 */
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sweep, SweepRun } from './grid.js';
import { readResult, runState, RunnerPool, type RunResult, type SweepJob } from './pool.js';
import { writeChart } from './plot.js';

/** The BullMQ queue every sweep's jobs go to (a job's name is its sweep's). */
export const QUEUE_NAME = 'aes-sweep';

export interface SweepProgress {
  done: number;
  running: number;
  failed: number;
  waiting: number;
  total: number;
  etaSeconds: number | null;
}

/** Where progress and errors are reported. */
export interface SweepReport {
  progress(p: SweepProgress): void;
  failed(run: string, error: string, willRetry: boolean): void;
}

const jobOf = (sweep: Sweep, run: SweepRun, backend: string): SweepJob =>
  ({ sweep: sweep.name, name: run.name, axes: run.axes, config: run.config, backend });

/**
 * Runs every unfinished run on `workers` runner processes, retrying a failed run up to `retries`
 * times; finished runs (done.json) are skipped. Returns the failures (run name → error).
 */
export async function runLocal(
  sweep: Sweep,
  opts: { workers: number; retries: number; backend: string; threads?: number },
  report: SweepReport,
): Promise<Record<string, string>> {
  const todo = sweep.runs.filter((r) => runState(r.config.out) !== 'done');
  const total = sweep.runs.length;
  let done = total - todo.length,
    running = 0,
    failed = 0;
  const durations: number[] = [];
  const failures: Record<string, string> = {};
  const eta = () =>
    durations.length
      ? ((durations.reduce((a, b) => a + b) / durations.length) * (total - done - failed)) / Math.max(1, opts.workers)
      : null;
  const tick = () =>
    report.progress({ done, running, failed, waiting: total - done - running - failed, total, etaSeconds: eta() });
  tick();
  if (!todo.length) return failures;
  const pool = new RunnerPool(Math.min(opts.workers, todo.length), opts.threads);
  try {
    await Promise.all(
      todo.map(async (run) => {
        for (let attempt = 0; ; attempt++) {
          try {
            const r = await pool.run(jobOf(sweep, run, opts.backend), () => {
              running++;
              tick();
            });
            durations.push(r.seconds);
            running--;
            done++;
            tick();
            return;
          } catch (e) {
            running--;
            const msg = (e as Error).message;
            const retry = attempt < opts.retries;
            report.failed(run.name, msg, retry);
            if (!retry) {
              failed++;
              failures[run.name] = msg;
              tick();
              return;
            }
          }
        }
      }),
    );
  } finally {
    pool.close();
  }
  return failures;
}

/** `redis://host:port` → a BullMQ connection. */
export function redisConnection(url: string): ConnectionOptions {
  const m = /^redis:\/\/([^:/]+)(?::(\d+))?\/?$/.exec(url);
  if (!m) throw new RangeError(`--queue must look like redis://HOST:PORT, got '${url}'`);
  return { host: m[1], port: m[2] ? Number(m[2]) : 6379, maxRetriesPerRequest: null };
}

const jobId = (sweep: string, run: string) => `${sweep}__${run}`.replace(/:/g, '_');

/**
 * Puts every unfinished run on the queue (one job per run: a second `aes sweep` adds nothing twice,
 * and a failed job is retried), then follows the jobs until all are finished or failed.
 */
export async function runQueued(sweep: Sweep, opts: { connection: ConnectionOptions; retries: number; backend: string;
  follow: boolean; pollMs?: number }, report: SweepReport): Promise<Record<string, string>> {
  const queue = new Queue(QUEUE_NAME, { connection: opts.connection });
  try {
    for (const run of sweep.runs) {
      if (runState(run.config.out) === 'done') continue;
      const id = jobId(sweep.name, run.name);
      const existing = await queue.getJob(id);
      if (existing && (await existing.getState()) === 'failed') {
        await existing.retry();
        continue;
      }
      // completed, but its files were removed since: run it again
      if (existing && (await existing.getState()) === 'completed') await existing.remove();
      await queue.add(sweep.name, jobOf(sweep, run, opts.backend), {
        jobId: id,
        attempts: opts.retries + 1,
        removeOnComplete: false,
        removeOnFail: false,
      });
    }
    let p = await queueStatus(sweep, queue);
    report.progress(p);
    while (opts.follow && p.done + p.failed < p.total) {
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 1000));
      p = await queueStatus(sweep, queue);
      report.progress(p);
    }
    const failures: Record<string, string> = {};
    for (const run of sweep.runs) {
      const job = await queue.getJob(jobId(sweep.name, run.name));
      if (job && (await job.getState()) === 'failed') failures[run.name] = job.failedReason;
    }
    return failures;
  } finally {
    await queue.close();
  }
}

/** Done / running / failed / waiting of a sweep's runs (done: its directory holds done.json). */
export async function queueStatus(sweep: Sweep, queue: Queue): Promise<SweepProgress> {
  const p: SweepProgress = { done: 0, running: 0, failed: 0, waiting: 0, total: sweep.runs.length, etaSeconds: null };
  for (const run of sweep.runs) {
    if (runState(run.config.out) === 'done') { p.done++; continue; }
    const state = await (await queue.getJob(jobId(sweep.name, run.name)))?.getState();
    if (state === 'active') p.running++; else if (state === 'failed') p.failed++; else p.waiting++;
  }
  return p;
}

/** `aes sweep --status`: the counts once. */
export async function printStatus(sweep: Sweep, connection: ConnectionOptions): Promise<SweepProgress> {
  const queue = new Queue(QUEUE_NAME, { connection });
  try { return await queueStatus(sweep, queue); } finally { await queue.close(); }
}

/**
 * `aes worker`: takes runs from the queue, `concurrency` at a time (one runner process each), until
 * the process is stopped. `lockSeconds` is how long a run stays given to a worker that stopped
 * answering before BullMQ hands it to another.
 */
export function startWorker(opts: { connection: ConnectionOptions; concurrency: number; lockSeconds: number;
  threads?: number; onEvent?: (what: string) => void }): { close(): Promise<void> } {
  const pool = new RunnerPool(opts.concurrency, opts.threads);
  const worker = new Worker(
    QUEUE_NAME,
    async (job: Job<SweepJob>) => {
      opts.onEvent?.(`start ${job.data.sweep}/${job.data.name}`);
      const r = await pool.run(job.data);
      opts.onEvent?.(`done ${job.data.sweep}/${job.data.name} (step ${r.step})`);
      return { name: r.name, step: r.step, loss: r.final.loss };
    },
    {
      connection: opts.connection,
      concurrency: opts.concurrency,
      lockDuration: opts.lockSeconds * 1000,
      stalledInterval: Math.max(1000, (opts.lockSeconds * 1000) / 2),
      maxStalledCount: 3,
    },
  );
  worker.on('failed', (job, e) => opts.onEvent?.(`failed ${job?.data.sweep}/${job?.data.name}: ${e.message}`));
  return { close: async () => { await worker.close(); pool.close(); } };
}

/**
 * `aes sweep --report`: every finished run's final metrics in `<out>/report.csv` (axis values, then
 * metrics), and a chart of the main metric per run (`report.svg/png`). Returns the file paths.
 */
export async function writeReport(sweep: Sweep): Promise<string[]> {
  const done = sweep.runs
    .filter((r) => existsSync(join(r.config.out, 'done.json')))
    .map((r) => readResult(r.config.out));
  if (!done.length) throw new Error(`sweep ${sweep.name}: no run has finished yet (nothing to report)`);
  const axes = [...new Set(done.flatMap((r) => Object.keys(r.axes)))];
  const metric = (r: RunResult) => r.final.exactMatch ?? r.final.bitsPerChar ?? r.final.loss;
  const metricName =
    done[0].final.exactMatch !== undefined
      ? 'exact match'
      : done[0].final.bitsPerChar !== undefined
        ? 'bits/char'
        : 'val loss';
  const rows = done.map((r) => ({
    run: r.name,
    ...r.axes,
    step: r.step,
    valLoss: r.final.loss,
    exactMatch: r.final.exactMatch ?? '',
    tokenAccuracy: r.final.tokenAccuracy ?? '',
    bitsPerChar: r.final.bitsPerChar ?? '',
    seconds: Number(r.seconds.toFixed(1)),
  }));
  const cols = Object.keys(rows[0]);
  const cell = (v: unknown) => (typeof v === 'string' && /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : String(v));
  const csv = join(sweep.out, 'report.csv');
  writeFileSync(
    csv,
    [cols.join(','), ...rows.map((r) => cols.map((c) => cell((r as Record<string, unknown>)[c])).join(','))].join(
      '\n',
    ) + '\n',
  );
  const [first, second] = axes;
  const charts = await writeChart({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json', title: `${sweep.name}: ${metricName} per run`,
    width: 480, height: 240,
    data: { values: done.map((r) => ({ ...r.axes, value: metric(r) })) },
    mark: second ? { type: 'point', filled: true, size: 60 } : 'bar',
    encoding: {
      x: { field: first, type: 'nominal' },
      y: { field: 'value', type: 'quantitative', title: metricName },
      ...(second ? { color: { field: second, type: 'nominal' } } : {}),
    },
  }, join(sweep.out, 'report'));
  return [csv, ...charts, ...(await lengthChart(sweep, done))];
}

/**
 * Accuracy against evaluation length (log x), one line per setting, for runs whose metrics hold
 * per-length validation records (`{"split": "val", "length": L, "exact": …}`, `--eval-lengths`).
 */
async function lengthChart(sweep: Sweep, done: RunResult[]): Promise<string[]> {
  const points = done.flatMap((r) => {
    const dir = sweep.runs.find((x) => x.name === r.name)!.config.out;
    const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    const last = lines.filter((x) => x.split === 'val' && typeof x.length === 'number');
    const step = Math.max(...last.map((x) => x.step as number));
    const setting =
      Object.entries(r.axes)
        .filter(([k]) => k !== 'seed')
        .map(([k, v]) => `${k}=${v}`)
        .join(',') || r.name;
    return last
      .filter((x) => x.step === step)
      .map((x) => ({ setting, seed: r.axes.seed ?? 0, length: x.length, exact: x.exact }));
  });
  if (!points.length) return [];
  return writeChart({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json', title: `${sweep.name}: exact match against length`,
    width: 480, height: 280, data: { values: points },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'length', type: 'quantitative', scale: { type: 'log', base: 2 }, title: 'evaluation length' },
      y: { aggregate: 'mean', field: 'exact', type: 'quantitative', title: 'exact match (mean over seeds)' },
      color: { field: 'setting', type: 'nominal' },
    },
  }, join(sweep.out, 'report_length'));
}

/** `sweep.json` in the output directory: what was asked, for a later `--report` or `--status`. */
export function recordSweep(sweep: Sweep, gridPath: string): void {
  mkdirSync(sweep.out, { recursive: true });
  writeFileSync(join(sweep.out, 'sweep.json'),
    `${JSON.stringify({ name: sweep.name, grid: gridPath, runs: sweep.runs.map((r) => r.name) }, null, 2)}\n`);
}
