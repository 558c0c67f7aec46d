/**
 * Autoregressive generation with a KV cache: the prompt is run once, then each new token is fed with
 * the cached keys and values of all earlier positions, which gives the same logits as recomputing
 * the whole prefix (tested for every normaliser; AES heads use their running ζ outside training).
 *
 * Context longer than blockSize: the prompt keeps its last blockSize tokens; once the sequence would
 * outgrow blockSize the window slides, and since positions are absolute the cache cannot be reused:
 * each further step recomputes the last blockSize tokens (as nanoGPT does).
 */
import * as tf from '@tensorflow/tfjs';
import type { KVCache } from '@aes/attention';
import type { GPT } from './model.js';
import { readTensors } from './read.js';
import { Rng } from './rng.js';
import type { AttentionSummary, Sampler } from './sampler_types.js';

export interface GenerateArgs {
  maxNewTokens: number;
  sampler: Sampler;
  /** Seed of the sampling RNG (or pass `rng` to continue one). */
  seed?: number;
  rng?: Rng;
  /** Called with each token as soon as it is drawn (streaming). */
  onToken?: (token: number, record: Record<string, unknown>) => void;
  /** Compute the attention summary the Entropix sampler reads (costs the statistics). */
  attentionStats?: boolean;
  /** Reuse keys/values between steps (default true); false recomputes the prefix every step. */
  useCache?: boolean;
}

export interface GenerateResult {
  /** The new tokens (the prompt not included). */
  tokens: number[];
  /** Each sampler decision, with the step and, if computed, the attention summary. */
  records: Array<Record<string, unknown>>;
}

/**
 * Generates `maxNewTokens` tokens after `prompt`.
 * @example
 * const {tokens} = await generate(gpt, tok.encode('Once'), {maxNewTokens: 50, sampler: greedySampler(), seed: 0});
 *
 * One read per token: the last position's logits (and, with `attentionStats`, the summary) in one
 * transfer, so it runs on webgpu, where tensors have no synchronous read.
 */
export async function generate(model: GPT, prompt: readonly number[], args: GenerateArgs): Promise<GenerateResult> {
  const { vocabSize: V, blockSize } = model.config;
  if (!prompt.length) throw new RangeError('generate: the prompt must hold at least one token');
  const bad = prompt.find((t) => !Number.isInteger(t) || t < 0 || t >= V);
  if (bad !== undefined) throw new RangeError(`generate: prompt token ${bad} outside [0, ${V})`);
  if (!Number.isInteger(args.maxNewTokens) || args.maxNewTokens < 0)
    throw new RangeError(`generate: maxNewTokens must be a non-negative integer, got ${args.maxNewTokens}`);
  const rng = args.rng ?? new Rng(args.seed ?? 0);
  const useCache = args.useCache ?? true;
  const seq = prompt.slice(-blockSize);
  const out: GenerateResult = { tokens: [], records: [] };
  let cache: KVCache[] | undefined;
  let feed = seq;                                                        // tokens to run this step
  for (let step = 0; step < args.maxNewTokens; step++) {
    if (!useCache || !cache || seq.length > blockSize) {                 // (re)start from the window
      dispose(cache);
      cache = undefined;
      feed = seq.slice(-blockSize);
    }
    const input = tf.tensor2d([feed], [1, feed.length], 'int32');
    const res = model.forward(input, { cache, keepCache: true, returnStats: args.attentionStats });
    input.dispose();
    dispose(cache);
    cache = useCache && seq.length < blockSize ? res.present : (dispose(res.present), undefined);
    const reads = tf.tidy(() => [
      tf.reshape(tf.slice(res.logits, [0, feed.length - 1, 0], [1, 1, V]), [V]),
      ...(res.stats ? summaryTensors(res.stats) : []),
    ]);
    res.logits.dispose();
    res.stats?.forEach((s) => tf.dispose(Object.values(s)));
    const [last, ...summary] = await readTensors(reads);
    tf.dispose(reads);
    const attention = res.stats ? summarize(summary.map((v) => v[0])) : undefined;
    const { token, record } = args.sampler(last, { rng, ...(attention ? { attention } : {}) });
    const rec = { step, token, ...record, ...(attention ? { attention } : {}) };
    out.tokens.push(token);
    out.records.push(rec);
    args.onToken?.(token, rec);
    seq.push(token);
    feed = [token];
  }
  dispose(cache);
  return out;
}

function dispose(cache?: KVCache[]): void {
  cache?.forEach((c) => tf.dispose([c.k, c.v]));
}

const SUMMARY_KEYS = ['entropy', 'headEntropyVariance', 'agreement', 'interactionStrength'] as const;

/** Per statistic, its mean at the last position over layers (and heads): scalars, in SUMMARY_KEYS order. */
function summaryTensors(stats: import('@aes/attention').AttentionStats[]): tf.Tensor[] {
  const lastOf = (t: tf.Tensor) => {
    const T = t.shape[t.rank - 1] as number;
    return tf.mean(tf.slice(t, t.shape.map((_, i) => (i === t.rank - 1 ? T - 1 : 0)), [...t.shape.slice(0, -1), 1]));
  };
  // (a chain of adds: webgpu's addN cannot bind more than 8 inputs, and a model may have more layers)
  return SUMMARY_KEYS.map((k) => tf.div(stats.map((s) => lastOf(s[k])).reduce((a, b) => tf.add(a, b)), stats.length));
}

/** Entropix inputs at the last position, averaged over layers (and heads), in nats. */
function summarize([entropy, varentropy, agreement, interactionStrength]: number[]): AttentionSummary {
  return { entropy, varentropy, agreement, interactionStrength };
}
