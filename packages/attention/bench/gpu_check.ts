/**
 * One prepared GPU run: every op and attention() on the GPU backend against the cpu backend on the
 * same inputs (values and gradients), then timings of attention on the GPU backend.
 * Bundle and run (see ../shared/gpu/README.md):
 *   ../shared/gpu/bundle.sh packages/attention/bench/gpu_check.ts && bash .gpu/run.sh [--backend webgpu] [--json out.json]
 * Without a GPU adapter it says so and exits 2 (try `--backend wasm` to dry-run the checks here).
 */
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import {
  attention, entmax15, entmaxBisect, entmaxBisectLoss, logitStats, selectBackend, softmax, sparsemax, sparsemaxLoss,
  type BackendName, type NormaliserSpec,
} from '../src/index';
import { parseFlags, summary, timeInterleaved } from './util';

const CONFIG = { backend: 'webgpu', ref: 'cpu', lengths: '1024,4096', heads: 8, dim: 64, repeats: 5, json: '' };

type Case = { name: string; run: (inputs: tf.Tensor[]) => tf.Tensor[] };
const grad = (f: (x: tf.Tensor) => tf.Tensor) => (x: tf.Tensor, dy: tf.Tensor) => tf.grad(f)(x, dy);
// AES reads entropies synchronously, which webgpu cannot do in Node: not part of the GPU check yet.
const ATT: NormaliserSpec[] = ['softmax', 'sparsemax', 'entmax15', 'alpha=1.3', 'learned', 'alpha=2.5'];

/** Each case maps the same host inputs to outputs, run once per backend. */
const CASES: Case[] = [
  ...([['softmax', softmax], ['sparsemax', sparsemax], ['entmax15', entmax15], ['entmaxBisect(1.5)', (x: tf.Tensor) => entmaxBisect(x, 1.5)]] as const)
    .map(([name, f]): Case => ({ name, run: ([x, dy]) => [f(x), grad(f)(x, dy)] })),
  { name: 'entmaxBisect(per-row α) + dα', run: ([x, dy]) => {
    const alpha = tf.linspace(1.05, 2.5, x.shape[0]).reshape([x.shape[0], 1]);
    const [gx, ga] = tf.grads((z: tf.Tensor, a: tf.Tensor) => tf.sum(tf.mul(entmaxBisect(z, a), dy)))([x, alpha]);
    return [entmaxBisect(x, alpha), gx, ga];
  } },
  { name: 'losses + logitStats', run: ([x]) => {
    const y = tf.tensor1d(Array.from({ length: x.shape[0] as number }, (_, i) => i % (x.shape[1] as number)), 'int32');
    const st = logitStats(x);
    return [sparsemaxLoss(x, y), entmaxBisectLoss(x, y, 1.5), st.entropy, st.varentropy, tf.grad((z: tf.Tensor) => tf.sum(sparsemaxLoss(z, y)))(x)];
  } },
  { name: 'attention (6 normalisers) + grads', run: ([q, k, v, dy]) => {
    const alphaRaw = tf.linspace(-1, 1, 6);
    const f = (qq: tf.Tensor) => attention(qq, k, v, { causal: true, normaliser: ATT, alphaRaw }).output;
    return [f(q), tf.grad(f)(q, dy)];
  } },
];

function inputs(seed: number): number[][] {
  const R = 64, n = 300, shape = [2, 6, 32, 16];
  const g = (s: number, sh: number[], scale = 1) => Array.from(tf.randomNormal(sh, 0, scale, 'float32', seed + s).dataSync());
  return [g(1, [R, n], 3), g(2, [R, n]), g(3, shape), g(4, shape), g(5, shape), g(6, shape)];
}

async function runAll(backend: string, host: number[][]): Promise<number[][][]> {
  await selectBackend(backend as BackendName);
  const results: number[][][] = [];
  for (const [i, c] of CASES.entries()) {
    const outs = tf.tidy(() => {
      const ins = i < CASES.length - 1 ? [tf.tensor2d(host[0], [64, 300]), tf.tensor2d(host[1], [64, 300])]
        : host.slice(2).map((h) => tf.tensor4d(h, [2, 6, 32, 16]));
      return c.run(ins);
    });
    results.push(await Promise.all(outs.map(async (t) => Array.from(await t.data()))));   // no dataSync on webgpu
    tf.dispose(outs);
  }
  return results;
}

async function main() {
  const cfg = parseFlags(process.argv.slice(2), CONFIG);
  const host = inputs(0);
  const ref = await runAll(cfg.ref, host);
  let gpu;
  try {
    gpu = await selectBackend(cfg.backend as BackendName);
  } catch (e) {
    console.log(e instanceof Error ? e.message : e);
    process.exit(2);
  }
  console.log(`GPU backend: ${gpu.name} (${gpu.detail}); reference: ${cfg.ref}`);
  const got = await runAll(cfg.backend, host);
  const checks = CASES.map((c, i) => {
    const err = Math.max(...got[i].map((out, j) => Math.max(...out.map((x, t) => Math.abs(x - ref[i][j][t]) / (1 + Math.abs(ref[i][j][t])) || (Number.isNaN(x) !== Number.isNaN(ref[i][j][t]) ? Infinity : 0)))));
    console.log(`${err < 1e-3 ? 'ok  ' : 'FAIL'} ${c.name.padEnd(36)} max rel err ${err.toExponential(2)}`);
    return { name: c.name, maxRelErr: err };
  });
  // timings of attention on the GPU backend
  const timings: Array<Record<string, number | string>> = [];
  const H = cfg.heads, d = cfg.dim;
  for (const n of cfg.lengths.split(',').map(Number)) {
    const [q, k, v, dy] = [1, 2, 3, 4].map((s) => tf.randomNormal([1, H, n, d], 0, 1, 'float32', s));
    const alphaRaw = tf.zeros([H]);
    const specs: Record<string, NormaliserSpec> = { softmax: 'softmax', sparsemax: 'sparsemax', entmax15: 'entmax15', 'bisect α=1.5 (learned)': 'learned' };
    const names = Object.keys(specs);
    const f = (name: string) => (qq: tf.Tensor) => attention(qq, k, v, { causal: true, normaliser: specs[name], alphaRaw }).output;
    const fwd = (await timeInterleaved(names.map((nm) => () => f(nm)(q)), cfg.repeats, 1)).map(summary);
    const both = (await timeInterleaved(names.map((nm) => { const g = tf.grad(f(nm)); return () => g(q, dy); }), cfg.repeats, 1)).map(summary);
    names.forEach((nm, i) => {
      timings.push({ n, normaliser: nm, fwdMs: fwd[i].median, fwdBwdMs: both[i].median, fwdRatio: fwd[i].median / fwd[0].median, fwdBwdRatio: both[i].median / both[0].median });
      console.log(`n=${n} H=${H} d=${d} ${nm.padEnd(24)} fwd ${fwd[i].median.toFixed(1)} ms (${(fwd[i].median / fwd[0].median).toFixed(2)}×)  fwd+bwd ${both[i].median.toFixed(1)} ms (${(both[i].median / both[0].median).toFixed(2)}×)`);
    });
    tf.dispose([q, k, v, dy, alphaRaw]);
  }
  if (cfg.json) writeFileSync(cfg.json, JSON.stringify({ backend: gpu, ref: cfg.ref, checks, timings }, null, 2));
  process.exit(checks.every((c) => c.maxRelErr < 1e-3) ? 0 : 1);
}

main().catch((e) => { console.error(e instanceof Error ? e.stack : e); process.exit(1); });
