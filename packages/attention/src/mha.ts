/**
 * Multi-head attention with its projections, as a plain function of explicit weights: the one
 * implementation behind the `EntropicMultiHeadAttention` layer and the model package's blocks.
 *
 *   Q = X W_q + b_q, K = Y W_k + b_k, V = Y W_v + b_v   (split into H heads)
 *   out = concat_h attention_h(Q, K, V) W_o + b_o
 *
 * Projections are 2-D products on `[B·T, D]` rows (fast on wasm, see matmul.ts). An optional KV
 * cache (keys and values of earlier positions) makes incremental decoding exact.
 */
import * as tf from '@tensorflow/tfjs';
import { attention, type AttentionResult } from './attention.js';
import { matMul2d } from './matmul.js';
import { rope } from './positions.js';
import type { AttentionPlan } from './plan.js';

/** Weights of one attention block. Kernels are `[in, out]`; heads are contiguous column blocks. */
export type MhaWeights = {
  wq: tf.Tensor; wk: tf.Tensor; wv: tf.Tensor; wo: tf.Tensor;          // [D, H·d] ×3 (wv: H·dv), [H·dv, O]
  bq?: tf.Tensor; bk?: tf.Tensor; bv?: tf.Tensor; bo?: tf.Tensor;      // optional biases
  /** Raw α per head `[H]` for 'learned' heads (α = 1 + sigmoid(a)); same as `params.alpha`. */
  alphaRaw?: tf.Tensor;
  /** The plan's learned per-head parameters `[H]`, by name (see AttentionPlan.params). */
  params?: Record<string, tf.Tensor>;
};

export interface MhaConfig {
  numHeads: number;
  /** Head size of queries and keys. */
  keyDim: number;
  /** Head size of values (default keyDim). */
  valueDim?: number;
  causal?: boolean;
  /** The heads' normalisers (`planAttention`). */
  plan: AttentionPlan;
  /**
   * Positions inside attention: 'rope' rotates queries and keys, 'alibi' biases the scores
   * (positions.ts); none by default (learned positions, or none at all, live outside).
   */
  positions?: 'rope' | 'alibi';
}

/** Keys and values of earlier positions, `[B, H, S_past, d]` and `[B, H, S_past, dv]`. */
export type KVCache = { k: tf.Tensor; v: tf.Tensor };

export interface MhaArgs {
  /** Source of keys and values `[B, S, D]` (cross-attention); default: the queries' input. */
  context?: tf.Tensor;
  keyMask?: tf.Tensor;
  /** AES state `[H]` (see AttentionArgs.state). */
  state?: tf.Tensor;
  /** See AttentionArgs.aesMode. */
  aesMode?: 'auto' | 'frozen';
  returnStats?: boolean;
  /** Earlier keys/values; the new ones are appended and returned as `present`. */
  cache?: KVCache;
  /** Also return this call's queries `[B, H, T, d]` (after RoPE, before the score scale), for analysis. */
  returnQueries?: boolean;
}

/**
 * Projects, attends and projects back. `x` is `[B, T, D]`; returns `output` `[B, T, O]`, the
 * attention statistics and AES state of `attention`, `present` (the KV cache after this call) and,
 * when asked, `queries`.
 */
export function multiHeadAttention(
  x: tf.Tensor,
  w: MhaWeights,
  cfg: MhaConfig,
  args: MhaArgs = {},
): AttentionResult & { present: KVCache; queries?: tf.Tensor } {
  if (x.rank !== 3) throw new RangeError(`multiHeadAttention: x must be [B, T, D], got [${x.shape}]`);
  const { numHeads: H, keyDim: d } = cfg;
  const dv = cfg.valueDim ?? d;
  const [B, T] = x.shape as [number, number, number];
  const y = args.context ?? x;
  const project = (inp: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | undefined, size: number) => {
    const [b, n, D] = inp.shape as [number, number, number];
    if (kernel.shape[0] !== D || kernel.shape[1] !== H * size) {
      throw new RangeError(`multiHeadAttention: kernel [${kernel.shape}] does not map ${D} features to ${H}×${size}`);
    }
    let out: tf.Tensor = matMul2d(tf.reshape(inp, [b * n, D]) as tf.Tensor2D, kernel as tf.Tensor2D);
    if (bias) out = tf.add(out, bias);
    return tf.transpose(tf.reshape(out, [b, n, H, size]), [0, 2, 1, 3]); // [B, H, n, size]
  };
  let modes: string[] = [];
  const res = tf.tidy(() => {
    const past = args.cache?.k.shape[2] ?? 0;
    let q = project(x, w.wq, w.bq, d);
    let k = project(y, w.wk, w.bk, d);
    let v = project(y, w.wv, w.bv, dv);
    if (cfg.positions === 'rope') [q, k] = [rope(q, past), rope(k, past)];   // cached keys are already rotated
    if (args.cache) [k, v] = [tf.concat([args.cache.k, k], 2), tf.concat([args.cache.v, v], 2)];
    const r = attention(q, k, v, {
      alibi: cfg.positions === 'alibi',
      causal: cfg.causal,
      plan: cfg.plan,
      alphaRaw: w.alphaRaw,
      params: w.params,
      keyMask: args.keyMask,
      state: args.state,
      aesMode: args.aesMode,
      returnStats: args.returnStats,
    });
    modes = r.modes;
    const merged = tf.reshape(tf.transpose(r.output, [0, 2, 1, 3]), [B * T, H * dv]);
    let out: tf.Tensor = matMul2d(merged as tf.Tensor2D, w.wo as tf.Tensor2D);
    if (w.bo) out = tf.add(out, w.bo);
    const { stats, state } = r;
    return {
      output: tf.reshape(out, [B, T, w.wo.shape[1] as number]),
      present: { k, v },
      ...(args.returnQueries ? { queries: q } : {}),
      ...(stats ? { stats } : {}),
      ...(state ? { state } : {}),
    };
  });
  return { ...(res as Omit<AttentionResult, 'modes'> & { present: KVCache; queries?: tf.Tensor }), modes };
}
