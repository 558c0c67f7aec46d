/**
 * The `aes` command line: `aes train`, `aes sample`, `aes eval`, `aes --help`, as one function of
 * its arguments (`runCli`) that writes through an `Io` and returns the exit status; main.ts is the
 * process entry around it. It picks the backend, reads flags and prints; the library code it calls
 * does not.
 */
import * as tf from '@tensorflow/tfjs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { generate, loadCheckpoint, Rng, type Tokenizer } from '@aes/models';
import { defaultThreads, fileSystemIO, MAX_WASM_THREADS, selectBackend, type BackendName } from '@aes/node';
import { checkTrainConfig, TRAIN_DEFAULTS, TRAIN_FLAG_HELP, type TrainConfig } from './config.js';
import { FlagError, givenFlags, parseFlags } from './flags.js';
import { writeTrainingPlots } from './plot.js';
import { makeSampler, SAMPLE_DEFAULTS, SAMPLE_FLAG_HELP } from './sampling.js';
import { openSource } from './source.js';
import { isTaskSpec, TASKS } from './tasks.js';
import { loadGrid } from './grid.js';
import { runState } from './pool.js';
import {
  printStatus, recordSweep, redisConnection, runLocal, runQueued, startWorker, writeReport, type SweepProgress,
} from './sweep.js';
import { evaluate, train, type EvalMetrics, type TrainEvent } from './trainer.js';
import { exportView, serveView } from './view/serve.js';
import { evaluateLengths, parseLengths, type LengthMetrics } from './eval_lengths.js';

/** Where the CLI writes: standard output, standard error, and whether the output is a terminal. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  tty: boolean;
}

const USAGE = `aes — adaptive entropy sparsity attention: train, sample, evaluate

  aes train  --data <file|url|task:NAME[:k=v,…]> --steps N [--out DIR] [flags]
  aes sample --ckpt DIR --prompt TEXT [--sampler NAME] [flags]
  aes eval   --ckpt DIR [--data …]
  aes sweep  GRID.(json|yaml) [--workers N] [--retries R] [--report] [--queue redis://HOST:PORT [--status]]
  aes worker --queue redis://HOST:PORT [--concurrency N]
  aes view   RUN_DIR [RUN_DIR…] [--port P] [--host H] [--export DIR]
  aes --help | aes <command> --help

Tasks: ${Object.keys(TASKS).map((t) => `task:${t}`).join(', ')}
  (e.g. task:copy:len=16,vary=8; a wrong parameter's error lists the valid ones).
Attention (--attention): softmax | sparsemax | entmax15 | alpha=<x> | learned | aes | aes-row | ssmax | asentmax |
  adaptive-temp, per layer with ',', per head with '/'; one '/' list applies to every layer.
Samplers (--sampler): greedy, temperature, topk, topp, minp, typical, entmax, entropix, free-energy.
Backends (--backend): wasm (default) | cpu | webgpu | tensorflow | auto.`;

const BACKEND_HELP = 'wasm (default), cpu, webgpu, tensorflow, tensorflow-gpu or auto';
const THREADS_HELP = SAMPLE_FLAG_HELP.threads;
const EVAL_DEFAULTS = {
  ckpt: '',
  data: '',
  backend: 'wasm',
  threads: 0,
  evalBatches: 8,
  batch: 32,
  cacheDir: TRAIN_DEFAULTS.cacheDir,
  evalLengths: '',
};
const EVAL_FLAG_HELP: Record<keyof typeof EVAL_DEFAULTS, string> = {
  ckpt: 'checkpoint directory (a run\'s ckpt/)', data: 'data to evaluate on (default: the data it was trained on)',
  backend: BACKEND_HELP, threads: THREADS_HELP, evalBatches: 'validation batches', batch: 'sequences per batch',
  cacheDir: 'where downloaded texts are kept',
  evalLengths: "also evaluate at these lengths, e.g. '64,128,256' or '1x,2x,4x' (multiples of the training length)",
};
const TRAIN_FLAGS = { ...TRAIN_DEFAULTS, stopAt: 0, backend: 'wasm', threads: 0 };
const SWEEP_DEFAULTS = {
  workers: cpus().length, retries: 1, queue: '', status: false, report: false, backend: 'wasm', threads: 0,
};
const SWEEP_FLAG_HELP: Record<keyof typeof SWEEP_DEFAULTS, string> = {
  workers: 'local runner processes (one run each at a time)',
  retries: 'tries again after a run fails, up to this many times',
  queue: 'redis://HOST:PORT: put the runs on a BullMQ queue for aes worker processes instead of running them here',
  status: 'with --queue: print done / running / failed / waiting and exit',
  report: 'write report.csv and report.svg/png',
  backend: BACKEND_HELP,
  threads: 'wasm threads per run (0: the cores shared among the runners)',
};
const WORKER_DEFAULTS = { queue: '', concurrency: 1, lockSeconds: 30, backend: 'wasm', threads: 0 };
const WORKER_FLAG_HELP: Record<keyof typeof WORKER_DEFAULTS, string> = {
  queue: 'redis://HOST:PORT of the sweep queue', concurrency: 'runs at a time (one runner process each)',
  lockSeconds: 'a run whose worker stops answering this long goes to another worker', backend: BACKEND_HELP,
  threads: 'wasm threads per run (0: the cores shared among the runs at a time)',
};
const VIEW_DEFAULTS = { port: 5178, host: '127.0.0.1', export: '' };
const VIEW_FLAG_HELP: Record<keyof typeof VIEW_DEFAULTS, string> = {
  port: 'port of the page (taken: the next free one, said in the output; 0: any free port)',
  host: 'address to listen on (loopback by default; 0.0.0.0 shows the page to the network)',
  export: 'write the page as static files (index.html, app.js, data.js) into this new directory instead',
};
const HELP: Record<string, [Record<string, unknown>, Record<string, string>]> = {
  train: [
    TRAIN_FLAGS,
    {
      ...TRAIN_FLAG_HELP, stopAt: 'stop after this step, as if interrupted (0: off)', backend: BACKEND_HELP,
      threads: THREADS_HELP,
    },
  ],
  sample: [SAMPLE_DEFAULTS, { ...SAMPLE_FLAG_HELP, backend: BACKEND_HELP }],
  eval: [EVAL_DEFAULTS, EVAL_FLAG_HELP],
  sweep: [SWEEP_DEFAULTS, SWEEP_FLAG_HELP],
  worker: [WORKER_DEFAULTS, WORKER_FLAG_HELP],
  view: [VIEW_DEFAULTS, VIEW_FLAG_HELP],
};

/**
 * Runs one `aes` command; returns the exit status (0 ok, 1 failed, 2 bad usage). Errors are
 * printed as `error: <message>`, never as a stack trace.
 */
export async function runCli(argv: string[], io: Io): Promise<number> {
  try {
    const [command, ...rest] = argv;
    if (!command || command === '--help' || command === '-h' || command === 'help') { io.out(`${USAGE}\n`); return 0; }
    if (rest.includes('--help')) { io.out(`${helpOf(command)}\n`); return 0; }
    if (command === 'train') await trainCommand(rest, io);
    else if (command === 'sample') await sampleCommand(rest, io);
    else if (command === 'eval') await evalCommand(rest, io);
    else if (command === 'sweep') return await sweepCommand(rest, io);
    else if (command === 'worker') await workerCommand(rest, io);
    else if (command === 'view') await viewCommand(rest, io);
    else {
      throw new FlagError(`unknown command '${command}'; use train, sample, eval, sweep, worker or view (aes --help)`);
    }
    return 0;
  } catch (e) {
    io.err(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    return e instanceof FlagError ? 2 : 1;
  }
}

function helpOf(command: string): string {
  const entry = HELP[command];
  if (!entry) return USAGE;
  const [defaults, help] = entry;
  const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const lines = Object.keys(defaults).map(
    (k) => `  --${kebab(k).padEnd(18)} ${help[k]} (default ${JSON.stringify(defaults[k])})`,
  );
  return `aes ${command} flags:\n${lines.join('\n')}`;
}

/** `--threads`: 0 means one per core, shared among `runners` processes; otherwise 1 … MAX_WASM_THREADS. */
function threadsOf(flag: number, runners = 1): number {
  if (!(Number.isInteger(flag) && flag >= 0 && flag <= MAX_WASM_THREADS)) {
    throw new FlagError(`--threads must be an integer in 0 … ${MAX_WASM_THREADS} (0: one per core), got ${flag}`);
  }
  return flag || Math.max(1, Math.floor(defaultThreads() / runners));
}

async function useBackend(name: string, threads: number): Promise<string> {
  const b = await selectBackend(name as BackendName, { threads: threadsOf(threads) });
  const skipped = b.skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
  return `${b.name} (${b.detail})${skipped ? `; skipped ${skipped}` : ''}`;
}

async function trainCommand(argv: string[], io: Io): Promise<void> {
  const { backend, threads, ...cfg } = parseFlags(argv, TRAIN_FLAGS, 'train');
  const config = { ...cfg, stopAt: cfg.stopAt || undefined } as TrainConfig;
  checkTrainConfig(config);
  if (givenFlags(argv).has('blockSize') && isTaskSpec(config.data)) {
    io.err(
      `warning: --block-size ${config.blockSize} does not apply to ${config.data}: a task sets its own sequence ` +
      `length\n`,
    );
  }
  const active = await useBackend(backend, threads);
  io.out(`backend ${active}\n`);
  const env = {
    backend: active,
    tfjs: tf.version.tfjs,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
  let out = config.out;
  const progress = progressPrinter(config.logEvery, io);
  const result = await train(config, (e) => { if (e.type === 'start') out = e.out; progress(e); }, env);
  if (io.tty) io.out('\n');
  const files = await writeTrainingPlots(out);
  io.out(`\nfinal validation (step ${result.step}):\n${formatMetrics(result.final)}\n`);
  if (result.lengths.length) io.out(`\nby length:\n${formatLengths(result.lengths)}\n`);
  io.out(
    `\nwrote ${join(out, 'metrics.jsonl')}, ${join(out, 'config.json')}, ${join(out, 'ckpt')}/, ${files.join(', ')}\n`,
  );
}

/** A progress bar with ETA on a terminal; plain lines every `every` steps otherwise. */
function progressPrinter(every: number, io: Io): (e: TrainEvent) => void {
  let t0 = 0, s0 = 0;
  return (e) => {
    if (e.type === 'start') {
      if (e.movedAside) io.out(`moved the run that was in ${e.out} to ${e.movedAside}\n`);
      io.out(`output ${e.out}\n${e.source}; ${e.params} parameters; steps ${e.step + 1}…${e.total}\n`);
      [t0, s0] = [performance.now(), e.step];
    } else if (e.type === 'step') {
      const eta = ((performance.now() - t0) / 1000 / (e.step - s0)) * (e.total - e.step);
      const line = `step ${e.step}/${e.total}  loss ${e.loss.toFixed(4)}  lr ${e.lr.toExponential(2)}  ` +
        `${Math.round(e.tokensPerSecond)} tok/s  ETA ${eta.toFixed(0)}s`;
      if (io.tty) {
        const width = 24, done = Math.round((width * e.step) / e.total);
        io.out(`\r[${'='.repeat(done)}${' '.repeat(width - done)}] ${line}  `);
      } else if (e.step % every === 0 || e.step === e.total) io.out(`${line}\n`);
    } else if (e.type === 'eval') {
      const m = e.metrics;
      const extra = m.exactMatch !== undefined ? `  exact match ${(100 * m.exactMatch).toFixed(1)}%`
        : m.bitsPerChar !== undefined ? `  ${m.bitsPerChar.toFixed(3)} bits/char` : '';
      const alphas = m.alpha.map((l) => l.map((a) => a.toFixed(2)).join('/')).join(' | ');
      const msg = `eval @${e.step}: val loss ${m.loss.toFixed(4)}${extra}  α ${alphas}`;
      io.out(io.tty ? `\r${msg.padEnd(100)}\n` : `${msg}\n`);
    }
  };
}

/** The per-length table: length, tokens, exact match, token accuracy, loss, mean α and support per layer. */
export function formatLengths(rows: LengthMetrics[]): string {
  const pct = (x?: number) => (x === undefined ? '   –  ' : `${(100 * x).toFixed(1).padStart(5)}%`);
  const mean = (g: number[][]) => g.map((l) => (l.reduce((a, b) => a + b, 0) / l.length).toFixed(2)).join('/');
  return [
    `  length  tokens  exact   tokens-right  loss     α (mean per layer)  support`,
    ...rows.map(
      (r) =>
        `  ${String(r.length).padStart(6)}  ${String(r.tokens).padStart(6)}  ${pct(r.exact)}  ` +
        `${pct(r.tokenAccuracy)}       ${r.loss.toFixed(4)}   ${mean(r.alpha).padEnd(18)}  ${mean(r.support)}`,
    ),
  ].join('\n');
}

/** The end-of-run summary (the README quotes it, rendered from a committed run). */
export function formatMetrics(m: EvalMetrics): string {
  const pct = (x: number, d = 1) => `${(100 * x).toFixed(d)}%`;
  const lines = [`  loss ${m.loss.toFixed(4)} nats/token`];
  if (m.bitsPerChar !== undefined) lines.push(`  ${m.bitsPerChar.toFixed(3)} bits/char`);
  if (m.exactMatch !== undefined)
    lines.push(`  exact match ${pct(m.exactMatch)}, token accuracy ${pct(m.tokenAccuracy!)}`);
  m.alpha.forEach((layer, l) =>
    lines.push(
      `  layer ${l}: α ${layer.map((a) => a.toFixed(3)).join(', ')}; ` +
        `support ${m.supportFraction[l].map((s) => pct(s, 0)).join(', ')}; entropy ` +
        `${m.entropy[l].map((h) => h.toFixed(2)).join(', ')} nats`,
    ),
  );
  return lines.join('\n');
}

async function evalCommand(argv: string[], io: Io): Promise<void> {
  const f = parseFlags(argv, EVAL_DEFAULTS, 'eval');
  if (!f.ckpt) throw new FlagError('aes eval: --ckpt DIR is required');
  io.out(`backend ${await useBackend(f.backend, f.threads)}\n`);
  const { model, tokenizer, meta } = await loadCheckpoint(fileSystemIO(f.ckpt), f.ckpt);
  const trained = meta.train as TrainConfig | undefined;
  const data = f.data || trained?.data;
  if (!data) throw new FlagError('aes eval: the checkpoint does not name its data; pass --data');
  const source = await openSource({
    data, blockSize: model.config.blockSize, tokenizer: tokenizer.kind, evalBatches: f.evalBatches, batch: f.batch,
    valFraction: trained?.valFraction ?? TRAIN_DEFAULTS.valFraction, cacheDir: f.cacheDir, seed: trained?.seed ?? 0,
    savedTokenizer: tokenizer,
  });
  const trainedOn = trained?.data ?? 'unknown data';
  if (isTaskSpec(data) !== isTaskSpec(trainedOn) || source.vocabSize !== model.config.vocabSize) {
    throw new Error(`--data ${data} does not fit this checkpoint: its model was trained on ${trainedOn} (vocabulary ` +
      `${model.config.vocabSize}), the data has vocabulary ${source.vocabSize}${isTaskSpec(data) ? ' (a task)' : ''}`);
  }
  if (data !== trainedOn) io.err(`note: evaluating on ${data}; the model was trained on ${trainedOn}\n`);
  io.out(`${source.describe()}\n${formatMetrics(await evaluate(model, source))}\n`);
  const lengths = parseLengths(f.evalLengths, source.trainLength);
  if (lengths.length) {
    const rows = await evaluateLengths(model, source, lengths, Number(meta.step ?? 0));
    io.out(`\nby length:\n${formatLengths(rows)}\n`);
  }
}

async function sampleCommand(argv: string[], io: Io): Promise<void> {
  const f = parseFlags(argv, SAMPLE_DEFAULTS, 'sample');
  if (!f.ckpt) throw new FlagError('aes sample: --ckpt DIR is required');
  const sampler = makeSampler(f);
  io.err(`backend ${await useBackend(f.backend, f.threads)}\n`);
  const { model, tokenizer } = await loadCheckpoint(fileSystemIO(f.ckpt), f.ckpt);
  const unknown = unknownCharacters(tokenizer, f.prompt);
  if (unknown.length) {
    io.err(`warning: the prompt's characters ${unknown.map((c) => JSON.stringify(c)).join(' ')} are not in the ` +
      `model's vocabulary; they are read as <unk> (shown as \uFFFD)\n`);
  }
  const prompt = tokenizer.encode(f.prompt || '\n');
  const trace: string[] = [];
  io.out(f.prompt);
  const pending: number[] = [];
  const res = await generate(model, prompt, {
    maxNewTokens: f.maxNewTokens, sampler, rng: new Rng(f.seed), attentionStats: f.sampler === 'entropix',
    onToken: (token, record) => {
      pending.push(token);
      const text = tokenizer.decode(pending);
      if (!text.endsWith('\uFFFD')) { io.out(text); pending.length = 0; }   // wait for whole UTF-8 characters
      if (f.trace) trace.push(JSON.stringify({ ...record, text: tokenizer.decode([token]) }));
    },
  });
  io.out(`${pending.length ? tokenizer.decode(pending) : ''}\n`);
  if (f.trace) {
    writeFileSync(f.trace, `${trace.join('\n')}\n`);
    io.err(`wrote ${res.records.length} decision records to ${f.trace}\n`);
  }
}

/** `aes view RUN_DIR…`: serves the page until the process is stopped, or writes it with `--export`. */
async function viewCommand(argv: string[], io: Io): Promise<void> {
  const first = argv.findIndex((a) => a.startsWith('--'));
  const dirs = first < 0 ? argv : argv.slice(0, first);
  const f = parseFlags(first < 0 ? [] : argv.slice(first), VIEW_DEFAULTS, 'view');
  if (!dirs.length) throw new FlagError('aes view: give one or more run directories: aes view RUN_DIR [RUN_DIR…]');
  if (!(Number.isInteger(f.port) && f.port >= 0 && f.port <= 65535))
    throw new FlagError(`--port must be an integer in 0 … 65535, got ${f.port}`);
  if (f.export) {
    io.out(`wrote ${(await exportView(dirs, f.export)).join(', ')} (open index.html in a browser)\n`);
    return;
  }
  const server = await serveView(dirs, { port: f.port, host: f.host });
  if (server.moved) io.out(`${server.moved}\n`);
  io.out(`aes view: ${dirs.length} run${dirs.length > 1 ? 's' : ''} at ${server.url} (Ctrl-C stops)\n`);
  await new Promise(() => {});                              // serves until the process is stopped
}

/** `aes sweep GRID`: runs a grid locally or through a queue; exit 1 when some run failed. */
async function sweepCommand(argv: string[], io: Io): Promise<number> {
  const [grid, ...rest] = argv;
  if (!grid || grid.startsWith('--'))
    throw new FlagError('aes sweep: give the grid file first: aes sweep GRID.(json|yaml) [flags]');
  const f = parseFlags(rest, SWEEP_DEFAULTS, 'sweep');
  if (!(Number.isInteger(f.workers) && f.workers >= 1))
    throw new FlagError(`aes sweep: --workers must be a positive integer, got ${f.workers}`);
  if (!(Number.isInteger(f.retries) && f.retries >= 0))
    throw new FlagError(`aes sweep: --retries must be an integer ≥ 0, got ${f.retries}`);
  if (f.status && !f.queue) throw new FlagError('aes sweep: --status needs --queue');
  const sweep = loadGrid(grid);
  const connection = f.queue ? redisConnection(f.queue) : null;
  if (f.status) {
    const p = await printStatus(sweep, connection!);
    io.out(`${sweep.name}: ${progressLine(p)}\n`);
    return 0;
  }
  if (f.report && sweep.runs.every((r) => runState(r.config.out) === 'done')) {
    io.out(`wrote ${(await writeReport(sweep)).join(', ')}\n`);
    return 0;
  }
  recordSweep(sweep, grid);
  io.out(`sweep ${sweep.name}: ${sweep.runs.length} runs in ${sweep.out}` +
    `${connection ? ` through ${f.queue}` : ` on ${Math.min(f.workers, sweep.runs.length)} local runners`}\n`);
  let last = '';
  const report = {
    progress: (p: SweepProgress) => {
      const line = progressLine(p);
      if (line === last) return;
      last = line;
      io.out(io.tty ? `\r${line.padEnd(80)}` : `${line}\n`);
    },
    failed: (run: string, error: string, retry: boolean) =>
      io.err(`${io.tty ? '\n' : ''}run ${run} failed${retry ? ' (trying again)' : ''}: ${error}\n`),
  };
  const failures = connection
    ? await runQueued(sweep, { connection, retries: f.retries, backend: f.backend, follow: true }, report)
    : await runLocal(sweep, { workers: f.workers, retries: f.retries, backend: f.backend,
      threads: threadsOf(f.threads, Math.min(f.workers, sweep.runs.length)) }, report);
  if (io.tty) io.out('\n');
  if (f.report) io.out(`wrote ${(await writeReport(sweep)).join(', ')}\n`);
  const failed = Object.keys(failures);
  if (failed.length) io.err(`${failed.length} run(s) failed: ${failed.join(', ')}\n`);
  return failed.length ? 1 : 0;
}

function progressLine(p: SweepProgress): string {
  const eta = p.etaSeconds === null ? '' : `, ETA ${Math.round(p.etaSeconds)} s`;
  return `runs ${p.done}/${p.total} done, ${p.running} running, ${p.failed} failed, ${p.waiting} waiting${eta}`;
}

/** `aes worker`: takes runs from the queue until stopped (SIGINT / SIGTERM end it cleanly). */
async function workerCommand(argv: string[], io: Io): Promise<void> {
  const f = parseFlags(argv, WORKER_DEFAULTS, 'worker');
  if (!f.queue) throw new FlagError('aes worker: --queue redis://HOST:PORT is required');
  if (!(Number.isInteger(f.concurrency) && f.concurrency >= 1))
    throw new FlagError(`aes worker: --concurrency must be a positive integer`);
  const connection = redisConnection(f.queue);
  const worker = startWorker({ connection, concurrency: f.concurrency, lockSeconds: f.lockSeconds,
    threads: threadsOf(f.threads, f.concurrency), onEvent: (what) => io.out(`${what}\n`) });
  io.out(`worker on ${f.queue}, ${f.concurrency} at a time (pid ${process.pid})\n`);
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
  });
  await worker.close();
}

/** Characters of `text` that `tokenizer` reads as <unk> (a char tokenizer built from another text). */
function unknownCharacters(tokenizer: Tokenizer, text: string): string[] {
  if (tokenizer.kind !== 'char') return [];
  return [...new Set(Array.from(text))].filter((c) => tokenizer.encode(c)[0] === 0);
}
