/** The contract between `generate` and the samplers. */
import type * as tf from '@tensorflow/tfjs';
import type { Rng } from './rng.js';

/** Attention metrics of the current position, averaged over layers (Entropix inputs), in nats. */
export type AttentionSummary = {
  /** mean attention entropy of the last query row over heads and layers */
  entropy: number;
  /** variance of the attention entropy across heads (Entropix "attention varentropy") */
  varentropy: number;
  /** mean |p_h − mean_h p| */
  agreement: number;
  /** mean |attention score| */
  interactionStrength: number;
};

export interface SampleContext {
  rng: Rng;
  /** Present when the model was asked for attention statistics. */
  attention?: AttentionSummary;
}

/** The token drawn and a JSON-safe record of how (for `--trace` logs). */
export interface SampleResult {
  token: number;
  record: Record<string, unknown>;
}

/**
 * Picks the next token from the logits of one position, `[V]`: a float32 tensor, or its values as a
 * Float32Array. `generate` passes the values (read asynchronously, so it runs on webgpu, where
 * tensors have no synchronous read); a sampler of your own can call `logitsRow(logits, name)`.
 */
export type Sampler = (logits: tf.Tensor1D | Float32Array, ctx: SampleContext) => SampleResult;
