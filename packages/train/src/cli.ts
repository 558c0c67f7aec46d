/**
 * The `aes` command line: `aes train`, `aes sample`, `aes eval`, `aes --help`. This is an entry
 * point: it picks the backend, reads the terminal and prints; the library code it calls does not.
 */
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { selectBackend, type BackendName, fileSystemIO } from '@aes/node';
import { generate, loadCheckpoint, Rng } from '@aes/models';
import { checkTrainConfig, TRAIN_DEFAULTS, type TrainConfig } from './config.js';
import { FlagError, parseFlags } from './flags.js';
import { writeTrainingPlots } from './plot.js';
import { makeSampler, SAMPLE_DEFAULTS } from './sampling.js';
import { openSource } from './source.js';
import { evaluate, train, type EvalMetrics, type TrainEvent } from './trainer.js';

const USAGE = `aes — adaptive entropy sparsity attention: train, sample, evaluate

  aes train  --data <file|url|task:NAME[:k=v,…]> --steps N --out DIR [flags]
  aes sample --ckpt DIR --prompt TEXT [--sampler NAME] [flags]
             samplers: greedy, temperature, topk, topp, minp, typical, entmax, entropix, free-energy
  aes eval   --ckpt DIR [--data …]
  aes --help | aes <command> --help

Tasks: task:copy, task:reverse, task:sort, task:recall, task:needle (e.g. task:needle:len=64).
Attention (--attention): softmax | sparsemax | entmax15 | alpha=<x> | learned | aes,
  per layer with ',', per head with '/'.
Backends (--backend): wasm (default) | cpu | webgpu | tensorflow | auto.`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') { console.log(USAGE); return; }
  if (rest.includes('--help')) { console.log(helpOf(command)); return; }
  if (command === 'train') return trainCommand(rest);
  if (command === 'sample') return sampleCommand(rest);
  if (command === 'eval') return evalCommand(rest);
  throw new FlagError(`unknown command '${command}'; use train, sample or eval (aes --help)`);
}

function helpOf(command: string): string {
  const flags =
    command === 'train'
      ? { ...TRAIN_DEFAULTS, backend: 'wasm' }
      : command === 'sample'
        ? SAMPLE_DEFAULTS
        : command === 'eval'
          ? EVAL_DEFAULTS
          : null;
  if (!flags) return USAGE;
  return `aes ${command} flags (defaults):\n${Object.entries(flags)
    .map(([k, v]) => `  --${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).padEnd(18)} ${JSON.stringify(v)}`)
    .join('\n')}`;
}

async function useBackend(name: string): Promise<string> {
  const b = await selectBackend(name as BackendName);
  const skipped = b.skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
  return `${b.name} (${b.detail})${skipped ? `; skipped ${skipped}` : ''}`;
}

async function trainCommand(argv: string[]): Promise<void> {
  const { backend, ...cfg } = parseFlags(argv, { ...TRAIN_DEFAULTS, stopAt: 0, backend: 'wasm' }, 'train');
  const config = { ...cfg, stopAt: cfg.stopAt || undefined } as TrainConfig;
  checkTrainConfig(config);
  const active = await useBackend(backend);
  console.log(`backend ${active}`);
  const progress = progressPrinter(config.logEvery);
  const env = {
    backend: active,
    tfjs: tf.version.tfjs,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
  const result = await train(config, progress, env);
  process.stdout.write('\n');
  const files = await writeTrainingPlots(config.out);
  console.log(`\nfinal validation (step ${result.step}):\n${formatMetrics(result.final)}`);
  console.log(
    `\nwrote ${join(config.out, 'metrics.jsonl')}, ${join(config.out, 'config.json')}, ` +
    `${join(config.out, 'ckpt')}/, ${files.join(', ')}`,
  );
}

/** A progress bar with ETA on a terminal; plain lines every `every` steps otherwise. */
function progressPrinter(every: number): (e: TrainEvent) => void {
  const tty = Boolean(process.stdout.isTTY);
  let t0 = 0, s0 = 0;
  return (e) => {
    if (e.type === 'start') {
      console.log(`${e.source}; ${e.params} parameters; steps ${e.step + 1}…${e.total}`);
      [t0, s0] = [performance.now(), e.step];
    } else if (e.type === 'step') {
      const eta = ((performance.now() - t0) / 1000 / (e.step - s0)) * (e.total - e.step);
      const line = `step ${e.step}/${e.total}  loss ${e.loss.toFixed(4)}  lr ${e.lr.toExponential(2)}  ` +
        `${Math.round(e.tokensPerSecond)} tok/s  ETA ${eta.toFixed(0)}s`;
      if (tty) {
        const width = 24, done = Math.round((width * e.step) / e.total);
        process.stdout.write(`\r[${'='.repeat(done)}${' '.repeat(width - done)}] ${line}  `);
      } else if (e.step % every === 0 || e.step === e.total) console.log(line);
    } else if (e.type === 'eval') {
      const m = e.metrics;
      const extra =
        m.exactMatch !== undefined
          ? `  exact match ${(100 * m.exactMatch).toFixed(1)}%`
          : m.bitsPerChar !== undefined
            ? `  ${m.bitsPerChar.toFixed(3)} bits/char`
            : '';
      const alphas = m.alpha.map((l) => l.map((a) => a.toFixed(2)).join('/')).join(' | ');
      const msg = `eval @${e.step}: val loss ${m.loss.toFixed(4)}${extra}  α ${alphas}`;
      if (tty) process.stdout.write(`\r${msg.padEnd(100)}\n`); else console.log(msg);
    }
  };
}

function formatMetrics(m: EvalMetrics): string {
  const lines = [`  loss ${m.loss.toFixed(4)} nats/token`];
  if (m.bitsPerChar !== undefined) lines.push(`  ${m.bitsPerChar.toFixed(3)} bits/char`);
  if (m.exactMatch !== undefined)
    lines.push(
      `  exact match ${(100 * m.exactMatch).toFixed(1)}%, token accuracy ${(100 * m.tokenAccuracy!).toFixed(1)}%`,
    );
  m.alpha.forEach((layer, l) =>
    lines.push(
      `  layer ${l}: α ${layer.map((a) => a.toFixed(3)).join(', ')}; support ` +
      `${m.supportFraction[l].map((s) => (100 * s).toFixed(0) + '%').join(', ')}; entropy ` +
      `${m.entropy[l].map((h) => h.toFixed(2)).join(', ')} nats`,
    ),
  );
  return lines.join('\n');
}

const EVAL_DEFAULTS = {
  ckpt: '',
  data: '',
  backend: 'wasm',
  evalBatches: 8,
  batch: 32,
  cacheDir: TRAIN_DEFAULTS.cacheDir,
};

async function evalCommand(argv: string[]): Promise<void> {
  const f = parseFlags(argv, EVAL_DEFAULTS, 'eval');
  if (!f.ckpt) throw new FlagError('aes eval: --ckpt DIR is required');
  console.log(`backend ${await useBackend(f.backend)}`);
  const { model, tokenizer, meta } = await loadCheckpoint(fileSystemIO(f.ckpt), f.ckpt);
  const trained = meta.train as TrainConfig | undefined;
  const data = f.data || trained?.data;
  if (!data) throw new FlagError('aes eval: the checkpoint does not name its data; pass --data');
  const source = await openSource({
    data,
    blockSize: model.config.blockSize,
    tokenizer: tokenizer.kind,
    valFraction: trained?.valFraction ?? TRAIN_DEFAULTS.valFraction,
    evalBatches: f.evalBatches,
    batch: f.batch,
    cacheDir: f.cacheDir,
    seed: trained?.seed ?? 0,
    savedTokenizer: tokenizer,
  });
  console.log(`${source.describe()}\n${formatMetrics(evaluate(model, source))}`);
}

async function sampleCommand(argv: string[]): Promise<void> {
  const f = parseFlags(argv, SAMPLE_DEFAULTS, 'sample');
  if (!f.ckpt) throw new FlagError('aes sample: --ckpt DIR is required');
  console.error(`backend ${await useBackend(f.backend)}`);
  const { model, tokenizer } = await loadCheckpoint(fileSystemIO(f.ckpt), f.ckpt);
  const sampler = makeSampler(f);
  const prompt = tokenizer.encode(f.prompt || '\n');
  const trace: string[] = [];
  process.stdout.write(f.prompt);
  const pending: number[] = [];
  const res = generate(model, prompt, {
    maxNewTokens: f.maxNewTokens, sampler, rng: new Rng(f.seed), attentionStats: f.sampler === 'entropix',
    onToken: (token, record) => {
      pending.push(token);
      const text = tokenizer.decode(pending);
      if (!text.endsWith('\uFFFD')) {
        process.stdout.write(text);
        pending.length = 0;
      } // wait for whole UTF-8 characters
      if (f.trace) trace.push(JSON.stringify({ ...record, text: tokenizer.decode([token]) }));
    },
  });
  process.stdout.write(`${pending.length ? tokenizer.decode(pending) : ''}\n`);
  if (f.trace) {
    writeFileSync(f.trace, `${trace.join('\n')}\n`);
    console.error(`wrote ${res.records.length} decision records to ${f.trace}`);
  }
}

main(process.argv.slice(2)).catch((e) => {
  console.error(e instanceof FlagError || e instanceof RangeError || e instanceof Error ? `error: ${e.message}` : e);
  process.exit(e instanceof FlagError ? 2 : 1);
});
