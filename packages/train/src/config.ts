/**
 * The training configuration: one flat, JSON-safe object with frozen defaults (the CLI's flags map
 * onto it one to one), and the parser of the `--attention` list.
 */
import { parseNormaliser, type NormaliserSpec } from '@aes/attention';

export interface TrainConfig {
  /** Text file path, http(s) URL, or `task:NAME[:k=v,…]`. */
  data: string;
  /** Output directory (metrics.jsonl, config.json, ckpt/, plots). */
  out: string;
  steps: number;
  /** Sequences per micro-batch. */
  batch: number;
  /** Micro-batches per optimizer step (gradient accumulation). */
  accum: number;
  /** Context length for text (tasks use their own sequence length). */
  blockSize: number;
  layers: number;
  heads: number;
  /** Model width. */
  embd: number;
  dropout: number;
  /**
   * Normaliser per layer, comma-separated; heads of one layer separated by '/': e.g. `learned`,
   * `softmax,learned`, `softmax/sparsemax/aes/aes,learned`. Items: softmax | sparsemax | entmax15 |
   * alpha=<x> | learned | aes.
   */
  attention: string;
  alphaInit: number;
  /** Text tokenizer. */
  tokenizer: 'char' | 'byte';
  /** Peak learning rate of the weights. */
  lr: number;
  /** Peak learning rate of the learned-α parameters (own group, no weight decay). */
  alphaLr: number;
  weightDecay: number;
  /** Linear warmup steps. */
  warmup: number;
  /** Cosine decay ends at lr × this. */
  minLrRatio: number;
  /** Global gradient-norm clip (0: off). */
  clip: number;
  evalEvery: number;
  /** Validation batches per evaluation. */
  evalBatches: number;
  ckptEvery: number;
  /** Train metrics are logged every this many steps. */
  logEvery: number;
  seed: number;
  valFraction: number;
  /** Where downloaded texts are kept. */
  cacheDir: string;
  /** Continue from `out/ckpt`. */
  resume: boolean;
  /** Stop after this step (as if interrupted); the schedule still spans `steps`. 0: off. */
  stopAt?: number;
}

export const TRAIN_DEFAULTS: Readonly<TrainConfig> = Object.freeze({
  data: 'task:sort', out: 'runs/latest', steps: 1200, batch: 32, accum: 1, blockSize: 64,
  layers: 2, heads: 4, embd: 64, dropout: 0, attention: 'learned', alphaInit: 1.5, tokenizer: 'char',
  lr: 3e-3, alphaLr: 3e-2, weightDecay: 0.1, warmup: 40, minLrRatio: 0.1, clip: 1,
  evalEvery: 100, evalBatches: 4, ckptEvery: 400, logEvery: 10, seed: 0, valFraction: 0.1,
  cacheDir: '.cache/aes', resume: false,
});

/** `softmax,learned/aes` → per-layer specs (a single item applies to every layer). */
export function parseAttention(list: string): NormaliserSpec | Array<NormaliserSpec | NormaliserSpec[]> {
  const layers = list.split(',').map((l) => l.trim().split('/').map((h) => h.trim() as NormaliserSpec));
  for (const spec of layers.flat()) parseNormaliser(spec);
  const perLayer = layers.map((heads) => (heads.length === 1 ? heads[0] : heads));        // one item: all heads
  return perLayer.length === 1 ? perLayer[0] : perLayer;
}

/** Checks ranges of a full config (the CLI has already checked types). */
export function checkTrainConfig(c: TrainConfig): void {
  const positive = [
    'steps',
    'batch',
    'accum',
    'blockSize',
    'layers',
    'heads',
    'embd',
    'evalEvery',
    'evalBatches',
    'ckptEvery',
    'logEvery',
  ] as const;
  for (const k of positive)
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new RangeError(`--${k} must be a positive integer, got ${c[k]}`);
  for (const k of ['lr', 'alphaLr'] as const) if (!(c[k] > 0)) throw new RangeError(`--${k} must be > 0, got ${c[k]}`);
  if (!(c.valFraction > 0 && c.valFraction < 1))
    throw new RangeError(`--valFraction must be in (0, 1), got ${c.valFraction}`);
  if (c.tokenizer !== 'char' && c.tokenizer !== 'byte')
    throw new RangeError(`--tokenizer must be char or byte, got ${c.tokenizer}`);
  parseAttention(c.attention);
}
