/**
 * A tfjs IOHandler on the Node file system: `dir/model.json` + `dir/weights.bin`, tfjs's own
 * artifact format, so `tf.loadLayersModel(fileSystemIO(dir))` reads Layers models too. Files are
 * written to temporaries and renamed, so an interrupted save never leaves half a file in place.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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
      return {
        modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: data.byteLength },
      };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      const jsonPath = join(dir, 'model.json');
      if (!existsSync(jsonPath)) throw new Error(`no checkpoint at ${dir} (missing ${jsonPath})`);
      let json: {
        weightsManifest?: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
      } & tf.io.ModelArtifacts;
      try {
        json = JSON.parse(readFileSync(jsonPath, 'utf8'));
      } catch (e) {
        throw new Error(`checkpoint ${jsonPath} is not valid JSON: ${(e as Error).message}`);
      }
      const manifest = json.weightsManifest?.[0];
      if (!manifest || !Array.isArray(manifest.weights))
        throw new Error(`checkpoint ${jsonPath} has no weightsManifest`);
      const binPath = join(dir, manifest.paths[0] ?? 'weights.bin');
      if (!existsSync(binPath)) throw new Error(`checkpoint ${dir} is missing its weights file ${binPath}`);
      const buf = readFileSync(binPath);
      const expected = manifest.weights.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1) * 4, 0);
      if (buf.byteLength !== expected)
        throw new Error(`checkpoint ${binPath} holds ${buf.byteLength} bytes, its manifest expects ${expected}`);
      const { weightsManifest: _m, ...rest } = json;
      void _m;
      return {
        ...rest,
        weightSpecs: manifest.weights,
        weightData: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength),
      };
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

