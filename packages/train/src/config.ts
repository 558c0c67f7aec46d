/**
 * The training configuration: one flat, JSON-safe object with frozen defaults (the CLI's flags map
 * onto it one to one), and the parser of the `--attention` list.
 */
import { parseNormaliser, type NormaliserSpec } from '@aes/attention';
import { parseLengths } from './eval_lengths.js';

export interface TrainConfig {
  /** Text file path, http(s) URL, or `task:NAME[:k=v,…]`. */
  data: string;
  /**
   * Output directory (metrics.jsonl, config.json, ckpt/, plots). '' (default): a new directory per
   * run, `runs/<data>-<attention>-<time>`. A directory that holds a run is refused unless `resume`
   * (continue it) or `overwrite` (move it aside to `<out>.bak-<time>`).
   */
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
  /** Positions: learned | rope | alibi | nope (see GPTConfig.pos). */
  pos: 'learned' | 'rope' | 'alibi' | 'nope';
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
  /** Also evaluate at these lengths (the task's length parameter, or tokens of text), e.g. '64,128'. */
  evalLengths: string;
  ckptEvery: number;
  /** Train metrics are logged every this many steps. */
  logEvery: number;
  seed: number;
  valFraction: number;
  /** Where downloaded texts are kept. */
  cacheDir: string;
  /** Continue from `out/ckpt`. */
  resume: boolean;
  /** Move a run already in `out` aside (to `<out>.bak-<time>`, never deleted) and start afresh. */
  overwrite: boolean;
  /** Stop after this step (as if interrupted); the schedule still spans `steps`. 0: off. */
  stopAt?: number;
}

export const TRAIN_DEFAULTS: Readonly<TrainConfig> = Object.freeze({
  data: 'task:sort', out: '', steps: 1200, batch: 32, accum: 1, blockSize: 64,
  layers: 2, heads: 4, embd: 64, dropout: 0, attention: 'learned', alphaInit: 1.5, pos: 'learned', tokenizer: 'char',
  lr: 3e-3, alphaLr: 3e-2, weightDecay: 0.1, warmup: 40, minLrRatio: 0.1, clip: 1,
  evalEvery: 100, evalBatches: 4, evalLengths: '', ckptEvery: 400, logEvery: 10, seed: 0, valFraction: 0.1,
  cacheDir: '.cache/aes', resume: false, overwrite: false,
});

/** One line per flag of `aes train --help`. */
export const TRAIN_FLAG_HELP: Readonly<Record<keyof TrainConfig, string>> = Object.freeze({
  data: 'a text file, an http(s) URL (downloaded once) or task:NAME[:k=v,…]',
  out: 'output directory (default: a new runs/<data>-<attention>-<time>); a run there needs --resume or --overwrite',
  steps: 'optimizer steps',
  batch: 'sequences per micro-batch',
  accum: 'micro-batches per step (gradient accumulation)',
  blockSize: 'context length for texts (tasks set their own)',
  layers: 'transformer blocks',
  heads: 'attention heads per block',
  embd: 'model width',
  dropout: 'dropout rate (training only)',
  attention: "normaliser per layer with ',', per head with '/' (softmax, sparsemax, entmax15, alpha=<x>, learned, aes)",
  alphaInit: 'initial α of learned heads, in (1, 2)',
  pos: 'positions: learned (stop at the block size), rope, alibi or nope (none)',
  tokenizer: 'char or byte (texts)',
  lr: 'peak learning rate of the weights',
  alphaLr: 'peak learning rate of learned α',
  weightDecay: 'AdamW weight decay',
  warmup: 'linear warm-up steps',
  minLrRatio: 'cosine decay ends at lr × this',
  clip: 'global gradient-norm clip (0: off)',
  evalEvery: 'steps between evaluations',
  evalBatches: 'validation batches per evaluation',
  evalLengths: "also evaluate at these lengths (a task's length parameter, a text's tokens), e.g. '64,128' or " +
    "multiples of the training length '1x,2x,4x': exact match, accuracy, α per head at each",
  ckptEvery: 'steps between checkpoints',
  logEvery: 'steps between train-loss lines',
  seed: 'seed of weights and batches',
  valFraction: 'share of a text kept for validation',
  cacheDir: 'where downloaded texts are kept',
  resume: 'continue the run in --out from its checkpoint',
  overwrite: 'move a run already in --out aside to <out>.bak-<time>',
  stopAt: 'stop after this step, as if interrupted (0: off)',
});

type AttentionSpec = NormaliserSpec | Array<NormaliserSpec | NormaliserSpec[]>;

/**
 * `softmax,learned/aes` → per-layer specs. A single item (no ',') applies to every layer: a plain
 * name to every head, a '/' list head by head in each of the `layers` layers. A JSON value (starting
 * with `{` or `[`) is taken as the model's attention spec itself, e.g. `{"aes":{"per":"row"}}`.
 */
export function parseAttention(list: string, layers?: number): AttentionSpec {
  if (/^\s*[[{]/.test(list)) return parseJsonAttention(list, layers);
  const perLayer = list.split(',').map((l) => l.trim().split('/').map((h) => h.trim() as NormaliserSpec));
  for (const spec of perLayer.flat()) parseNormaliser(spec);
  if (perLayer.length === 1) {
    const [heads] = perLayer;
    return heads.length === 1 ? heads[0] : Array.from({ length: layers ?? 1 }, () => heads);
  }
  if (layers !== undefined && perLayer.length !== layers) {
    throw new RangeError(`--attention '${list}' lists ${perLayer.length} layers (separated by ','), but --layers ` +
      `is ${layers}; give one entry per layer, or one entry (a name, or a '/' list of one name per head) for all`);
  }
  return perLayer.map((heads) => (heads.length === 1 ? heads[0] : heads));
}

function parseJsonAttention(list: string, layers?: number): AttentionSpec {
  let spec: unknown;
  try {
    spec = JSON.parse(list);
  } catch (e) {
    throw new RangeError(`--attention is not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(spec)) {
    parseNormaliser(spec as NormaliserSpec);
    return spec as NormaliserSpec;
  }
  if (layers !== undefined && spec.length !== layers) {
    throw new RangeError(`--attention lists ${spec.length} layers in JSON, but --layers is ${layers}`);
  }
  for (const layer of spec)
    (Array.isArray(layer) ? layer : [layer]).forEach((h) => parseNormaliser(h as NormaliserSpec));
  return spec as AttentionSpec;
}

/** Checks ranges of a full config (the CLI has already checked types). */
export function checkTrainConfig(c: TrainConfig): void {
  const positive = ['steps', 'batch', 'accum', 'blockSize', 'layers', 'heads', 'embd', 'evalEvery', 'evalBatches',
    'ckptEvery', 'logEvery'] as const;
  const fail = (msg: string): never => { throw new RangeError(msg); };
  for (const k of positive)
    if (!Number.isInteger(c[k]) || c[k] < 1) fail(`--${k} must be a positive integer, got ${c[k]}`);
  for (const k of ['lr', 'alphaLr'] as const) if (!(c[k] > 0)) fail(`--${k} must be > 0, got ${c[k]}`);
  if (!(c.valFraction > 0 && c.valFraction < 1)) fail(`--valFraction must be in (0, 1), got ${c.valFraction}`);
  if (c.tokenizer !== 'char' && c.tokenizer !== 'byte') fail(`--tokenizer must be char or byte, got ${c.tokenizer}`);
  if (!['learned', 'rope', 'alibi', 'nope'].includes(c.pos))
    fail(`--pos must be learned, rope, alibi or nope, got ${c.pos}`);
  parseLengths(c.evalLengths);
  const spec = parseAttention(c.attention, c.layers);
  for (const layer of Array.isArray(spec) ? spec : [spec]) {
    if (Array.isArray(layer) && layer.length !== c.heads) {
      fail(`--attention '${c.attention}' gives ${layer.length} heads for a layer, but --heads is ${c.heads}`);
    }
  }
}
