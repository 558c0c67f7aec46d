/**
 * Checkpoints: save/load of a GPT with its config, tokenizer, AES state, learned α and any extra
 * state (optimizer slots, RNG, step) a trainer needs to resume exactly, through any tfjs IOHandler
 * (`fileSystemIO(dir)` from @aes/node in Node, `tf.io.http(url)` or IndexedDB in a browser).
 */
import * as tf from '@tensorflow/tfjs';
import { GPT, type GPTConfig } from './model.js';
import { tokenizerFromJSON, type Tokenizer } from './tokenizer.js';

const FORMAT = 'aes-gpt';

/** What a checkpoint holds besides the model. */
export interface CheckpointExtra {
  /** JSON-safe state (step, RNG state, trainer config, …). */
  meta?: Record<string, unknown>;
  /** Named tensors (optimizer slots, …), saved beside the weights under `extra/`. */
  tensors?: Record<string, tf.Tensor>;
}

/** Writes model + tokenizer (+ extra) through `io` (e.g. `fileSystemIO(dir)` from @aes/node). */
export async function saveCheckpoint(
  io: tf.io.IOHandler,
  model: GPT,
  tokenizer: Tokenizer,
  extra: CheckpointExtra = {},
): Promise<void> {
  if (!io.save) throw new Error('saveCheckpoint: the IOHandler cannot save');
  const named: Record<string, tf.Tensor> = Object.fromEntries(model.params);
  for (const [k, t] of Object.entries(extra.tensors ?? {})) named[`extra/${k}`] = t;
  const { data, specs } = await tf.io.encodeWeights(named);
  await io.save({
    format: FORMAT,
    generatedBy: `@aes/models, tfjs ${tf.version.tfjs}`,
    modelTopology: { config: model.config },
    userDefinedMetadata: { tokenizer: tokenizer.toJSON(), meta: extra.meta ?? {} } as never,
    weightSpecs: specs,
    weightData: data,
  });
}

/**
 * Loads a checkpoint written by `saveCheckpoint` through `io`: identical logits to the saved model.
 * `dir` names the checkpoint in error messages.
 */
export async function loadCheckpoint(io: tf.io.IOHandler, dir = 'checkpoint'): Promise<{
  model: GPT; tokenizer: Tokenizer; meta: Record<string, unknown>; tensors: Record<string, tf.Tensor>;
}> {
  if (!io.load) throw new Error('loadCheckpoint: the IOHandler cannot load');
  const art = await io.load();
  if (art.format !== FORMAT) throw new Error(`${dir} is not an @aes/models checkpoint (format ${String(art.format)})`);
  const config = (art.modelTopology as { config?: GPTConfig })?.config;
  if (!config) throw new Error(`checkpoint ${dir} has no model config`);
  const meta = (art.userDefinedMetadata ?? {}) as {
    tokenizer?: unknown;
    aesState?: Array<Array<number | null>>;
    meta?: Record<string, unknown>;
  };
  const tokenizer = tokenizerFromJSON(meta.tokenizer);
  const model = new GPT(config, { seed: 0 });
  const weights = tf.io.decodeWeights(art.weightData!, art.weightSpecs!);
  const tensors: Record<string, tf.Tensor> = {};
  for (const [name, t] of Object.entries(weights)) {
    if (name.startsWith('extra/')) { tensors[name.slice(6)] = t; continue; }
    const v = model.params.get(name);
    if (!v) throw new Error(`checkpoint ${dir} has weight '${name}' that the model does not`);
    if (!tf.util.arraysEqual(v.shape, t.shape))
      throw new Error(`checkpoint weight '${name}' has shape [${t.shape}], model expects [${v.shape}]`);
    v.assign(t);
    t.dispose();
  }
  // Checkpoints before the AES state became a weight kept it in the metadata (null for NaN).
  meta.aesState?.forEach((z, l) => {
    const name = `h${l}.attn.aes_zeta`;
    if (model.params.has(name) && !(name in weights))
      tf.tidy(() => model.params.get(name)!.assign(tf.tensor1d(z.map((x) => x ?? NaN))));
  });
  const missing = [...model.params]
    .filter(([n]) => !(n in weights) && !(meta.aesState && n.endsWith('.aes_zeta')))
    .map(([n]) => n);
  if (missing.length) throw new Error(`checkpoint ${dir} lacks weights ${missing.join(', ')}`);
  return { model, tokenizer, meta: meta.meta ?? {}, tensors };
}
