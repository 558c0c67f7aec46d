/**
 * Checkpoints on the Node file system: a tfjs IOHandler (`fileSystemIO`) that writes `model.json` +
 * `weights.bin` (tfjs's own artifact format, so `tf.loadLayersModel(fileSystemIO(dir))` works for
 * Layers models too), and save/load of a GPT with its config, tokenizer, AES state, learned α and
 * any extra state (optimizer slots, RNG, step) a trainer needs to resume exactly.
 *
 * Files are written to temporaries and renamed, so an interrupted save never leaves a half-written
 * checkpoint in place of a good one.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { GPT, type GPTConfig } from './model';
import { tokenizerFromJSON, type Tokenizer } from './tokenizer';

const FORMAT = 'aes-gpt';

/** A tfjs IOHandler reading and writing `dir/model.json` and `dir/weights.bin`. */
export function fileSystemIO(dir: string): Required<Pick<tf.io.IOHandler, 'save' | 'load'>> {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      mkdirSync(dir, { recursive: true });
      const data = joinBuffers(artifacts.weightData);
      const { weightData: _unused, weightSpecs, ...rest } = artifacts;
      void _unused;
      const json = { ...rest, weightsManifest: [{ paths: ['weights.bin'], weights: weightSpecs ?? [] }] };
      atomicWrite(join(dir, 'weights.bin'), new Uint8Array(data));
      atomicWrite(join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: data.byteLength } };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      const jsonPath = join(dir, 'model.json');
      if (!existsSync(jsonPath)) throw new Error(`no checkpoint at ${dir} (missing ${jsonPath})`);
      let json: { weightsManifest?: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }> } & tf.io.ModelArtifacts;
      try {
        json = JSON.parse(readFileSync(jsonPath, 'utf8'));
      } catch (e) {
        throw new Error(`checkpoint ${jsonPath} is not valid JSON: ${(e as Error).message}`);
      }
      const manifest = json.weightsManifest?.[0];
      if (!manifest || !Array.isArray(manifest.weights)) throw new Error(`checkpoint ${jsonPath} has no weightsManifest`);
      const binPath = join(dir, manifest.paths[0] ?? 'weights.bin');
      if (!existsSync(binPath)) throw new Error(`checkpoint ${dir} is missing its weights file ${binPath}`);
      const buf = readFileSync(binPath);
      const expected = manifest.weights.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1) * 4, 0);
      if (buf.byteLength !== expected) throw new Error(`checkpoint ${binPath} holds ${buf.byteLength} bytes, its manifest expects ${expected}`);
      const { weightsManifest: _m, ...rest } = json;
      void _m;
      return { ...rest, weightSpecs: manifest.weights, weightData: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) };
    },
  };
}

function joinBuffers(d: tf.io.ModelArtifacts['weightData']): ArrayBuffer {
  if (!d) return new ArrayBuffer(0);
  if (!Array.isArray(d)) return d;
  const out = new Uint8Array(d.reduce((n, b) => n + b.byteLength, 0));
  let o = 0;
  for (const b of d) { out.set(new Uint8Array(b), o); o += b.byteLength; }
  return out.buffer;
}

function atomicWrite(path: string, data: string | Uint8Array): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
}

/** What a checkpoint holds besides the model. */
export interface CheckpointExtra {
  /** JSON-safe state (step, RNG state, trainer config, …). */
  meta?: Record<string, unknown>;
  /** Named tensors (optimizer slots, …), saved beside the weights under `extra/`. */
  tensors?: Record<string, tf.Tensor>;
}

/** Writes model + tokenizer (+ extra) to `dir`. */
export async function saveCheckpoint(dir: string, model: GPT, tokenizer: Tokenizer, extra: CheckpointExtra = {}): Promise<void> {
  const named: Record<string, tf.Tensor> = Object.fromEntries(model.params);
  for (const [k, t] of Object.entries(extra.tensors ?? {})) named[`extra/${k}`] = t;
  const { data, specs } = await tf.io.encodeWeights(named);
  await fileSystemIO(dir).save({
    format: FORMAT,
    generatedBy: `@aes/models, tfjs ${tf.version.tfjs}`,
    modelTopology: { config: model.config },
    userDefinedMetadata: { tokenizer: tokenizer.toJSON(), aesState: model.aesState.map((s) => s.zeta.map(nanToNull)), meta: extra.meta ?? {} } as never,
    weightSpecs: specs,
    weightData: data,
  });
}

/** Loads a checkpoint written by `saveCheckpoint`: identical logits to the saved model. */
export async function loadCheckpoint(dir: string): Promise<{ model: GPT; tokenizer: Tokenizer; meta: Record<string, unknown>; tensors: Record<string, tf.Tensor> }> {
  const art = await fileSystemIO(dir).load();
  if (art.format !== FORMAT) throw new Error(`${dir} is not an @aes/models checkpoint (format ${String(art.format)})`);
  const config = (art.modelTopology as { config?: GPTConfig })?.config;
  if (!config) throw new Error(`checkpoint ${dir} has no model config`);
  const meta = (art.userDefinedMetadata ?? {}) as { tokenizer?: unknown; aesState?: Array<Array<number | null>>; meta?: Record<string, unknown> };
  const tokenizer = tokenizerFromJSON(meta.tokenizer);
  const model = new GPT(config, { seed: 0 });
  const weights = tf.io.decodeWeights(art.weightData!, art.weightSpecs!);
  const tensors: Record<string, tf.Tensor> = {};
  for (const [name, t] of Object.entries(weights)) {
    if (name.startsWith('extra/')) { tensors[name.slice(6)] = t; continue; }
    const v = model.params.get(name);
    if (!v) throw new Error(`checkpoint ${dir} has weight '${name}' that the model does not`);
    if (!tf.util.arraysEqual(v.shape, t.shape)) throw new Error(`checkpoint weight '${name}' has shape [${t.shape}], model expects [${v.shape}]`);
    v.assign(t);
    t.dispose();
  }
  const missing = [...model.params.keys()].filter((n) => !(n in weights));
  if (missing.length) throw new Error(`checkpoint ${dir} lacks weights ${missing.join(', ')}`);
  if (meta.aesState) model.aesState = meta.aesState.map((z) => ({ zeta: z.map((v) => (v === null ? NaN : v)) }));
  return { model, tokenizer, meta: meta.meta ?? {}, tensors };
}

/** JSON has no NaN: AES heads without an estimate are saved as null. */
function nanToNull(v: number): number | null {
  return Number.isNaN(v) ? null : v;
}
