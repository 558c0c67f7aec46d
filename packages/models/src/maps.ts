/**
 * The attention maps of a model on one sequence, for looking at: per layer and head, the weights
 * p_ij of the model's own normalisers and, on the same scores, those of other normalisers.
 *
 * The weights come from the library's own `attention()` with the values set to the identity
 * (out = P·I = P), on the queries and keys that the model's forward pass attended with, so they are
 * exactly what the model used: the heads' learned parameters, AES running state, RoPE or ALiBi
 * included. The comparison maps use the raw scores q·k/√d (no head-specific rescaling).
 */
import * as tf from '@tensorflow/tfjs';
import { attention, type NormaliserSpec } from '@aes/attention';
import type { GPT } from './model.js';
import { readTensors } from './read.js';

/** One head's map: `probs[i][j]` for query i and key j ≤ i (0 above the diagonal). */
export interface HeadMap {
  probs: number[][];
  /** α of the head on this sequence (1 softmax, 2 sparsemax; per-row AES: the mean over rows). */
  alpha: number;
  /** Share of visible (causal) weights that are not exactly zero. */
  support: number;
}

export interface LayerMaps {
  /** The model's own heads. */
  model: HeadMap[];
  /** The same scores through each comparison normaliser, by its name. */
  compare: Record<string, HeadMap[]>;
}

export interface AttentionMapsArgs {
  /** Normalisers applied to every head's raw scores (default softmax, sparsemax, aes). */
  compare?: NormaliserSpec[];
}

const DEFAULT_COMPARE: NormaliserSpec[] = ['softmax', 'sparsemax', 'aes'];

/**
 * Attention maps of `model` on `tokens` (one sequence, at most blockSize long for learned positions).
 * Asynchronous reads only, so it runs on every backend (webgpu and webgl included).
 * @example
 * const { layers } = await attentionMaps(gpt, tok.encode('hello'));
 * layers[0].model[1].probs[4];          // layer 0, head 1: query 4's weights over keys 0 … 4
 */
export async function attentionMaps(
  model: GPT, tokens: readonly number[], args: AttentionMapsArgs = {},
): Promise<{ layers: LayerMaps[] }> {
  const V = model.config.vocabSize;
  if (!tokens.length) throw new RangeError('attentionMaps: give at least one token');
  const bad = tokens.find((t) => !Number.isInteger(t) || t < 0 || t >= V);
  if (bad !== undefined) throw new RangeError(`attentionMaps: token ${bad} outside [0, ${V})`);
  const compare = args.compare ?? DEFAULT_COMPARE;
  const names = compare.map((c) => (typeof c === 'string' ? c : JSON.stringify(c)));
  const T = tokens.length;
  const x = tf.tensor2d([tokens as number[]], [1, T], 'int32');
  const r = model.forward(x, { keepQueries: true, keepCache: true });
  x.dispose();
  const alibi = model.config.pos === 'alibi';
  // Per layer: the model's P [H, T, T], its α [H], then each comparison's P and α.
  const out = tf.tidy(() => model.plans.flatMap((plan, l) => {
    const [q, k] = [r.queries![l], r.present[l].k];
    const H = q.shape[1]!;
    const eye = tf.tile(tf.reshape(tf.eye(T), [1, 1, T, T]), [1, H, 1, 1]);
    const p = (n: string) => model.params.get(`h${l}.attn.${n}`);
    const params = Object.fromEntries(plan.params.map((s) => [s.name, p(s.name)!]));
    const own = attention(q, k, eye, {
      causal: true, alibi, plan, params, state: p('aes_zeta'), aesMode: 'frozen', returnStats: true,
    });
    const others = compare.map((n) => attention(q, k, eye, { causal: true, alibi, normaliser: n, returnStats: true }));
    return [own, ...others].flatMap((a) => [tf.squeeze(a.output, [0]), a.stats!.alpha]);
  }));
  const values = await readTensors(out);
  tf.dispose([out, r.logits, r.queries ?? [], r.present.flatMap((c) => [c.k, c.v])]);
  const heads = (flat: Float32Array | number[], alphas: ArrayLike<number>): HeadMap[] =>
    Array.from(alphas, (alpha, h) => {
      const probs = Array.from({ length: T }, (_, i) => Array.from(flat.slice((h * T + i) * T, (h * T + i + 1) * T)));
      const nonzero = probs.reduce((n, row, i) => n + row.slice(0, i + 1).filter((v) => v !== 0).length, 0);
      return { probs, alpha, support: nonzero / ((T * (T + 1)) / 2) };
    });
  const per = 2 * (1 + compare.length);
  return {
    layers: model.plans.map((_, l) => {
      const v = values.slice(l * per, (l + 1) * per);
      return {
        model: heads(v[0], v[1]),
        compare: Object.fromEntries(names.map((n, c) => [n, heads(v[2 + 2 * c], v[3 + 2 * c])])),
      };
    }),
  };
}
