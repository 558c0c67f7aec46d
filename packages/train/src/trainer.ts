/**
 * The training loop: a GPT on a text or a task, AdamW with an α group, warmup + cosine schedule,
 * clipping, accumulation, periodic evaluation (loss, bits/char or exact match, per-head α and
 * attention statistics), `metrics.jsonl`, checkpoints that resume exactly, and plots at the end.
 *
 * Exact resume: everything a step depends on is in the checkpoint (weights, AES state, AdamW
 * moments and step, the batch RNG's state); dropout masks are seeded by the step; evaluation uses
 * fixed batches and never touches the training RNG. A resumed run therefore logs the same losses as
 * one that was never interrupted (tested).
 */
import * as tf from '@tensorflow/tfjs';
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GPT, Rng, loadCheckpoint, readTensors, saveCheckpoint, type GPTConfig } from '@aes/models';
import { AdamW, clipByGlobalNorm, lrScaleAt } from './adamw.js';
import { parseAttention } from './config.js';
import { openSource, type Batch, type Source } from './source.js';
import { checkLengths, evaluateLengths, parseLengths, type LengthMetrics } from './eval_lengths.js';
import { defaultOutDir, prepareOutDir } from './run_dir.js';
import { taskAccuracy } from './tasks.js';
import type { TrainConfig } from './config.js';
import { fileSystemIO } from '@aes/node';

/** What the loop reports as it goes (the CLI draws the progress bar from these). */
export type TrainEvent =
  | {
      type: 'start';
      step: number;
      total: number;
      source: string;
      params: number;
      out: string;
      movedAside: string | null;
    }
  | {
      type: 'step'; step: number; total: number; loss: number; lr: number; tokensPerSecond: number; gradNorm: number;
      /** Tokens this step trained on. */
      tokens: number;
    }
  | { type: 'eval'; step: number; metrics: EvalMetrics; lengths: LengthMetrics[] }
  | { type: 'checkpoint'; step: number; dir: string };

export interface EvalMetrics {
  loss: number;
  bitsPerChar?: number;
  exactMatch?: number;
  tokenAccuracy?: number;
  /** `[layer][head]` */
  alpha: number[][];
  entropy: number[][];
  varentropy: number[][];
  supportFraction: number[][];
}

export interface TrainResult {
  step: number;
  final: EvalMetrics;
  outDir: string;
  /** The last evaluation at each of `evalLengths`. */
  lengths: LengthMetrics[];
}

/**
 * Trains per `cfg` (see TRAIN_DEFAULTS), writing into `cfg.out` (checked first, see run_dir.ts):
 * config.json, metrics.jsonl, ckpt/ and, at the end, loss.svg/png and alpha.svg/png. With
 * `cfg.resume`, continues from `cfg.out/ckpt`. A NaN/∞ loss stops the run with an Error naming the
 * step and the last checkpoint.
 */
export async function train(
  cfg: TrainConfig,
  onEvent: (e: TrainEvent) => void = () => {},
  env: Record<string, unknown> = {},
): Promise<TrainResult> {
  const out = cfg.out || defaultOutDir(cfg.data, cfg.attention);
  const movedAside = prepareOutDir(out, cfg);
  const run = await openRun({ ...cfg, out }, env);
  const { model, source } = run;
  const params = [...model.weightVariables().values(), ...model.alphaVariables().values()].reduce(
    (n, v) => n + v.size,
    0,
  );
  onEvent({ type: 'start', step: run.step, total: cfg.steps, source: source.describe(), params, out, movedAside });
  const lengths = parseLengths(cfg.evalLengths, source.trainLength);
  checkLengths(model, source, lengths);
  let lengthRows: LengthMetrics[] = [];
  // The curves start at the initialisation (a resumed run already logged it).
  let final: EvalMetrics | null = run.resumedAt === null ? await evaluate(model, source) : null;
  if (final) run.log({ step: 0, split: 'val', ...final });
  const t0 = performance.now();
  let tokens = 0;
  while (run.step < Math.min(cfg.steps, cfg.stopAt ?? Infinity)) {
    // Let timers and messages run between steps (a sweep worker renews its job lock, and a child
    // whose parent died notices it); a step is far longer than this turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    const { loss, gradNorm, lr, tokens: n } = await trainStep(run);
    tokens += n;
    const step = run.step;
    const tokensPerSecond = tokens / ((performance.now() - t0) / 1000);
    if (step % cfg.logEvery === 0 || step === cfg.steps)
      run.log({ step, split: 'train', loss, lr, tokensPerSecond, gradNorm });
    onEvent({ type: 'step', step, total: cfg.steps, loss, lr, tokensPerSecond, gradNorm, tokens: n });
    if (step % cfg.evalEvery === 0 || step === cfg.steps) {
      final = await evaluate(model, source);
      run.log({ step, split: 'val', ...final });
      lengthRows = await evaluateLengths(model, source, lengths, step);
      lengthRows.forEach((r) => run.log({ ...r }));
      onEvent({ type: 'eval', step, metrics: final, lengths: lengthRows });
    }
    if (step % cfg.ckptEvery === 0 || step === cfg.steps) onEvent({ type: 'checkpoint', step, dir: await run.save() });
  }
  final ??= await evaluate(model, source); // resumed at the last step
  if (lengths.length && !lengthRows.length) lengthRows = await evaluateLengths(model, source, lengths, run.step);
  run.opt.dispose();
  model.dispose();
  return { step: run.step, final, outDir: out, lengths: lengthRows };
}

/** Everything a run holds between steps; `save` writes a checkpoint of it. */
interface Run {
  cfg: TrainConfig;
  model: GPT;
  source: Source;
  opt: AdamW;
  rng: Rng;
  /** Optimizer steps done. */
  step: number;
  /** The step the run resumed from (null: a fresh run). */
  resumedAt: number | null;
  /** The step of the last checkpoint written or loaded (null: none yet). */
  lastCkpt: number | null;
  /** tfjs variable name → our parameter name (gradients arrive keyed by the former). */
  names: Map<string, string>;
  log(rec: Record<string, unknown>): void;
  save(): Promise<string>;
}

/** Setup: the output directory, the data, the model and optimizer, fresh or from the checkpoint. */
async function openRun(cfg: TrainConfig, env: Record<string, unknown>): Promise<Run> {
  mkdirSync(cfg.out, { recursive: true });
  const ckptDir = join(cfg.out, 'ckpt');
  // A run killed between the two renames of a save has its last checkpoint in ckpt.old.
  if (cfg.resume && !existsSync(ckptDir) && existsSync(`${ckptDir}.old`)) renameSync(`${ckptDir}.old`, ckptDir);
  const resumed = cfg.resume
    ? await loadCheckpoint(fileSystemIO(ckptDir), ckptDir).catch((e) => {
        throw new Error(`cannot resume: ${(e as Error).message}`);
      })
    : null;
  const source = await openSource({ ...cfg, savedTokenizer: resumed?.tokenizer });
  const modelCfg: Partial<GPTConfig> & { vocabSize: number } = {
    vocabSize: source.vocabSize, nLayer: cfg.layers, nHead: cfg.heads, nEmbd: cfg.embd, blockSize: source.blockSize,
    dropout: cfg.dropout, attention: parseAttention(cfg.attention, cfg.layers), alphaInit: cfg.alphaInit, pos: cfg.pos,
  };
  const model = resumed?.model ?? new GPT(modelCfg, { seed: cfg.seed });
  if (resumed) checkResumable(resumed.meta, cfg, model.config, modelCfg);
  const opt = new AdamW([
    { params: model.weightVariables(), lr: cfg.lr, weightDecay: cfg.weightDecay },
    { params: model.alphaVariables(), lr: cfg.alphaLr, weightDecay: 0 },
  ]);
  const step = resumed ? (resumed.meta.step as number) : 0;
  if (resumed && Math.min(cfg.steps, cfg.stopAt ?? Infinity) < step) {
    const which =
      cfg.stopAt !== undefined && cfg.stopAt < cfg.steps ? `--stop-at ${cfg.stopAt}` : `--steps ${cfg.steps}`;
    throw new Error(
      `cannot resume: the checkpoint is at step ${step}, beyond ${which}; ask for more steps than ${step}`,
    );
  }
  if (resumed) {
    opt.loadState(resumed.meta.optimizerStep as number, resumed.tensors);
    tf.dispose(Object.values(resumed.tensors));
  }
  const metricsPath = join(cfg.out, 'metrics.jsonl');
  keepMetricsUpTo(metricsPath, step);
  writeFileSync(
    join(cfg.out, 'config.json'),
    JSON.stringify({ train: cfg, model: model.config, source: source.describe(), ...env }, null, 2),
  );
  const run: Run = {
    cfg, model, source, opt, step,
    rng: resumed ? Rng.fromState(resumed.meta.rng as number[]) : new Rng(cfg.seed),
    resumedAt: resumed ? step : null,
    lastCkpt: resumed ? step : null,
    names: new Map([...model.params].map(([n, v]) => [v.name, n])),
    log: (rec) => appendFileSync(metricsPath, `${JSON.stringify(rec)}\n`),
    save: async () => {
      const tmp = `${ckptDir}.tmp`;
      rmSync(tmp, { recursive: true, force: true });
      const st = opt.state();
      await saveCheckpoint(fileSystemIO(tmp), model, source.tokenizer, {
        meta: {
          step: run.step,
          rng: run.rng.state(),
          optimizerStep: st.step,
          train: cfg,
          model: model.config,
          task: source.task ? `task:${source.task.name}` : null,
        },
        tensors: st.tensors,
      });
      rmSync(`${ckptDir}.old`, { recursive: true, force: true });
      if (existsSync(ckptDir)) renameSync(ckptDir, `${ckptDir}.old`);      // never without a complete checkpoint
      renameSync(tmp, ckptDir);
      rmSync(`${ckptDir}.old`, { recursive: true, force: true });
      run.lastCkpt = run.step;
      return ckptDir;
    },
  };
  return run;
}

/**
 * One optimizer step: `accum` micro-batches, their gradients summed, clipping, a NaN/∞ check and
 * the AdamW update at the scheduled learning rate. Advances `run.step` and the batch RNG. One read:
 * the loss and the gradient norm together, before the update.
 */
async function trainStep(run: Run): Promise<{ loss: number; gradNorm: number; lr: number; tokens: number }> {
  const { cfg, model, source } = run;
  run.step += 1;
  const grads = new Map<string, tf.Tensor>();
  const losses: tf.Tensor[] = [];
  let tokens = 0;
  for (let micro = 0; micro < cfg.accum; micro++) {
    const batch = source.trainBatch(cfg.batch, run.rng);
    tokens += cfg.batch * batch.x[0].length;
    const f = () => tf.div(lossOf(model, batch, true, run.step * cfg.accum + micro), cfg.accum) as tf.Scalar;
    const { value, grads: g } = tf.variableGrads(f);
    losses.push(value);
    for (const [id, t] of Object.entries(g)) {
      const n = run.names.get(id)!;
      const prev = grads.get(n);
      grads.set(n, prev ? tf.add(prev, t) : t);
      if (prev) { prev.dispose(); t.dispose(); }
    }
  }
  const lossT = tf.tidy(() => losses.reduce((a, b) => tf.add(a, b)));              // (not addN: see clipByGlobalNorm)
  const normT = clipByGlobalNorm(grads, cfg.clip);
  const [[loss], [gradNorm]] = await readTensors([lossT, normT]);
  tf.dispose([...losses, lossT, normT]);
  if (!Number.isFinite(loss)) {
    tf.dispose([...grads.values()]);
    run.log({ step: run.step, split: 'train', loss: String(loss) });
    const ckptDir = join(cfg.out, 'ckpt');
    const where =
      run.lastCkpt === null
        ? 'no checkpoint was written yet'
        : `the last good checkpoint is ${ckptDir} (step ${run.lastCkpt})`;
    throw new Error(`training stopped: the loss is ${loss} at step ${run.step}; ${where}`);
  }
  const lr = lrScaleAt(run.step, cfg.warmup, cfg.steps, cfg.minLrRatio);
  run.opt.apply(grads, lr);
  tf.dispose([...grads.values()]);
  return { loss, gradNorm, lr: lr * cfg.lr, tokens };
}

/** Mean cross-entropy (nats/token) of next-token prediction, over masked positions if a mask is given. */
export function lossOf(
  model: GPT,
  batch: Batch,
  training: boolean,
  dropoutSeed = 0,
  aesMode?: 'auto' | 'frozen',
): tf.Tensor {
  return tf.tidy(() => {
    const [B, T] = [batch.x.length, batch.x[0].length];
    const V = model.config.vocabSize;
    const x = tf.tensor2d(batch.x, [B, T], 'int32');
    const logits = model.forward(x, { training, dropoutSeed, aesMode }).logits;
    const logp = tf.logSoftmax(tf.reshape(logits, [B * T, V]));
    const target = tf.cast(tf.oneHot(tf.tensor1d(batch.y.flat(), 'int32'), V), 'float32');
    const nll = tf.neg(tf.sum(tf.mul(logp, target), 1)); // [B·T]
    if (!batch.mask) return tf.mean(nll);
    const m = tf.tensor1d(batch.mask.flat(), 'float32');
    return tf.div(tf.sum(tf.mul(nll, m)), tf.maximum(tf.sum(m), 1));
  });
}

/**
 * Validation metrics on the source's fixed batches, with per-head statistics from the first one.
 * One read per batch (its loss and predictions) and one for the statistics.
 */
export async function evaluate(
  model: GPT,
  source: Source,
  opts: { aesMode?: 'auto' | 'frozen' } = {},
): Promise<EvalMetrics> {
  const batches = source.evalBatches();
  const { aesMode } = opts;
  let loss = 0, exact = 0, tokenAcc = 0;
  for (const b of batches) {
    const [lossT, predT] = tf.tidy(() => {
      const l = lossOf(model, b, false, 0, aesMode);
      if (!source.task) return [l];
      return [l, tf.argMax(model.forward(tf.tensor2d(b.x, undefined, 'int32'), { aesMode }).logits, 2)];
    });
    const [[l], pred] = await readTensors(predT ? [lossT, predT] : [lossT]);
    tf.dispose([lossT, predT]);
    loss += l / batches.length;
    if (source.task) {
      const T = b.x[0].length;
      const rows = b.x.map((_, i) => Array.from(pred.subarray(i * T, (i + 1) * T)));
      const acc = taskAccuracy(rows, { x: b.x, y: b.y, mask: b.mask! });
      exact += acc.exactMatch / batches.length;
      tokenAcc += acc.tokenAccuracy / batches.length;
    }
  }
  const x0 = tf.tensor2d(batches[0].x, undefined, 'int32');
  const r = model.forward(x0, { returnStats: true, aesMode });
  x0.dispose();
  const stats = r.stats!;
  // [B, H, T] → [H] per layer and statistic; per-row AES heads report the mean α of their rows.
  const keys = ['entropy', 'varentropy', 'supportFraction', 'rowAlpha'] as const;
  const means = tf.tidy(() => stats.flatMap((s) => keys.map((k) => tf.mean(s[k], [0, 2]))));
  const host = await readTensors(means);
  tf.dispose(means);
  const perHead = (k: (typeof keys)[number]) =>
    stats.map((_, l) => Array.from(host[l * keys.length + keys.indexOf(k)]));
  const rowAlpha = perHead('rowAlpha');
  const metrics: EvalMetrics = {
    loss,
    ...(source.charsPerToken ? { bitsPerChar: loss / Math.LN2 / source.charsPerToken } : {}),
    ...(source.task ? { exactMatch: exact, tokenAccuracy: tokenAcc } : {}),
    // per-row AES: the mean α of its rows (it has no single α); the others: α of the parameters / state
    alpha: (await model.alphas()).map((layer, l) => layer.map((a, h) => {
      const n = model.plans[l].heads[h];
      return n.kind === 'aes' && n.aes.per === 'row' ? rowAlpha[l][h] : a;
    })),
    entropy: perHead('entropy'),
    varentropy: perHead('varentropy'),
    supportFraction: perHead('supportFraction'),
  };
  tf.dispose([r.logits, ...r.present.flatMap((c) => [c.k, c.v]), ...stats.flatMap((s) => Object.values(s))]);
  return metrics;
}

/** A resumed run must train the same model on the same data. */
function checkResumable(
  meta: Record<string, unknown>,
  cfg: TrainConfig,
  saved: GPTConfig,
  wanted: Partial<GPTConfig>,
): void {
  const prev = meta.train as TrainConfig | undefined;
  if (!prev || typeof meta.step !== 'number' || !Array.isArray(meta.rng))
    throw new Error('cannot resume: the checkpoint holds no training state');
  const diff = (['data', 'batch', 'accum', 'seed'] as const).filter((k) => prev[k] !== cfg[k]);
  for (const k of ['nLayer', 'nHead', 'nEmbd', 'blockSize', 'pos'] as const)
    if (saved[k] !== wanted[k]) diff.push(k as never);
  if (diff.length) throw new Error(`cannot resume: ${diff.join(', ')} differ from the checkpoint's run`);
}

/** On resume, drop metric lines past the checkpoint (they will be written again). */
function keepMetricsUpTo(path: string, step: number): void {
  if (!existsSync(path)) return;
  const stepOf = (l: string) => { try { return (JSON.parse(l) as { step: number }).step; } catch { return Infinity; } };
  const kept = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l && stepOf(l) <= step);                            // (a killed run may leave half a line)
  writeFileSync(path, kept.map((l) => `${l}\n`).join(''));
}
