/**
 * Bench of block-skipping exact attention (blockSparseAttention) against dense softmax attention on
 * the same backend, at T = S = n, d = 64, B = 1, causal: forward and forward+backward medians (runs
 * interleaved, same process), the ratio to softmax attention, and each head's skip rate.
 *
 * The fixed strided pattern (Child et al. 2019, stride √n; forward only) is timed alongside as the
 * O(n√n) reference; its "skip rate" is the share of visible scores its pattern leaves out (≈ upper bound).
 *
 * Two kinds of heads, from `clusteredHeads` (seeded):
 * - 'clustered' (low entropy): segments of 256 positions about one of 8 recurring topics; rows put
 *   their mass on same-topic keys;
 * - 'random' (high entropy): q, k standard normal; the bounds are loose, little can be skipped and
 *   each head falls back to the dense path (denseAbove), or is forced sparse to show the cost.
 *
 * `--sweep 0.1,0.25,0.5,1` adds, at the longest length, clustered heads (topic strength 8) of rising
 * noise: as the noise grows the rows' entropy rises, the support spreads over more blocks and the
 * bounds loosen. Per noise level: mean normalised entropy and support fraction of the entmax15 rows,
 * kept blocks, skip rate and the forward ratio to softmax attention.
 *
 *   pnpm bench:sparse [--backend wasm] [--lengths 1024,4096] [--heads 2] [--repeats 5] [--sweep 0.1,0.25,0.5,1]
 * [--json out.json]
 */
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import {
  attention,
  blockSparseAttention,
  clusteredHeads,
  stridedAttention,
  type BlockSparseStats,
} from '../src/index.js';
import { selectBackend } from '@aes/node';
import { parseFlags, summary, timeInterleaved } from './util.js';

const CONFIG = {
  backend: 'wasm',
  lengths: '1024,4096',
  heads: 2,
  dim: 64,
  repeats: 5,
  warmup: 1,
  seed: 1,
  sweep: '',
  json: '',
};

type Case = {
  name: string;
  run: (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => tf.Tensor;
  stats?: (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => BlockSparseStats;
};
const sparse = (alpha: number, extra = {}): Pick<Case, 'run' | 'stats'> => ({
  run: (q, k, v) => blockSparseAttention(q, k, v, { alpha, causal: true, ...extra }).output,
  stats: (q, k, v) => {
    const r = blockSparseAttention(q, k, v, { alpha, causal: true, ...extra });
    r.output.dispose();
    return r.stats;
  },
});
const dense = { causal: true, blockSkip: false } as const;   // attention() would plan these heads itself
const CASES: Case[] = [
  { name: 'softmax attention', run: (q, k, v) => attention(q, k, v, { causal: true }).output },
  { name: 'sparsemax dense', run: (q, k, v) => attention(q, k, v, { ...dense, normaliser: 'sparsemax' }).output },
  { name: 'entmax15 dense', run: (q, k, v) => attention(q, k, v, { ...dense, normaliser: 'entmax15' }).output },
  { name: 'entmax15 attention() (auto)',
    run: (q, k, v) => attention(q, k, v, { causal: true, normaliser: 'entmax15' }).output },
  { name: 'sparsemax block-skip', ...sparse(2) },
  { name: 'entmax15 block-skip', ...sparse(1.5) },
  { name: 'α=1.3 block-skip', ...sparse(1.3) },
];

async function main() {
  const cfg = parseFlags(process.argv.slice(2), CONFIG);
  const backend = await selectBackend(cfg.backend as Parameters<typeof selectBackend>[0]);
  const { heads: H, dim: d } = cfg;
  console.log(
    `backend ${backend.name} (${backend.detail}); B=1 H=${H} d=${d} causal; median of ${cfg.repeats} after ` +
    `${cfg.warmup} warm-up`,
  );
  const rows: Array<Record<string, string | number>> = [];
  for (const T of cfg.lengths.split(',').map(Number)) {
    for (const heads of ['clustered', 'random'] as const) {
      const { q, k, v } = clusteredHeads(cfg.seed, { H, T, d, strength: heads === 'clustered' ? 8 : 0 });
      const cases =
        heads === 'clustered'
          ? CASES
          : [...CASES, { name: 'entmax15 block-skip forced', ...sparse(1.5, { denseAbove: 1 }) }];
      const dy = tf.randomNormal([1, H, T, d], 0, 1, 'float32', cfg.seed + 7);
      const fwd = (await timeInterleaved(cases.map((c) => () => c.run(q, k, v)), cfg.repeats, cfg.warmup)).map(summary);
      const both = (await timeInterleaved(cases.map((c) => {
        const g = tf.grads((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) => c.run(qq, kk, vv));
        return () => tf.stack(g([q, k, v], dy));
      }), cfg.repeats, cfg.warmup)).map(summary);
      // The fixed O(n√n) pattern (forward only: the gradient of its gathers needs a kernel wasm lacks).
      const heads2d = (t: tf.Tensor) => tf.unstack(tf.reshape(t, [H, T, d])) as tf.Tensor2D[];
      const [qs, ks, vs] = [heads2d(q), heads2d(k), heads2d(v)];
      const [strided] = (
        await timeInterleaved(
          [() => tf.tidy(() => tf.stack(qs.map((qh, i) => stridedAttention(qh, ks[i], vs[i]))))],
          cfg.repeats,
          cfg.warmup,
        )
      ).map(summary);
      tf.dispose([...qs, ...ks, ...vs]);
      cases.forEach((c, i) => {
        const st = c.stats?.(q, k, v);
        rows.push({
          T, heads, case: c.name, fwdMs: fwd[i].median, fwdBwdMs: both[i].median,
          fwdRatio: fwd[i].median / fwd[0].median, fwdBwdRatio: both[i].median / both[0].median,
          skipRate: st ? st.skipRate.reduce((a, b) => a + b, 0) / st.skipRate.length : NaN,
          mode: st ? st.mode.join('/') : 'dense',
        });
      });
      rows.push({
        T,
        heads,
        case: 'strided √n (softmax, fixed)',
        fwdMs: strided.median,
        fwdBwdMs: NaN,
        fwdRatio: strided.median / fwd[0].median,
        fwdBwdRatio: NaN,
        skipRate: 1 - Math.min(1, (2 * Math.ceil(Math.sqrt(T)) * T) / ((T * (T + 1)) / 2)),
        mode: 'fixed pattern',
      });
      tf.dispose([q, k, v, dy]);
    }
  }
  const sweep: Array<Record<string, number>> = [];
  const T = Math.max(...cfg.lengths.split(',').map(Number));
  for (const noise of cfg.sweep ? String(cfg.sweep).split(',').map(Number) : []) {
    const { q, k, v } = clusteredHeads(cfg.seed, { H, T, d, noise });
    const [entropy, support] = tf.tidy(() => {
      const p = attention(q, k, v, { causal: true, normaliser: 'entmax15', returnStats: true }).stats!;
      const logVisible = tf.maximum(tf.log(tf.range(1, T + 1)), 1e-9);   // causal: row i sees i + 1 keys
      return [tf.mean(tf.div(p.entropy, logVisible)).dataSync()[0], tf.mean(p.supportFraction).dataSync()[0]];
    });
    const runs = [
      () => attention(q, k, v, { causal: true }).output,
      () => blockSparseAttention(q, k, v, { alpha: 1.5, causal: true }).output,
    ];
    const [soft, skip] = (await timeInterleaved(runs, cfg.repeats, cfg.warmup)).map(summary);
    const st = blockSparseAttention(q, k, v, { alpha: 1.5, causal: true });
    st.output.dispose();
    sweep.push({
      noise,
      entropy,
      support,
      skipRate: st.stats.skipRate.reduce((a, b) => a + b, 0) / H,
      keptBlocks: st.stats.keptBlocks.reduce((a, b) => a + b, 0) / H,
      fwdRatio: skip.median / soft.median,
    });
    tf.dispose([q, k, v]);
  }
  console.log(
    'T      heads      case                          fwd ms (×softmax)     fwd+bwd ms (×softmax)   skip rate  mode',
  );
  const f = (x: unknown, n = 1) => (Number.isNaN(x as number) ? '–' : (x as number).toFixed(n));
  for (const r of rows) {
    const head = `${String(r.T).padEnd(6)} ${String(r.heads).padEnd(10)} ${String(r.case).padEnd(29)}`;
    console.log(
      `${head} ${f(r.fwdMs).padStart(8)} (${f(r.fwdRatio, 2)}×)`.padEnd(70) +
        `${f(r.fwdBwdMs).padStart(8)} (${f(r.fwdBwdRatio, 2)}×)     ${f(r.skipRate, 3).padStart(5)}     ${r.mode}`,
    );
  }
  if (sweep.length) {
    console.log(
      `\nentmax15 on clustered heads of rising noise at T = ${T}: entropy / ln(visible keys), support fraction, ` +
      `kept blocks, skip rate, forward time vs softmax attention`,
    );
    for (const r of sweep)
      console.log(
        `  noise ${String(r.noise).padEnd(5)} entropy ${r.entropy.toFixed(3)}  support ${r.support.toFixed(3)}  ` +
        `kept blocks ${r.keptBlocks.toFixed(3)}  skip ${r.skipRate.toFixed(3)}  fwd ${r.fwdRatio.toFixed(2)}×`,
      );
  }
  if (cfg.json) {
    writeFileSync(
      cfg.json,
      JSON.stringify(
        { bench: 'block_sparse', backend, tfjs: tf.version.tfjs, node: process.version, config: cfg, rows, sweep },
        null,
        2,
      ),
    );
    console.log(`wrote ${cfg.json}`);
  }
}

main().catch((e) => { console.error(e instanceof Error ? e.stack : e); process.exit(1); });
