/**
 * Evaluation at fixed lengths (`--eval-lengths 64,128,…`): exact match, token accuracy and loss of
 * the validation batches of each length, and per-head α, entropy and support there. A long sequence
 * is fed in chunks of `chunk` positions through the KV cache (the same logits as one pass: tested
 * for every normaliser and position encoding), so memory grows with chunk × length, not length².
 */
import * as tf from '@tensorflow/tfjs';
import { readTensors, type GPT } from '@aes/models';
import type { Batch, Source } from './source.js';
import { taskAccuracy } from './tasks.js';

/** One metrics.jsonl row of a length. */
export interface LengthMetrics {
  split: 'val';
  length: number;
  /** Tokens per sequence fed to the model. */
  tokens: number;
  step: number;
  loss: number;
  exact?: number;
  tokenAccuracy?: number;
  /** `[layer][head]`, means over rows. */
  alpha: number[][];
  entropy: number[][];
  support: number[][];
  /** Largest tfjs memory in use during the evaluation of this length, MB. */
  peakMB: number;
}

export interface EvalLengthsArgs {
  /** Positions per chunk. Default 512. */
  chunk?: number;
  /** Tokens per validation batch: sequences = max(minSequences, ⌊tokensPerBatch / tokens⌋). Default 4096. */
  tokensPerBatch?: number;
  /** At least this many sequences per batch, so long lengths keep a usable sample. Default 32. */
  minSequences?: number;
}

/**
 * Parses `64,128,256` or multiples of the training length `1x,2x,4x` (any mix; positive, each
 * once). `trainLength` resolves the multiples (tasks: their length parameter; texts: the block
 * size); without it only the syntax is checked and the multiples come back as NaN.
 */
export function parseLengths(list: string, trainLength?: number): number[] {
  if (!list.trim()) return [];
  const items = list.split(',').map((x) => x.trim());
  const ls = items.map((x) => {
    const times = /^(\d+(?:\.\d+)?)x$/.exec(x);
    if (!times) return /^\d+$/.test(x) && Number(x) >= 1 ? Number(x) : -1;
    const n = trainLength === undefined ? NaN : Math.round(Number(times[1]) * trainLength);
    return Number(times[1]) > 0 && !(n < 1) ? n : -1;
  });
  const bad = ls.indexOf(-1);
  if (bad >= 0)
    throw new RangeError(`--eval-lengths takes positive integers or multiples like 2x, got '${items[bad]}'`);
  const known = ls.filter((l) => !Number.isNaN(l));
  if (new Set(known).size !== known.length) throw new RangeError(`--eval-lengths lists a length twice: '${list}'`);
  return ls;
}

/** Learned positions stop at the block size: an evaluation length beyond it is refused before training. */
export function checkLengths(model: GPT, source: Source, lengths: number[]): void {
  if (model.config.pos !== 'learned') return;
  for (const length of lengths) {
    const tokens = source.evalAt(length, 1)[0].x[0].length;
    if (tokens > model.config.blockSize) {
      throw new RangeError(
        `--eval-lengths ${length} needs ${tokens} positions, beyond the block size ${model.config.blockSize} ` +
          'where learned positions stop; train with --pos rope, alibi or nope to evaluate longer',
      );
    }
  }
}

/** Metrics of every length, in the order given (checked first by checkLengths). */
export async function evaluateLengths(
  model: GPT,
  source: Source,
  lengths: number[],
  step: number,
  args: EvalLengthsArgs = {},
): Promise<LengthMetrics[]> {
  checkLengths(model, source, lengths);
  const rows: LengthMetrics[] = [];
  for (const length of lengths) rows.push(await evaluateLength(model, source, length, step, args));
  return rows;
}

async function evaluateLength(
  model: GPT,
  source: Source,
  length: number,
  step: number,
  args: EvalLengthsArgs,
): Promise<LengthMetrics> {
  const { chunk = 512, tokensPerBatch = 4096, minSequences = 32 } = args;
  const probe = source.evalAt(length, 1)[0];
  const tokens = probe.x[0].length;
  const batches = source.evalAt(length, Math.max(minSequences, Math.floor(tokensPerBatch / tokens)));
  let peak = tf.memory().numBytes;
  let lossSum = 0,
    count = 0,
    exact = 0,
    right = 0,
    total = 0,
    sequences = 0;
  const L = model.config.nLayer,
    H = model.config.nHead;
  const sums = { alpha: grid(L, H), entropy: grid(L, H), support: grid(L, H) };
  let rows = 0;
  for (const [bi, batch] of batches.entries()) {
    const r = await forwardInChunks(model, batch, chunk, bi === 0, () => {
      peak = Math.max(peak, tf.memory().numBytes);
    });
    lossSum += r.lossSum;
    count += r.count;
    if (source.task && batch.mask) {
      const acc = taskAccuracy(r.pred, { x: batch.x, y: batch.y, mask: batch.mask });
      const n = batch.mask.flat().reduce((a, m) => a + m, 0);
      exact += acc.exactMatch * batch.x.length;
      sequences += batch.x.length;
      right += acc.tokenAccuracy * n;
      total += n;
    }
    if (r.stats) {
      for (const key of ['alpha', 'entropy', 'support'] as const) {
        r.stats[key].forEach((layer, l) =>
          layer.forEach((v, h) => {
            sums[key][l][h] += v;
          }),
        );
      }
      rows += 1;
    }
  }
  const mean = (g: number[][]) => g.map((layer) => layer.map((v) => v / Math.max(rows, 1)));
  return {
    split: 'val',
    length,
    tokens,
    step,
    loss: lossSum / Math.max(count, 1),
    ...(source.task ? { exact: exact / Math.max(sequences, 1), tokenAccuracy: right / Math.max(total, 1) } : {}),
    alpha: mean(sums.alpha),
    entropy: mean(sums.entropy),
    support: mean(sums.support),
    peakMB: Number((peak / 2 ** 20).toFixed(1)),
  };
}

const grid = (L: number, H: number) => Array.from({ length: L }, () => Array(H).fill(0));

/**
 * Next-token loss (summed over the masked or all positions), argmax predictions, and (with
 * `withStats`) per-head α / entropy / support means over all rows, from chunks of `chunk` positions.
 * One read per chunk.
 */
async function forwardInChunks(model: GPT, batch: Batch, chunk: number, withStats: boolean, onMemory: () => void) {
  const [B, T] = [batch.x.length, batch.x[0].length];
  const V = model.config.vocabSize;
  const pred: number[][] = Array.from({ length: B }, () => []);
  let lossSum = 0, count = 0;
  const L = model.config.nLayer, H = model.config.nHead;
  const st = { alpha: grid(L, H), entropy: grid(L, H), support: grid(L, H) };
  let cache: ReturnType<GPT['forward']>['present'] | undefined;
  for (let t0 = 0; t0 < T; t0 += chunk) {
    const t1 = Math.min(T, t0 + chunk);
    const x = tf.tensor2d(batch.x.map((r) => r.slice(t0, t1)), [B, t1 - t0], 'int32');
    const r = model.forward(x, { cache, keepCache: true, returnStats: withStats });
    x.dispose();
    cache?.forEach((c) => tf.dispose([c.k, c.v]));
    cache = r.present;
    onMemory();
    const keys = ['rowAlpha', 'entropy', 'supportFraction'] as const;
    const parts = tf.tidy(() => {
      const logp = tf.logSoftmax(tf.reshape(r.logits, [B * (t1 - t0), V]));
      const y = tf.tensor1d(batch.y.flatMap((row) => row.slice(t0, t1)), 'int32');
      const m = tf.tensor1d(
        batch.mask ? batch.mask.flatMap((row) => row.slice(t0, t1)) : Array(B * (t1 - t0)).fill(1),
        'float32',
      );
      const nll = tf.neg(tf.sum(tf.mul(logp, tf.cast(tf.oneHot(y, V), 'float32')), 1));
      const perHead = (r.stats ?? []).flatMap((s) => keys.map((k) => tf.mean(s[k], [0, 2])));  // [B, H, T] → [H]
      return [tf.sum(tf.mul(nll, m)), tf.sum(m), tf.argMax(r.logits, 2), ...perHead];
    });
    const [[chunkLoss], [chunkCount], chunkPred, ...heads] = await readTensors(parts);
    tf.dispose(parts);
    lossSum += chunkLoss; count += chunkCount;
    pred.forEach((row, b) => row.push(...chunkPred.subarray(b * (t1 - t0), (b + 1) * (t1 - t0))));
    if (r.stats) {
      const w = (t1 - t0) / T;
      r.stats.forEach((s, l) => {
        const into = [st.alpha[l], st.entropy[l], st.support[l]];
        into.forEach((acc, k) => heads[l * keys.length + k].forEach((v, h) => { acc[h] += w * v; }));
        tf.dispose(Object.values(s));
      });
    }
    r.logits.dispose();
  }
  cache?.forEach((c) => tf.dispose([c.k, c.v]));
  return { lossSum, count, pred, stats: withStats ? st : null };
}
