/**
 * Bench of attention(): forward and forward+backward medians for softmax, sparsemax, entmax15,
 * learned α, AES (per head and per row), SSMax, ASEntmax and adaptive-temperature heads at
 * T = S ∈ {256, 1024, 2048}, H = 4, d = 64, B = 1, causal, with the ratio
 * to softmax attention measured in the same process (runs interleaved) and the achieved GFLOP/s
 * counting the two products, 4·B·H·T·S·d.
 *
 *   pnpm bench:attention [--backend wasm] [--threads N]
 *     [--lengths 256,1024,2048] [--heads 4] [--dim 64] [--repeats 5] [--json
 * out.json]
 */
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import { attention, planAttention, stridedAttention, type NormaliserSpec } from '../src/index.js';
import { selectBackend } from '@aes/node';
import { parseFlags, summary, timeInterleaved } from './util.js';

const CONFIG = {
  backend: 'wasm',
  /** wasm threads (0: one per core). */
  threads: 0,
  lengths: '256,1024,2048',
  heads: 4,
  dim: 64,
  batch: 1,
  repeats: 5,
  warmup: 1,
  seed: 0,
  json: '',
  /** Comma-separated subset of the normalisers below (softmax, the baseline, is always run). */
  only: '',
};
const NORMALISERS: Record<string, NormaliserSpec> = {
  softmax: 'softmax', sparsemax: 'sparsemax', entmax15: 'entmax15', 'learned α': 'learned', AES: 'aes',
  'AES per row': 'aes-row', SSMax: 'ssmax', ASEntmax: 'asentmax', 'adaptive T': 'adaptive-temp',
};

async function main() {
  const cfg = parseFlags(process.argv.slice(2), CONFIG);
  const backend = await selectBackend(cfg.backend as Parameters<typeof selectBackend>[0],
    { threads: cfg.threads || undefined });
  const { heads: H, dim: d, batch: B } = cfg;
  console.log(
    `backend ${backend.name} (${backend.detail}); B=${B} H=${H} d=${d} causal; median of ${cfg.repeats} after ` +
    `${cfg.warmup} warm-up`,
  );
  const rows: Array<Record<string, string | number>> = [];
  const params = {
    // learned heads start at α = 1.5
    alpha: tf.zeros([H]),
    ssmaxS: tf.fill([H], 1 / Math.log(64)),
    asentBeta: tf.fill([H], 0.5),
    asentGamma: tf.zeros([H]),
  };
  for (const T of cfg.lengths.split(',').map(Number)) {
    const [q, k, v] = [1, 2, 3].map((s) => tf.randomNormal([B, H, T, d], 0, 1, 'float32', cfg.seed + s));
    const dy = tf.randomNormal([B, H, T, d], 0, 1, 'float32', cfg.seed + 4);
    const wanted = cfg.only ? new Set(['softmax', ...cfg.only.split(',')]) : null;
    const names = Object.keys(NORMALISERS).filter((n) => !wanted || wanted.has(n));
    // Plans are built once, as a Layer or model does (a spec resolved per call re-parses AES formulas).
    const plans = Object.fromEntries(names.map((n) => [n, planAttention(NORMALISERS[n], { heads: H })]));
    const run = (name: string) => (qq: tf.Tensor) =>
      attention(qq, k, v, { causal: true, plan: plans[name], params }).output;
    const fwd = (await timeInterleaved(names.map((n) => () => run(n)(q)), cfg.repeats, cfg.warmup)).map(summary);
    const both = (
      await timeInterleaved(
        names.map((n) => {
          const g = tf.grad(run(n));
          return () => g(q, dy);
        }),
        cfg.repeats,
        cfg.warmup,
      )
    ).map(summary);
    const flops = 4 * B * H * T * T * d;
    names.forEach((name, i) => {
      const stats = attention(q, k, v, {
        causal: true,
        plan: plans[name],
        params,
        returnStats: true,
      }).stats!;
      rows.push({
        T,
        normaliser: name,
        fwdMs: fwd[i].median,
        fwdBwdMs: both[i].median,
        fwdRatio: fwd[i].median / fwd[0].median,
        fwdBwdRatio: both[i].median / both[0].median,
        fwdGflops: flops / fwd[i].median / 1e6,
        alpha: Array.from(stats.alpha.dataSync())
          .map((a) => a.toFixed(2))
          .join('/'),
        supportFraction: tf.mean(stats.supportFraction).dataSync()[0],
      });
    });
    // The O(n√n) reference (forward only: the gradient of its gathers needs a kernel wasm lacks).
    const heads = (t: tf.Tensor) => tf.unstack(tf.reshape(t, [B * H, T, d])) as tf.Tensor2D[];
    const [qs, ks, vs] = [heads(q), heads(k), heads(v)];
    const strided = (
      await timeInterleaved(
        [() => tf.tidy(() => tf.stack(qs.map((qh, i) => stridedAttention(qh, ks[i], vs[i]))))],
        cfg.repeats,
        cfg.warmup,
      )
    ).map(summary)[0];
    rows.push({
      T,
      normaliser: 'strided √n',
      fwdMs: strided.median,
      fwdBwdMs: NaN,
      fwdRatio: strided.median / fwd[0].median,
      fwdBwdRatio: NaN,
      fwdGflops: (4 * B * H * T * 2 * Math.ceil(Math.sqrt(T)) * d) / strided.median / 1e6,
      alpha: '1 (softmax)',
      supportFraction: NaN,
    });
    tf.dispose([q, k, v, dy, ...qs, ...ks, ...vs]);
  }
  console.log('T      normaliser   fwd ms (×softmax, GFLOP/s)     fwd+bwd ms (×softmax)   α per head        support');
  for (const r of rows) {
    const f = (x: unknown, n = 1) => (Number.isNaN(x as number) ? '–' : (x as number).toFixed(n));
    const fwd = `${f(r.fwdMs).padStart(8)} (${f(r.fwdRatio, 2)}×, ${f(r.fwdGflops)})`;
    console.log(
      `${String(r.T).padEnd(6)} ${String(r.normaliser).padEnd(12)} ${fwd}`.padEnd(52) +
        `${f(r.fwdBwdMs).padStart(8)} (${f(r.fwdBwdRatio, 2)}×)      ` +
        `${String(r.alpha).padEnd(18)}${f(r.supportFraction, 3)}`,
    );
  }
  if (cfg.json) {
    writeFileSync(
      cfg.json,
      JSON.stringify(
        { bench: 'attention', backend, tfjs: tf.version.tfjs, node: process.version, config: cfg, rows },
        null,
        2,
      ),
    );
    console.log(`wrote ${cfg.json}`);
  }
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
