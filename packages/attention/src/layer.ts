/**
 * `EntropicMultiHeadAttention`: a tfjs-layers Layer around `multiHeadAttention` (mha.ts), usable
 * in `tf.sequential` / `tf.model`, serialisable, and saved with its learned α and AES state.
 * @see multiHeadAttention for the math, attention() for the normalisers.
 */
import * as tf from '@tensorflow/tfjs';
import type { AttentionStats } from './attention.js';
import { multiHeadAttention, type MhaWeights } from './mha.js';
import type { NormaliserSpec } from './normaliser.js';
import { alphaOf, planAttention, type AttentionPlan, type ParamSpec } from './plan.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;

export interface EntropicMultiHeadAttentionArgs extends LayerArgs {
  numHeads: number;
  /** Head size of queries and keys. */
  keyDim: number;
  /** Head size of values (default keyDim). */
  valueDim?: number;
  /** Output features (default: the input's). */
  outputDim?: number;
  /** Mask future positions (self-attention over a sequence). Default false. */
  causal?: boolean;
  /** One normaliser for all heads, or one per head (see attention()). Default 'softmax'. */
  normaliser?: NormaliserSpec | NormaliserSpec[];
  /** Initial α of 'learned' heads, in (1, 2). Default 1.5 (raw a = 0). */
  alphaInit?: number;
  useBias?: boolean;
  /** Kernel initializer name (tf.initializers). Default 'glorotUniform'. */
  kernelInitializer?: string;
}

const INITIALIZERS: Record<string, () => ReturnType<typeof tf.initializers.zeros>> = {
  glorotUniform: () => tf.initializers.glorotUniform({}),
  glorotNormal: () => tf.initializers.glorotNormal({}),
  heNormal: () => tf.initializers.heNormal({}),
  leCunNormal: () => tf.initializers.leCunNormal({}),
  zeros: () => tf.initializers.zeros(),
};

function kernelInitializer(name: string) {
  const make = INITIALIZERS[name];
  if (!make)
    throw new RangeError(`unknown kernelInitializer '${name}'; use one of ${Object.keys(INITIALIZERS).join(', ')}`);
  return make();
}

/**
 * Multi-head self- (or cross-) attention with per-head softmax / sparsemax / entmax / learned α /
 * AES. Input `[B, T, D]`, or `[query, context]`; output `[B, T, outputDim]`.
 * @example
 * const model = tf.sequential({layers: [
 *   new EntropicMultiHeadAttention({inputShape: [16, 32], numHeads: 4, keyDim: 8, causal: true, normaliser:
 * 'learned'})]});
 */
export class EntropicMultiHeadAttention extends tf.layers.Layer {
  static className = 'EntropicMultiHeadAttention';
  private readonly cfg: Required<Omit<EntropicMultiHeadAttentionArgs, keyof LayerArgs>>;
  /** The heads' normalisers, resolved at construction. */
  readonly plan: AttentionPlan;
  private w: Record<string, tf.LayerVariable> = {};

  constructor(args: EntropicMultiHeadAttentionArgs) {
    super(args);
    const { numHeads, keyDim } = args;
    if (!Number.isInteger(numHeads) || numHeads < 1)
      throw new RangeError(`numHeads must be a positive integer, got ${numHeads}`);
    if (!Number.isInteger(keyDim) || keyDim < 1)
      throw new RangeError(`keyDim must be a positive integer, got ${keyDim}`);
    const normaliser = args.normaliser ?? 'softmax';
    const alphaInit = args.alphaInit ?? 1.5;
    if (!(alphaInit > 1 && alphaInit < 2)) throw new RangeError(`alphaInit must be in (1, 2), got ${alphaInit}`);
    this.plan = planAttention(normaliser, { heads: numHeads, alphaInit });
    kernelInitializer(args.kernelInitializer ?? 'glorotUniform');
    this.cfg = {
      numHeads,
      keyDim,
      valueDim: args.valueDim ?? keyDim,
      outputDim: args.outputDim ?? -1,
      causal: args.causal ?? false,
      normaliser,
      alphaInit,
      useBias: args.useBias ?? true,
      kernelInitializer: args.kernelInitializer ?? 'glorotUniform',
    };
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const [qShape, cShape] = Array.isArray(inputShape[0])
      ? (inputShape as tf.Shape[])
      : [inputShape as tf.Shape, inputShape as tf.Shape];
    const D = qShape[qShape.length - 1] as number;
    const Dc = cShape[cShape.length - 1] as number;
    const { numHeads: H, keyDim: d, valueDim: dv, useBias } = this.cfg;
    const out = this.cfg.outputDim > 0 ? this.cfg.outputDim : D;
    const init = () => kernelInitializer(this.cfg.kernelInitializer);
    const kernel = (name: string, shape: number[]) => {
      this.w[name] = this.addWeight(name, shape, 'float32', init());
    };
    kernel('query_kernel', [D, H * d]);
    kernel('key_kernel', [Dc, H * d]);
    kernel('value_kernel', [Dc, H * dv]);
    kernel('output_kernel', [H * dv, out]);
    if (useBias) {
      for (const [name, n] of [
        ['query_bias', H * d],
        ['key_bias', H * d],
        ['value_bias', H * dv],
        ['output_bias', out],
      ] as const) {
        this.w[name] = this.addWeight(name, [n], 'float32', tf.initializers.zeros());
      }
    }
    for (const p of this.plan.params) {
      const { init } = p;
      const initializer = 'constant' in init ? tf.initializers.constant({ value: init.constant })
        : 'uniform' in init ? tf.initializers.randomUniform({ minval: init.uniform[0], maxval: init.uniform[1] })
          : tf.initializers.randomNormal({ mean: init.normal[0], stddev: init.normal[1] });
      this.w[PARAM_WEIGHTS[p.name]] = this.addWeight(PARAM_WEIGHTS[p.name], [H], 'float32', initializer);
    }
    if (this.plan.aesGroups.length) {
      // Running ζ per head; NaN until the first training call. Saved with the weights, not trained.
      this.w.aes_zeta = this.addWeight(
        'aes_zeta',
        [H],
        'float32',
        tf.initializers.constant({ value: NaN }),
        undefined,
        false,
      );
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const q = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [...q.slice(0, -1), this.cfg.outputDim > 0 ? this.cfg.outputDim : q[q.length - 1]];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    return this.callWithStats(inputs, { training: kwargs?.training ?? false }).output;
  }

  /**
   * The layer's forward pass that also returns the attention statistics. With `training`, AES heads
   * follow the varentropy gate and update their running ζ (the `aes_zeta` weight); without, they use
   * that estimate once it exists.
   */
  callWithStats(
    inputs: tf.Tensor | tf.Tensor[],
    opts: { training?: boolean; returnStats?: boolean } = {},
  ): { output: tf.Tensor; stats?: AttentionStats; modes: string[] } {
    const [x, context] = Array.isArray(inputs) ? inputs : [inputs, undefined];
    const w: MhaWeights = {
      wq: this.w.query_kernel.read(),
      wk: this.w.key_kernel.read(),
      wv: this.w.value_kernel.read(),
      wo: this.w.output_kernel.read(),
      bq: this.w.query_bias?.read(),
      bk: this.w.key_bias?.read(),
      bv: this.w.value_bias?.read(),
      bo: this.w.output_bias?.read(),
      params: Object.fromEntries(this.plan.params.map((p) => [p.name, this.w[PARAM_WEIGHTS[p.name]].read()])),
    };
    const { numHeads, keyDim, valueDim, causal } = this.cfg;
    const res = multiHeadAttention(
      x,
      w,
      { numHeads, keyDim, valueDim, causal, plan: this.plan },
      {
        context,
        state: this.w.aes_zeta?.read(),
        aesMode: opts.training ? 'auto' : 'frozen',
        returnStats: opts.returnStats,
      },
    );
    tf.dispose([res.present.k, res.present.v]);
    if (res.state) {
      if (opts.training) this.w.aes_zeta.write(res.state);
      res.state.dispose();
    }
    return { output: res.output, stats: res.stats, modes: res.modes };
  }

  /**
   * Current α per head (1 softmax … 2 sparsemax; learned and AES heads read from their weights).
   * Async: the weights may live on a device (webgpu cannot read them synchronously).
   */
  async alphas(): Promise<number[]> {
    const [alphaRaw, state] = await Promise.all([this.w.alpha_raw?.read().data(), this.w.aes_zeta?.read().data()]);
    return this.plan.heads.map((head, h) => alphaOf(head, h, { alphaRaw, state }));
  }

  /**
   * tfjs-layers rewrites every string of a config in snake case when it saves (and back to camel
   * case when it loads), which would turn an AES formula such as `zmax * (Smax - S)` into
   * `zmax * (_smax - s)`. Strings under a key named `name` are left alone, so this layer's own
   * options also travel as one JSON string in `{name}`, which `fromConfig` prefers: they come back
   * exactly. (The plain copies stay for reading.)
   */
  override getConfig(): tf.serialization.ConfigDict {
    const own = this.cfg as unknown as tf.serialization.ConfigDict;
    return { ...super.getConfig(), ...own, [OPTIONS_KEY]: { name: JSON.stringify(this.cfg) } };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>, config: tf.serialization.ConfigDict): T {
    const { [OPTIONS_KEY]: packed, ...rest } = config;
    const options = packed ? JSON.parse((packed as { name: string }).name) : {};
    return new cls({ ...rest, ...options });
  }
}

/** The layer's weight of each learned per-head parameter (`alpha_raw`, as before the others came). */
const PARAM_WEIGHTS: Record<ParamSpec['name'], string> = {
  alpha: 'alpha_raw', aesShift: 'aes_shift', ssmaxS: 'ssmax_s', asentBeta: 'asent_beta', asentGamma: 'asent_gamma',
};

/** The config key that carries the layer's own options as JSON (see getConfig). */
const OPTIONS_KEY = 'aesOptions';

tf.serialization.registerClass(EntropicMultiHeadAttention);
