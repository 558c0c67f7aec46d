/**
 * The `aes` command line: `aes train`, `aes sample`, `aes eval`, `aes --help`, as one function of
 * its arguments (`runCli`) that writes through an `Io` and returns the exit status; main.ts is the
 * process entry around it. It picks the backend, reads flags and prints; the library code it calls
 * does not.
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { generate, loadCheckpoint, Rng, type Tokenizer } from '@aes/models';
import { fileSystemIO, selectBackend, type BackendName } from '@aes/node';
import { checkTrainConfig, TRAIN_DEFAULTS, TRAIN_FLAG_HELP, type TrainConfig } from './config.js';
import { FlagError, givenFlags, parseFlags } from './flags.js';
import { writeTrainingPlots } from './plot.js';
import { makeSampler, SAMPLE_DEFAULTS, SAMPLE_FLAG_HELP } from './sampling.js';
import { openSource } from './source.js';
import { isTaskSpec } from './tasks.js';
import { evaluate, train, type EvalMetrics, type TrainEvent } from './trainer.js';

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
  aes --help | aes <command> --help

Tasks: task:copy, task:reverse, task:sort, task:recall, task:needle (e.g. task:needle:len=64).
Attention (--attention): softmax | sparsemax | entmax15 | alpha=<x> | learned | aes, per layer with ',',
  per head with '/'; one '/' list applies to every layer.
Samplers (--sampler): greedy, temperature, topk, topp, minp, typical, entmax, entropix, free-energy.
Backends (--backend): wasm (default) | cpu | webgpu | tensorflow | auto.`;

const BACKEND_HELP = 'wasm (default), cpu, webgpu, tensorflow, tensorflow-gpu or auto';
const EVAL_DEFAULTS = {
  ckpt: '',
  data: '',
  backend: 'wasm',
  evalBatches: 8,
  batch: 32,
  cacheDir: TRAIN_DEFAULTS.cacheDir,
};
const EVAL_FLAG_HELP: Record<keyof typeof EVAL_DEFAULTS, string> = {
  ckpt: 'checkpoint directory (a run\'s ckpt/)', data: 'data to evaluate on (default: the data it was trained on)',
  backend: BACKEND_HELP, evalBatches: 'validation batches', batch: 'sequences per batch',
  cacheDir: 'where downloaded texts are kept',
};
const TRAIN_FLAGS = { ...TRAIN_DEFAULTS, stopAt: 0, backend: 'wasm' };
const HELP: Record<string, [Record<string, unknown>, Record<string, string>]> = {
  train: [
    TRAIN_FLAGS,
    { ...TRAIN_FLAG_HELP, stopAt: 'stop after this step, as if interrupted (0: off)', backend: BACKEND_HELP },
  ],
  sample: [SAMPLE_DEFAULTS, { ...SAMPLE_FLAG_HELP, backend: BACKEND_HELP }],
  eval: [EVAL_DEFAULTS, EVAL_FLAG_HELP],
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
    else throw new FlagError(`unknown command '${command}'; use train, sample or eval (aes --help)`);
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

async function useBackend(name: string): Promise<string> {
  const b = await selectBackend(name as BackendName);
  const skipped = b.skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
  return `${b.name} (${b.detail})${skipped ? `; skipped ${skipped}` : ''}`;
}

async function trainCommand(argv: string[], io: Io): Promise<void> {
  const { backend, ...cfg } = parseFlags(argv, TRAIN_FLAGS, 'train');
  const config = { ...cfg, stopAt: cfg.stopAt || undefined } as TrainConfig;
  checkTrainConfig(config);
  if (givenFlags(argv).has('blockSize') && isTaskSpec(config.data)) {
    io.err(
      `warning: --block-size ${config.blockSize} does not apply to ${config.data}: a task sets its own sequence ` +
      `length\n`,
    );
  }
  const active = await useBackend(backend);
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
  io.out(`backend ${await useBackend(f.backend)}\n`);
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
  io.out(`${source.describe()}\n${formatMetrics(evaluate(model, source))}\n`);
}

async function sampleCommand(argv: string[], io: Io): Promise<void> {
  const f = parseFlags(argv, SAMPLE_DEFAULTS, 'sample');
  if (!f.ckpt) throw new FlagError('aes sample: --ckpt DIR is required');
  const sampler = makeSampler(f);
  io.err(`backend ${await useBackend(f.backend)}\n`);
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
  const res = generate(model, prompt, {
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

/** Characters of `text` that `tokenizer` reads as <unk> (a char tokenizer built from another text). */
function unknownCharacters(tokenizer: Tokenizer, text: string): string[] {
  if (tokenizer.kind !== 'char') return [];
  return [...new Set(Array.from(text))].filter((c) => tokenizer.encode(c)[0] === 0);
}
