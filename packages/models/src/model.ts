/**
 * A small GPT (decoder-only transformer) in the spirit of nanoGPT, with the attention normaliser
 * chosen per layer or per head: softmax, sparsemax, entmax15, a fixed α, a learned α or AES.
 *
 *   x = wte[tokens] (+ wpe[positions] with learned positions; RoPE / ALiBi act inside attention)
 *   for each block: x = x + attn(LN₁(x));  x = x + mlp(LN₂(x))     (pre-LayerNorm, GELU MLP)
 *   logits = LN_f(x) · W_headᵀ                                     (W_head = wte when tied)
 *
 * Embedding lookups are one-hot products (tfjs-wasm has no kernel for gather's gradient) and every
 * product is a 2-D matMul (fast on wasm). Attention is `multiHeadAttention` from @aes/attention.
 */
import * as tf from '@tensorflow/tfjs';
import {
  alphaOf,
  initialParam,
  matMul2d,
  multiHeadAttention,
  planAttention,
  type AttentionPlan,
  type AttentionStats,
  type KVCache,
  type MhaWeights,
  type NormaliserSpec,
} from '@aes/attention';
import { readTensors } from './read.js';

/** The whole architecture, as plain JSON (saved with checkpoints). */
export interface GPTConfig {
  /** Number of token ids. */
  vocabSize: number;
  /** Transformer blocks. */
  nLayer: number;
  /** Attention heads per block (nEmbd must be divisible by it). */
  nHead: number;
  /** Model width C. */
  nEmbd: number;
  /** Training context; with learned positions also the longest context. */
  blockSize: number;
  /**
   * Positions: 'learned' absolute embeddings (nanoGPT; they stop at blockSize), 'rope' (rotary),
   * 'alibi' (linear biases per head) or 'nope' (none: the causal mask alone orders the tokens).
   */
  pos: 'learned' | 'rope' | 'alibi' | 'nope';
  /** Dropout rate on embeddings, attention output and MLP output (training only). */
  dropout: number;
  /** Share the token embedding with the output projection. */
  weightTying: boolean;
  /** Biases in linear layers. */
  bias: boolean;
  /**
   * Normaliser: one spec for every head of every layer, or one entry per layer, each a spec for all
   * its heads or an array of nHead specs. Specs: 'softmax' | 'sparsemax' | 'entmax15' | 'alpha=x' |
   * 'learned' | 'aes' | {alpha: x} | {aes: {...}}.
   */
  attention: NormaliserSpec | Array<NormaliserSpec | NormaliserSpec[]>;
  /** Initial α of learned heads. */
  alphaInit: number;
}

export const GPT_DEFAULTS: Readonly<Omit<GPTConfig, 'vocabSize'>> = Object.freeze({
  nLayer: 2,
  nHead: 4,
  nEmbd: 64,
  blockSize: 64,
  pos: 'learned',
  dropout: 0,
  weightTying: true,
  bias: true,
  attention: 'softmax',
  alphaInit: 1.5,
});

const POSITIONS: readonly GPTConfig['pos'][] = ['learned', 'rope', 'alibi', 'nope'];

/** Fills defaults, rejects unknown keys and inconsistent sizes with clear messages. */
export function resolveConfig(cfg: Partial<GPTConfig> & { vocabSize: number }): GPTConfig {
  const valid = ['vocabSize', ...Object.keys(GPT_DEFAULTS)];
  const unknown = Object.keys(cfg).filter((k) => !valid.includes(k));
  if (unknown.length) throw new RangeError(`unknown model option(s) ${unknown.join(', ')}; valid: ${valid.join(', ')}`);
  const c = { ...GPT_DEFAULTS, ...cfg } as GPTConfig;
  for (const k of ['vocabSize', 'nLayer', 'nHead', 'nEmbd', 'blockSize'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new RangeError(`model ${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.nEmbd % c.nHead) throw new RangeError(`model nEmbd (${c.nEmbd}) must be divisible by nHead (${c.nHead})`);
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new RangeError(`model dropout must be in [0, 1), got ${c.dropout}`);
  if (!POSITIONS.includes(c.pos))
    throw new RangeError(`model pos must be one of ${POSITIONS.join(', ')}, got ${String(c.pos)}`);
  if (c.pos === 'rope' && (c.nEmbd / c.nHead) % 2)
    throw new RangeError(`model pos 'rope' needs an even head size, got ${c.nEmbd / c.nHead}`);
  if (!(c.alphaInit > 1 && c.alphaInit < 2))
    throw new RangeError(`model alphaInit must be in (1, 2), got ${c.alphaInit}`);
  layerHeads(c).forEach((hs) => planAttention(hs, { heads: c.nHead, alphaInit: c.alphaInit }));
  return c;
}

/** The spec of every head, `[nLayer][nHead]`. */
export function layerHeads(c: GPTConfig): NormaliserSpec[][] {
  const perLayer = Array.isArray(c.attention) ? c.attention : Array(c.nLayer).fill(c.attention);
  if (perLayer.length !== c.nLayer)
    throw new RangeError(`model attention lists ${perLayer.length} layers, but nLayer is ${c.nLayer}`);
  return perLayer.map((spec, l) => {
    const heads = Array.isArray(spec) ? spec : Array(c.nHead).fill(spec);
    if (heads.length !== c.nHead)
      throw new RangeError(`model attention of layer ${l} lists ${heads.length} heads, but nHead is ${c.nHead}`);
    return heads;
  });
}

export interface ForwardArgs {
  /** Dropout on, and AES heads adapt (and update their running ζ). Default false. */
  training?: boolean;
  /**
   * The AES α rule: 'auto' (the training rule: the varentropy gate) or 'frozen' (per-head AES uses
   * its running ζ̄). Default: 'auto' in training, 'frozen' otherwise; ζ̄ changes only in training.
   */
  aesMode?: 'auto' | 'frozen';
  /** Seed of this call's dropout masks (training with dropout > 0). */
  dropoutSeed?: number;
  /** Return per-layer attention statistics. */
  returnStats?: boolean;
  /** KV cache per layer from the previous call (incremental decoding). */
  cache?: KVCache[];
  /** Return this call's KV cache as `present` (the caller disposes it). Default false. */
  keepCache?: boolean;
  /** Return each layer's queries `[B, H, T, d]` (after RoPE) as `queries`, for analysis (caller disposes). */
  keepQueries?: boolean;
}

export interface ForwardResult {
  /** `[B, T, V]` */
  logits: tf.Tensor;
  /** Per layer, when asked. */
  stats?: AttentionStats[];
  /** KV cache after this call, per layer, with `keepCache` (dispose when done); else empty. */
  present: KVCache[];
  /** Per layer, with `keepQueries`: with `present`'s keys and values, what each head attended with. */
  queries?: tf.Tensor[];
}

/**
 * The model: configuration plus variables. `forward` is a pure function of them (and of the AES
 * running state, a non-trainable variable per layer, `h<l>.attn.aes_zeta`, which training calls update).
 * @example
 * const gpt = new GPT({vocabSize: 256, attention: ['softmax', 'learned']}, {seed: 0});
 * const {logits} = gpt.forward(tf.tensor2d([[1, 2, 3]], [1, 3], 'int32'));
 */
export class GPT {
  readonly config: GPTConfig;
  /** Each layer's heads' normalisers, resolved once. */
  readonly plans: AttentionPlan[];
  /** Every variable by our name ('wte', 'h0.attn.wq', …: they key checkpoints), AES state included. */
  readonly params = new Map<string, tf.Variable>();

  constructor(config: Partial<GPTConfig> & { vocabSize: number }, opts: { seed: number }) {
    this.config = resolveConfig(config);
    this.plans = layerHeads(this.config).map((hs) =>
      planAttention(hs, { heads: this.config.nHead, alphaInit: this.config.alphaInit }),
    );
    const { vocabSize: V, nLayer, nEmbd: C, blockSize, bias } = this.config;
    // Distinct seeds per tensor; tfjs treats a seed of 0 as "no seed", so they start at 1.
    let seed = opts.seed * 100_003 + 1;
    const normal = (name: string, shape: number[], std = 0.02) =>
      this.add(name, tf.randomNormal(shape, 0, std, 'float32', seed++));
    const zeros = (name: string, shape: number[]) => this.add(name, tf.zeros(shape));
    const ones = (name: string, shape: number[]) => this.add(name, tf.ones(shape));
    const residualStd = 0.02 / Math.sqrt(2 * nLayer);                   // nanoGPT's scaled init of c_proj
    normal('wte', [V, C]);
    if (this.config.pos === 'learned') normal('wpe', [blockSize, C]);
    for (let l = 0; l < nLayer; l++) {
      const p = `h${l}.`;
      ones(`${p}ln1.g`, [C]); zeros(`${p}ln1.b`, [C]);
      for (const w of ['wq', 'wk', 'wv']) normal(`${p}attn.${w}`, [C, C]);
      normal(`${p}attn.wo`, [C, C], residualStd);
      if (bias) for (const b of ['bq', 'bk', 'bv', 'bo']) zeros(`${p}attn.${b}`, [C]);
      // The heads' learned parameters ('alpha', 'ssmaxS', …), one [H] variable each; only random
      // starts take a seed (so models without them initialise exactly as before they existed).
      for (const spec of this.plans[l].params) {
        this.add(`${p}attn.${spec.name}`, initialParam(spec, this.config.nHead, 'constant' in spec.init ? 1 : seed++));
      }
      // AES running ζ per head (NaN: no estimate yet): saved with the weights, never trained.
      if (this.plans[l].aesGroups.length) this.add(`${p}attn.aes_zeta`, tf.fill([this.config.nHead], NaN), false);
      ones(`${p}ln2.g`, [C]); zeros(`${p}ln2.b`, [C]);
      normal(`${p}mlp.w1`, [C, 4 * C]); normal(`${p}mlp.w2`, [4 * C, C], residualStd);
      if (bias) { zeros(`${p}mlp.b1`, [4 * C]); zeros(`${p}mlp.b2`, [C]); }
    }
    ones('lnf.g', [C]); zeros('lnf.b', [C]);
    if (!this.config.weightTying) normal('head', [V, C]);
  }

  private add(name: string, init: tf.Tensor, trainable = true): void {
    // tfjs variable names are global to the engine; ours stay per model in `params`.
    this.params.set(name, tf.variable(init, trainable));
    init.dispose();
  }

  /** Learned-α parameters by name (their own optimizer group: own learning rate, no weight decay). */
  alphaVariables(): Map<string, tf.Variable> {
    return new Map([...this.params].filter(([n, v]) => v.trainable && n.endsWith('.alpha')));
  }

  /** All other trainable variables, by name. */
  weightVariables(): Map<string, tf.Variable> {
    return new Map([...this.params].filter(([n, v]) => v.trainable && !n.endsWith('.alpha')));
  }

  /** Current α of every head, `[nLayer][nHead]` (AES: from the running ζ; NaN before any estimate). */
  async alphas(): Promise<number[][]> {
    const names = this.plans.flatMap((_, l) => ['alpha', 'aes_zeta'].map((n) => `h${l}.attn.${n}`));
    const held = names.filter((n) => this.params.has(n));
    const read = await readTensors(held.map((n) => this.params.get(n)!));
    const value = (n: string) => read[held.indexOf(n)];                 // undefined when absent
    return this.plans.map((plan, l) => {
      const values = { alphaRaw: value(`h${l}.attn.alpha`), state: value(`h${l}.attn.aes_zeta`) };
      return plan.heads.map((head, h) => alphaOf(head, h, values));
    });
  }

  /**
   * Logits for int32 tokens `[B, T]`. With `cache`, the tokens continue the cached positions.
   * Throws if the context would exceed blockSize (generate() crops before that).
   */
  forward(tokens: tf.Tensor, args: ForwardArgs = {}): ForwardResult {
    const { vocabSize: V, nEmbd: C, nHead: H, blockSize, dropout, bias } = this.config;
    if (tokens.rank !== 2 || tokens.dtype !== 'int32')
      throw new TypeError(`GPT.forward: tokens must be int32 [B, T], got ${tokens.dtype} [${tokens.shape}]`);
    const [B, T] = tokens.shape as [number, number];
    const past = args.cache?.[0]?.k.shape[2] ?? 0;
    if (this.config.pos === 'learned' && past + T > blockSize) {
      throw new RangeError(
        `GPT.forward: ${past + T} positions exceed blockSize ${blockSize}, where learned positions stop ` +
          '(a model with --pos rope, alibi or nope has no such limit)',
      );
    }
    const p = (n: string) => this.params.get(n)!;
    const drop = (x: tf.Tensor, salt: number) =>
      args.training && dropout > 0 ? tf.dropout(x, dropout, undefined, (args.dropoutSeed ?? 0) * 1009 + salt + 1) : x;
    const stats: AttentionStats[] = [];
    const present: KVCache[] = [];
    const queries: tf.Tensor[] = [];
    const positions = this.config.pos === 'rope' || this.config.pos === 'alibi' ? this.config.pos : undefined;
    const logits = tf.tidy(() => {
      const onehot = tf.cast(tf.oneHot(tf.reshape(tokens, [B * T]), V), 'float32');        // [B·T, V]
      const tok = matMul2d(onehot as tf.Tensor2D, p('wte') as tf.Tensor2D);
      const emb =
        this.config.pos === 'learned' ? tf.add(tok, tf.tile(tf.slice(p('wpe'), [past, 0], [T, C]), [B, 1])) : tok;
      let x: tf.Tensor = drop(tf.reshape(emb, [B, T, C]), 0);
      for (let l = 0; l < this.config.nLayer; l++) {
        const q = (n: string) => p(`h${l}.${n}`);
        const w: MhaWeights = {
          wq: q('attn.wq'),
          wk: q('attn.wk'),
          wv: q('attn.wv'),
          wo: q('attn.wo'),
          ...(bias ? { bq: q('attn.bq'), bk: q('attn.bk'), bv: q('attn.bv'), bo: q('attn.bo') } : {}),
          params: Object.fromEntries(
            this.plans[l].params.map((s) => [s.name, this.params.get(`h${l}.attn.${s.name}`)!]),
          ),
        };
        const state = this.params.get(`h${l}.attn.aes_zeta`);
        const a = multiHeadAttention(
          layerNorm(x, q('ln1.g'), q('ln1.b')),
          w,
          { numHeads: H, keyDim: C / H, causal: true, plan: this.plans[l], positions },
          {
            cache: args.cache?.[l],
            state,
            aesMode: args.aesMode ?? (args.training ? 'auto' : 'frozen'),
            returnStats: args.returnStats,
            returnQueries: args.keepQueries,
          },
        );
        if (a.queries) queries.push(tf.keep(a.queries));
        if (args.training && a.state) state!.assign(a.state);       // on the device: no read
        if (a.stats) stats.push(a.stats);
        if (args.keepCache) present.push({ k: tf.keep(a.present.k), v: tf.keep(a.present.v) });
        x = tf.add(x, drop(a.output, 1 + 2 * l));
        const h = layerNorm(x, q('ln2.g'), q('ln2.b'));
        x = tf.add(
          x,
          drop(
            mlp(h, q('mlp.w1'), q('mlp.w2'), bias ? q('mlp.b1') : undefined, bias ? q('mlp.b2') : undefined),
            2 + 2 * l,
          ),
        );
      }
      x = layerNorm(x, p('lnf.g'), p('lnf.b'));
      const head = this.config.weightTying ? p('wte') : p('head');
      const out = matMul2d(tf.reshape(x, [B * T, C]) as tf.Tensor2D, tf.transpose(head) as tf.Tensor2D);
      stats.forEach((s) => Object.values(s).forEach((t) => tf.keep(t)));
      return tf.reshape(out, [B, T, V]);
    });
    return { logits, present, ...(args.returnStats ? { stats } : {}), ...(args.keepQueries ? { queries } : {}) };
  }

  dispose(): void {
    this.params.forEach((v) => v.dispose());
  }
}

/** LayerNorm over the last axis (ε = 1e-5). */
function layerNorm(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1 + x.rank, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b);
}

/** GELU (tanh approximation, as in GPT-2) MLP: W₂·gelu(W₁x + b₁) + b₂ on `[B, T, C]`. */
function mlp(x: tf.Tensor, w1: tf.Tensor, w2: tf.Tensor, b1?: tf.Tensor, b2?: tf.Tensor): tf.Tensor {
  const [B, T, C] = x.shape as [number, number, number];
  let h: tf.Tensor = matMul2d(tf.reshape(x, [B * T, C]) as tf.Tensor2D, w1 as tf.Tensor2D);
  if (b1) h = tf.add(h, b1);
  const cube = tf.mul(tf.mul(h, h), h);
  h = tf.mul(tf.mul(h, 0.5), tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(h, tf.mul(cube, 0.044715))))));
  let out: tf.Tensor = matMul2d(h as tf.Tensor2D, w2 as tf.Tensor2D);
  if (b2) out = tf.add(out, b2);
  return tf.reshape(out, [B, T, C]);
}
