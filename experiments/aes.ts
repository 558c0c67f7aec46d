/**
 * Experiment 5: does AES adapt? The measurements behind the design choices of docs/math.md §6.
 *
 * 1. Length: α chosen on Gaussian rows of a fixed score scale σ (8 queries, n keys, d = 64) as n
 *    grows 128 → 4096, for the 'support' scale and the first version's 'log-n' scale (with the
 *    thresholds it was designed with, S0 0.3, Smax 0.8).
 * 2. Training: per-head α, entropy and support at the end of short runs on task:sort, task:copy and
 *    the pinned text, for per-head AES ('aes'), per-row AES ('aes-row') and the first version's
 *    scale with a fixed interval; with the evaluation α rule ('frozen': the running ζ̄) and the
 *    training rule ('auto') on the same validation batches.
 * 3. Positions: the default of `aes train --pos`, from the main job's task and model at a short
 *    budget, for learned, rope, alibi and nope.
 *
 *   pnpm exp:aes           (quick: 150 training steps, 200 for positions)
 *   pnpm exp:aes --full    (400 and 400: the numbers in docs/math.md)
 */
import * as tf from '@tensorflow/tfjs';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { attention, type NormaliserSpec } from '@aes/attention';
import { TRAIN_DEFAULTS, evaluate, openSource, train, type TrainConfig } from '@aes/train';
import { fileSystemIO } from '@aes/node';
import { loadCheckpoint } from '@aes/models';
import { repoCorpus, startRun, type Json } from './common.js';

const QUICK = { steps: 150, posSteps: 200, lengths: '128,512,2048,4096', sigmas: '1,1.5,2,3', seed: 0 };
const FULL = { steps: 400, posSteps: 400 };

const VARIANTS: Record<string, NormaliserSpec> = {
  aes: 'aes',
  'aes-row': 'aes-row',
  'log-n, fixed interval': { aes: { scale: 'log-n', S0: 0.3, Smax: 0.8, width: '1' } },
};
const DATA: Record<string, string> = { sort: 'task:sort', copy: 'task:copy:len=8', text: 'text' };

export async function run(argv: string[]): Promise<Json> {
  const { cfg, dir, writeCsv, writeJson } = await startRun('aes', QUICK, FULL, argv);
  // 1. α against n on Gaussian rows
  const lengthRows: Json[] = [];
  for (const sigma of cfg.sigmas.split(',').map(Number)) {
    for (const n of cfg.lengths.split(',').map(Number)) {
      const row: Json = { sigma, n };
      for (const [name, aes] of [['support', {}], ['log-n', { scale: 'log-n', S0: 0.3, Smax: 0.8 }]] as const) {
        const alpha = tf.tidy(() => {
          const q = tf.randomNormal([1, 1, 8, 64], 0, 1, 'float32', cfg.seed + 11);
          const k = tf.randomNormal([1, 1, n, 64], 0, sigma, 'float32', cfg.seed + 12);
          return attention(q, k, tf.zeros([1, 1, n, 1]), { normaliser: { aes }, returnStats: true }).stats!.alpha;
        });
        row[name] = Number((await alpha.data())[0].toFixed(4));
        alpha.dispose();
      }
      lengthRows.push(row);
    }
  }
  writeCsv('alpha_vs_n.csv', lengthRows);

  // 2. AES in training
  const base: TrainConfig = {
    ...TRAIN_DEFAULTS,
    steps: cfg.steps,
    layers: 2,
    heads: 4,
    embd: 64,
    batch: 32,
    blockSize: 64,
    evalEvery: cfg.steps,
    ckptEvery: cfg.steps,
    logEvery: cfg.steps,
    evalBatches: 2,
    warmup: Math.round(cfg.steps / 10),
    seed: cfg.seed,
    out: '',
  };
  const runs: Json[] = [];
  for (const [dataName, data] of Object.entries(DATA)) {
    for (const [variant, spec] of Object.entries(VARIANTS)) {
      const out = join(dir, 'runs', `${dataName}-${variant.replace(/[^a-z-]+/gi, '_')}`);
      rmSync(out, { recursive: true, force: true });                   // this experiment's own scratch run
      const c = { ...base, data: data === 'text' ? repoCorpus() : data, out,
        attention: typeof spec === 'string' ? spec : JSON.stringify(spec) };
      const res = await train(c);
      const ckpt = join(out, 'ckpt');
      const { model } = await loadCheckpoint(fileSystemIO(ckpt), ckpt);
      const source = await openSource({ ...c, savedTokenizer: undefined });
      const auto = await evaluate(model, source, { aesMode: 'auto' });      // the training rule, ζ̄ left as it is
      model.dispose();
      const f = res.final;
      runs.push({
        data: dataName, variant, steps: res.step, valLoss: f.loss, valLossTrainRule: auto.loss,
        exactMatch: f.exactMatch ?? null, bitsPerChar: f.bitsPerChar ?? null,
        alpha: f.alpha, entropy: f.entropy, support: f.supportFraction,
      });
    }
  }
  writeJson('runs.json', runs);
  writeCsv('runs.csv', runs.map((r) => ({ ...r, alpha: JSON.stringify(r.alpha), entropy: JSON.stringify(r.entropy),
    support: JSON.stringify(r.support) })));

  // 3. The default position encoding
  const positions: Json[] = [];
  for (const pos of ['learned', 'rope', 'alibi', 'nope'] as const) {
    const out = join(dir, 'runs', `pos-${pos}`);
    rmSync(out, { recursive: true, force: true });
    const res = await train({ ...TRAIN_DEFAULTS, steps: cfg.posSteps, evalEvery: cfg.posSteps, ckptEvery: cfg.posSteps,
      logEvery: cfg.posSteps, seed: cfg.seed, pos, out });
    positions.push({ pos, steps: cfg.posSteps, valLoss: res.final.loss, exactMatch: res.final.exactMatch });
  }
  writeCsv('positions.csv', positions);
  return { lengths: lengthRows.length, runs: runs.length, positions };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  run(process.argv.slice(2)).then((s) => console.log(JSON.stringify(s, null, 2)), (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
