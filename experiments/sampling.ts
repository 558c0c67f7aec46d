/**
 * Experiment 3: a sampling study. A char-level GPT is trained on this repository's docs and sources
 * (`repoCorpus()`; or `--ckpt DIR` reuses a checkpoint), then every sampler of @aes/models continues
 * the same prompts with the same seeds, and the continuations are scored.
 *
 *   pnpm exp:sampling              (quick: 600 steps of a 2-layer, 4-head, width-64 softmax GPT,
 *                                   block 64; 4 prompts × 2 seeds × 120 new tokens per sampler)
 *   pnpm exp:sampling --full       (1500 steps; 4 seeds × 300 new tokens; ~10 min on 2 cores)
 *   (the same: npx tsx experiments/sampling.ts [--full] [--ckpt DIR] [--key=value …])
 *
 * Matched settings: every sampler draws at temperature 1 from the model's logits unless adapting the
 * temperature is its method, and each has exactly one knob, at the value common in practice (HF /
 * paper defaults): greedy; temperature (T = 1, no truncation); topk (k = 40); topp (0.9); minp
 * (0.05); typical (0.9); entmax (α = 1.5, T = 1); entropix (its reference defaults: T₀ = 0.666,
 * top-k 27, top-p 0.9, min-p 0.03, with attention statistics); free-energy (T solved at every step
 * so that the softmax has a target entropy, no min-p). The free-energy target is by default the
 * median next-token entropy (nats, T = 1) of the model on the validation windows, i.e. the entropy
 * the model itself has on real text; `--fe-target fraction:0.5` uses ½ ln V instead (summary.json
 * gives both values). Every sampler sees the same prompts and seeds 0…samples − 1 (offset by --seed).
 *
 * Measured per sampler, averaged over prompts and seeds (the prompt is never scored):
 * - distinct-1/2/3: unique / total character n-grams of one continuation (then the mean);
 * - repetition4: share of a continuation's character 4-grams that already occurred earlier in it;
 * - meanLogLik: mean ln p of the generated tokens under the model's softmax (T = 1), teacher-forced
 *   in exactly the context generate() used (the last ≤ blockSize tokens), so a sampler that stays on
 *   the model's high-probability path scores near 0 and one that wanders scores low;
 * - the entropy trajectory: the model's next-token entropy (nats) at each generated position, from
 *   the same pass; meanEntropy is its mean;
 * - meanKept (tokens the sampler could draw from), meanTemperature where a sampler reports one,
 *   msPerToken (generation wall time; noisy on a shared machine), and Entropix's branch counts.
 * `consistency` in summary.json compares the teacher-forced ln p with the probability the sampler
 * recorded while generating (greedy, temperature, entropix): agreement to ~1e-5 says the scores are
 * of the distributions the samplers really saw.
 * Writes experiments/results/sampling/{config.json, metrics.csv, trajectory.csv, branches.csv,
 * samples.json, summary.json, diversity|entropy_trajectory|entropix_branches .svg/.png; charts in
 * sampling_plots.ts) and, when it trains, model/ (the checkpoint in model/ckpt, metrics.jsonl, loss.svg/png).
 */
import * as tf from '@tensorflow/tfjs';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { logitStats } from '@aes/attention';
import {
  entmaxSampler,
  entropixSampler,
  filteredSampler,
  freeEnergySampler,
  generate,
  greedySampler,
  loadCheckpoint,
  plainSampler,
  readTensors,
  type EntropixBranch,
  type EntropyTarget,
  type GPT,
  type Sampler,
} from '@aes/models';
import { openSource, train, TRAIN_DEFAULTS, writeTrainingPlots, type Batch, type TrainConfig } from '@aes/train';
import { median, repoCorpus, startRun, type Json } from './common.js';
import { branchesChart, diversityChart, trajectoryChart } from './sampling_plots.js';
import { fileSystemIO } from '@aes/node';

const QUICK = {
  ckpt: '', data: '', steps: 600, layers: 2, heads: 4, embd: 64, blockSize: 64, batch: 32, lr: 3e-3, seed: 0,
  prompts: 'The |export function |attention|## ', newTokens: 120, samples: 2,
  topK: 40, topP: 0.9, minP: 0.05, typicalP: 0.9, alpha: 1.5, feTarget: 'median', feMinP: 0, valBatches: 4, smooth: 5,
};
const FULL = { steps: 1500, newTokens: 300, samples: 4 };
type Cfg = typeof QUICK;

const BRANCHES: readonly EntropixBranch[] = ['argmax', 'careful', 'exploring', 'resampling', 'adaptive'];
const CHUNK = 32;                                                    // windows per teacher-forced forward
const r4 = (x: number) => (Number.isFinite(x) ? Math.round(x * 1e4) / 1e4 : x);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / Math.max(1, xs.length - 1));

interface SamplerSpec { name: string; settings: string; sampler: Sampler; attention?: boolean }
interface Sample {
  sampler: string;
  prompt: string;
  seed: number;
  text: string;
  logp: number[];
  entropy: number[];
  records: Json[];
}

function checkConfig(c: Cfg): void {
  for (const k of [
    'steps',
    'layers',
    'heads',
    'embd',
    'blockSize',
    'batch',
    'samples',
    'valBatches',
    'topK',
  ] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1)
      throw new RangeError(`sampling: --${k} must be an integer ≥ 1, got ${c[k]}`);
  }
  if (!Number.isInteger(c.newTokens) || c.newTokens < 4)
    throw new RangeError(`sampling: --newTokens must be an integer ≥ 4 (repetition uses 4-grams), got ${c.newTokens}`);
  if (!Number.isInteger(c.smooth) || c.smooth < 0)
    throw new RangeError(`sampling: --smooth must be an integer ≥ 0, got ${c.smooth}`);
  for (const k of ['topP', 'typicalP'] as const)
    if (!(c[k] > 0 && c[k] <= 1)) throw new RangeError(`sampling: --${k} must be in (0, 1], got ${c[k]}`);
  for (const k of ['minP', 'feMinP'] as const)
    if (!(c[k] >= 0 && c[k] <= 1)) throw new RangeError(`sampling: --${k} must be in [0, 1], got ${c[k]}`);
  if (!(c.alpha >= 1)) throw new RangeError(`sampling: --alpha must be ≥ 1, got ${c.alpha}`);
  if (!(c.lr > 0)) throw new RangeError(`sampling: --lr must be > 0, got ${c.lr}`);
  if (c.prompts.split('|').some((p) => p.length === 0))
    throw new RangeError(`sampling: --prompts must be non-empty texts separated by '|', got '${c.prompts}'`);
  entropyTarget(c.feTarget, 1);                                     // reject a bad --feTarget before training
}

/** The free-energy target: 'median' (of the validation entropies), 'fraction:X' (of ln V) or 'entropy:X' (nats). */
function entropyTarget(spec: string, medianNats: number): { target: EntropyTarget; label: string } {
  if (spec === 'median')
    return { target: { entropy: medianNats }, label: `S = ${medianNats.toFixed(3)} nats (median validation entropy)` };
  const m = /^(fraction|entropy):([\d.eE+-]+)$/.exec(spec);
  const v = m ? Number(m[2]) : NaN;
  if (!m || !Number.isFinite(v) || v < 0 || (m[1] === 'fraction' && v > 1)) {
    throw new RangeError(
      `sampling: --feTarget must be 'median', 'fraction:X' (X in [0, 1], of ln V) or 'entropy:X' (nats ≥ 0), got ` +
      `'${spec}'`,
    );
  }
  return m[1] === 'fraction'
    ? { target: { fraction: v }, label: `S = ${v} ln V` }
    : { target: { entropy: v }, label: `S = ${v} nats` };
}

/** The samplers at matched settings (see the file comment); names are `aes sample --sampler` names. */
function samplers(c: Cfg, fe: { target: EntropyTarget; label: string }): SamplerSpec[] {
  return [
    { name: 'greedy', settings: 'argmax', sampler: greedySampler() },
    { name: 'temperature', settings: 'T = 1, no truncation', sampler: plainSampler({ temperature: 1 }) },
    { name: 'topk', settings: `T = 1, k = ${c.topK}`, sampler: filteredSampler({ temperature: 1, topK: c.topK }) },
    { name: 'topp', settings: `T = 1, p = ${c.topP}`, sampler: filteredSampler({ temperature: 1, topP: c.topP }) },
    { name: 'minp', settings: `T = 1, min-p = ${c.minP}`, sampler: filteredSampler({ temperature: 1, minP: c.minP }) },
    {
      name: 'typical',
      settings: `T = 1, typical-p = ${c.typicalP}`,
      sampler: filteredSampler({ temperature: 1, typicalP: c.typicalP }),
    },
    { name: 'entmax', settings: `α = ${c.alpha}, T = 1`, sampler: entmaxSampler({ alpha: c.alpha, temperature: 1 }) },
    {
      name: 'entropix',
      settings: 'defaults (T₀ 0.666, top-k 27, top-p 0.9, min-p 0.03), attention statistics',
      sampler: entropixSampler(),
      attention: true,
    },
    {
      name: 'free-energy',
      settings: `T solved per step: ${fe.label}${c.feMinP > 0 ? `, min-p ${c.feMinP}` : ''}`,
      sampler: freeEnergySampler({ target: fe.target, minP: c.feMinP }),
    },
  ];
}

/** Trains the model (unless --ckpt), loads it and opens its validation text. */
async function loadModel(c: Cfg, dir: string) {
  let ckpt = c.ckpt;
  let training: Json | null = null;
  if (!ckpt) {
    const t0 = performance.now();
    const tc: TrainConfig = {
      ...TRAIN_DEFAULTS,
      data: c.data || repoCorpus(),
      out: join(dir, 'model'),
      steps: c.steps,
      batch: c.batch,
      blockSize: c.blockSize,
      layers: c.layers,
      heads: c.heads,
      embd: c.embd,
      attention: 'softmax',
      tokenizer: 'char',
      lr: c.lr,
      seed: c.seed,
      evalEvery: Math.max(1, Math.floor(c.steps / 4)),
      ckptEvery: c.steps,
      evalBatches: c.valBatches,
    };
    rmSync(tc.out, { recursive: true, force: true });                 // a fresh run, not metrics appended to an old one
    const r = await train(tc, (e) => {
      if (e.type === 'eval')
        console.error(`train step ${e.step}/${c.steps}: val loss ${e.metrics.loss.toFixed(3)} nats/char`);
    });
    await writeTrainingPlots(tc.out);
    training = {
      steps: r.step,
      valLoss: r.final.loss,
      bitsPerChar: r.final.bitsPerChar,
      seconds: (performance.now() - t0) / 1000,
    };
    ckpt = join(tc.out, 'ckpt');
  }
  const { model, tokenizer, meta } = await loadCheckpoint(fileSystemIO(ckpt), ckpt);
  const trained = meta.train as TrainConfig | undefined;
  const data = c.data || trained?.data || repoCorpus();
  const source = await openSource({
    data,
    blockSize: model.config.blockSize,
    tokenizer: tokenizer.kind,
    valFraction: trained?.valFraction ?? TRAIN_DEFAULTS.valFraction,
    evalBatches: c.valBatches,
    batch: trained?.batch ?? c.batch,
    cacheDir: TRAIN_DEFAULTS.cacheDir,
    seed: trained?.seed ?? c.seed,
    savedTokenizer: tokenizer,
  });
  return {
    model,
    tokenizer,
    source,
    info: { ckpt, data, trained: training !== null, training, config: model.config, source: source.describe() },
  };
}

/** The model's softmax entropy (nats) at every position of the validation windows. */
async function validationEntropies(model: GPT, batches: Batch[]): Promise<number[]> {
  const out: number[] = [];
  for (const b of batches) {
    const h = tf.tidy(() => logitStats(model.forward(tf.tensor2d(b.x, undefined, 'int32')).logits).entropy);
    out.push(...(await readTensors([h]))[0]);
    h.dispose();
  }
  return out;
}

/** ln p of `targets` and the softmax entropy (nats) at flat rows `rows` of forward(windows) `[k, T]`. */
async function score(
  model: GPT,
  windows: number[][],
  rows: number[],
  targets: number[],
): Promise<{ logp: number[]; entropy: number[] }> {
  const [k, T, V] = [windows.length, windows[0].length, model.config.vocabSize];
  const both = tf.tidy(() => {
    const logits = tf.reshape(model.forward(tf.tensor2d(windows, [k, T], 'int32')).logits, [k * T, V]);
    const z = tf.gather(logits, tf.tensor1d(rows, 'int32')); // [R, V]
    const lp = tf.sum(tf.mul(tf.logSoftmax(z), tf.cast(tf.oneHot(tf.tensor1d(targets, 'int32'), V), 'float32')), 1);
    return [lp, logitStats(z).entropy];
  });
  const [logp, entropy] = await readTensors(both);
  tf.dispose(both);
  return { logp: Array.from(logp), entropy: Array.from(entropy) };
}

/**
 * Teacher-forced scores of seq[start..] in the contexts generate() used: token i follows the last
 * ≤ blockSize tokens before it, so every i ≤ blockSize is read from one causal pass over the first
 * tokens, and each later i from its own window seq[i − blockSize, i).
 */
async function teacherForced(model: GPT, seq: number[], start: number): Promise<{ logp: number[]; entropy: number[] }> {
  const B = model.config.blockSize;
  const out = { logp: [] as number[], entropy: [] as number[] };
  const add = (s: { logp: number[]; entropy: number[] }) => {
    out.logp.push(...s.logp);
    out.entropy.push(...s.entropy);
  };
  const early: number[] = [], late: number[] = [];
  for (let i = start; i < seq.length; i++) (i <= B ? early : late).push(i);
  if (early.length)
    add(
      await score(
        model,
        [seq.slice(0, Math.min(B, seq.length - 1))],
        early.map((i) => i - 1),
        early.map((i) => seq[i]),
      ),
    );
  for (let c = 0; c < late.length; c += CHUNK) {
    const is = late.slice(c, c + CHUNK);
    add(await score(model, is.map((i) => seq.slice(i - B, i)), is.map((_, r) => r * B + B - 1), is.map((i) => seq[i])));
  }
  return out;
}

/** Unique / total character n-grams. */
function distinct(chars: string[], n: number): number {
  const grams = new Set<string>();
  for (let i = 0; i + n <= chars.length; i++) grams.add(chars.slice(i, i + n).join(''));
  return grams.size / Math.max(1, chars.length - n + 1);
}

/** Share of character n-grams that already occurred earlier in the same text. */
function repetition(chars: string[], n: number): number {
  const seen = new Set<string>();
  let repeats = 0;
  for (let i = 0; i + n <= chars.length; i++) {
    const g = chars.slice(i, i + n).join('');
    if (seen.has(g)) repeats++;
    seen.add(g);
  }
  return repeats / Math.max(1, chars.length - n + 1);
}

/** Largest |ln p recorded by the sampler − teacher-forced ln p| over samplers that record the model's p. */
function consistency(samples: Sample[]): { checked: number; maxAbsLogPDiff: number } {
  const field: Record<string, string> = { greedy: 'p', temperature: 'p', entropix: 'pModel' };
  let checked = 0, worst = 0;
  for (const s of samples.filter((x) => x.sampler in field)) {
    s.records.forEach((r, k) => {
      const p = r[field[s.sampler]];
      if (typeof p !== 'number') return;
      worst = Math.max(worst, Math.abs(Math.log(p) - s.logp[k]));
      checked++;
    });
  }
  return { checked, maxAbsLogPDiff: worst };
}

/** One metrics row per sampler, aggregated over its samples. */
function metricsRow(spec: SamplerSpec, ss: Sample[], seconds: number, vocab: number): Json {
  const chars = ss.map((s) => Array.from(s.text));
  const perSample = (f: (c: string[]) => number) => chars.map(f);
  const d2 = perSample((c) => distinct(c, 2)), ll = ss.map((s) => mean(s.logp));
  const recs = ss.flatMap((s) => s.records);
  const kept = recs.map((r) => (typeof r.kept === 'number' ? r.kept : spec.name === 'greedy' ? 1 : vocab));
  const temps = recs.map((r) => r.temperature).filter((t): t is number => typeof t === 'number');
  const tokens = ss.reduce((n, s) => n + s.logp.length, 0);
  return {
    sampler: spec.name,
    samples: ss.length,
    tokens,
    distinct1: r4(mean(perSample((c) => distinct(c, 1)))),
    distinct2: r4(mean(d2)),
    distinct2Sd: r4(sd(d2)),
    distinct3: r4(mean(perSample((c) => distinct(c, 3)))),
    repetition4: r4(mean(perSample((c) => repetition(c, 4)))),
    meanLogLik: r4(mean(ss.flatMap((s) => s.logp))),
    meanLogLikSd: r4(sd(ll)),
    meanEntropy: r4(mean(ss.flatMap((s) => s.entropy))),
    meanKept: r4(mean(kept)),
    meanTemperature: temps.length ? r4(mean(temps)) : '',
    msPerToken: r4((seconds * 1000) / tokens),
    settings: spec.settings,
  };
}

export async function run(argv: string[]): Promise<Json> {
  const t0 = performance.now();
  const { cfg, dir, writeCsv, writeJson, plot } = await startRun('sampling', QUICK, FULL, argv);
  checkConfig(cfg);
  const { model, tokenizer, source, info } = await loadModel(cfg, dir);
  const prompts = cfg.prompts.split('|').map((text) => {
    const ids = tokenizer.encode(text);
    if (tokenizer.kind === 'char' && ids.includes(0))
      throw new RangeError(`sampling: prompt '${text}' holds characters the model's vocabulary lacks`);
    return { text, ids };
  });

  const valEntropy = await validationEntropies(model, source.evalBatches());
  const fe = entropyTarget(cfg.feTarget, median(valEntropy));
  const specs = samplers(cfg, fe);
  const samples: Sample[] = [];
  const rows: Json[] = [];
  const tGen = performance.now();
  for (const spec of specs) {
    const ts = performance.now();
    const mine: Sample[] = [];
    for (const p of prompts) {
      for (let s = 0; s < cfg.samples; s++) {
        const seed = cfg.seed + s;
        const g = await generate(model, p.ids, {
          maxNewTokens: cfg.newTokens,
          sampler: spec.sampler,
          seed,
          attentionStats: spec.attention,
        });
        const tfd = await teacherForced(model, [...p.ids, ...g.tokens], p.ids.length);
        mine.push({
          sampler: spec.name,
          prompt: p.text,
          seed,
          text: tokenizer.decode(g.tokens),
          ...tfd,
          records: g.records,
        });
      }
    }
    const seconds = (performance.now() - ts) / 1000;
    rows.push(metricsRow(spec, mine, seconds, model.config.vocabSize));
    samples.push(...mine);
    console.error(`${spec.name}: ${mine.length} samples in ${seconds.toFixed(1)} s`);
  }
  const generateSeconds = (performance.now() - tGen) / 1000;
  model.dispose();

  const trajectory = specs.flatMap((spec) => {
    const ss = samples.filter((s) => s.sampler === spec.name);
    return Array.from({ length: cfg.newTokens }, (_, k) => ({
      sampler: spec.name,
      position: k + 1,
      entropy: r4(mean(ss.map((s) => s.entropy[k]))),
      logLik: r4(mean(ss.map((s) => s.logp[k]))),
    }));
  });
  const decisions = samples.filter((s) => s.sampler === 'entropix').flatMap((s) => s.records);
  const branches = BRANCHES.map((branch) => {
    const taken = decisions.filter((r) => r.branch === branch),
      bits = (k: string) => (taken.length ? r4(mean(taken.map((r) => r[k] as number))) : '');
    return {
      branch,
      count: taken.length,
      share: r4(taken.length / decisions.length),
      meanEntropyBits: bits('entropyBits'),
      meanVarentropyBits: bits('varentropyBits'),
    };
  });
  writeCsv('metrics.csv', rows);
  writeCsv('trajectory.csv', trajectory);
  writeCsv('branches.csv', branches);
  writeJson(
    'samples.json',
    samples.map((s) => ({
      sampler: s.sampler,
      prompt: s.prompt,
      seed: s.seed,
      text: s.text,
      meanLogLik: r4(mean(s.logp)),
      distinct2: r4(distinct(Array.from(s.text), 2)),
    })),
  );
  const size = `${cfg.samples} seeds × ${prompts.length} prompts × ${cfg.newTokens} tokens`;
  await plot('diversity', diversityChart(rows, `mean over ${size}`));
  await plot(
    'entropy_trajectory',
    trajectoryChart(
      trajectory,
      specs.map((s) => s.name),
      `mean over ${size}`,
      cfg.smooth,
    ),
  );
  await plot(
    'entropix_branches',
    branchesChart(branches, `${decisions.length} decisions (${size}); thresholds: H 0.1 / 3 / 5 bits, V 0.1 / 5 bits²`),
  );

  const summary = {
    model: info,
    freeEnergyTarget: {
      spec: cfg.feTarget,
      medianValidationEntropy: median(valEntropy),
      meanValidationEntropy: mean(valEntropy),
      halfLnV: 0.5 * Math.log(info.config.vocabSize),
      positions: valEntropy.length,
    },
    metrics: rows,
    branches,
    entropixDecisions: decisions.length,
    consistency: consistency(samples),
    seconds: {
      training: (info.training?.seconds as number | undefined) ?? 0,
      generation: generateSeconds,
      total: (performance.now() - t0) / 1000,
    },
  };
  writeJson('summary.json', summary);
  return summary;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const t0 = performance.now();
  run(process.argv.slice(2)).then((s) => {
    console.log(JSON.stringify({ ...s, metrics: undefined }, null, 2));
    console.table((s.metrics as Json[]).map(({ settings: _, ...r }) => r));
    console.log(`${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }).catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
}
