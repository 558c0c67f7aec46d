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

/** Picks the next token from the logits of one position, `[V]`. */
export type Sampler = (logits: tf.Tensor1D, ctx: SampleContext) => SampleResult;
