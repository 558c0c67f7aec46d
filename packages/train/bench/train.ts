/**
 * Training throughput, measured: `train()` (what `aes train` runs) for a fixed number of steps on the
 * same data and model for each normaliser, interleaved over rounds (one round trains each once), so
 * that drift in machine speed hits all alike. Tokens/s count the steps after `--warm` (the first
 * steps compile and fill caches); the ratio is to softmax in the same round, its median over rounds.
 *
 *   pnpm bench:train [--backend wasm] [--threads N] [--steps 40] [--rounds 3] [--only softmax,learned]
 *     [--json bench/train.json] [--corpus experiments/data/corpus.txt]
 *
 * On a GPU machine (scripts/gpu_bundle.sh with this file as a further entry; the bundle does not know
 * where the repository is, so give --corpus): `bash .gpu/run.sh train --backend webgpu --corpus …`.
 *
 * Two sizes: the README's default model on its default task (task:sort, sequences of 17), and the
 * pinned text corpus at block size 256, batch 8 (where attention's cost shows). Target (issue 18):
 * every normaliser ≥ 0.7× softmax tokens/s at both.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { exitOnUncaught, selectBackend, silenceTfjs, type BackendName } from '@aes/node';
import { parseFlags } from '../src/flags.js';
import { TRAIN_DEFAULTS, train, type TrainConfig } from '../src/index.js';

const NORMALISERS = ['softmax', 'sparsemax', 'entmax15', 'learned', 'aes'];
const CORPUS = resolve(import.meta.dirname, '../../../experiments/data/corpus.txt');
const sizes = (corpus: string): Record<string, Partial<TrainConfig>> => ({
  default: {},
  'text-256': { data: corpus, blockSize: 256, batch: 8 },
});

async function tokensPerSecond(cfg: TrainConfig, warm: number): Promise<number> {
  let t0 = 0, tokens = 0;
  await train(cfg, (e) => {
    if (e.type !== 'step') return;
    if (e.step === warm) t0 = performance.now();
    else if (e.step > warm) tokens += e.tokens;
  });
  return tokens / ((performance.now() - t0) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

async function main(argv: string[]) {
  const f = parseFlags(argv,
    { backend: 'wasm', threads: 0, steps: 40, warm: 5, rounds: 3, json: '', sizes: 'default,text-256', only: '',
      corpus: CORPUS },
    'bench:train');
  const backend = await selectBackend(f.backend as BackendName, { threads: f.threads || undefined });
  // softmax, the baseline, is always run
  const normalisers = f.only ? ['softmax', ...f.only.split(',').filter((n) => n !== 'softmax')] : NORMALISERS;
  for (const n of normalisers) if (!NORMALISERS.includes(n)) throw new Error(`unknown normaliser '${n}'`);
  const bySize = sizes(resolve(f.corpus));
  const root = mkdtempSync(join(tmpdir(), 'aes-bench-train-'));
  const rows: Array<Record<string, unknown>> = [];
  console.log(`backend ${backend.name} (${backend.detail}); ${f.steps} steps, tokens/s after step ${f.warm}`);
  try {
    for (const size of f.sizes.split(',')) {
      if (!(size in bySize)) throw new Error(`unknown size '${size}'; sizes: ${Object.keys(bySize).join(', ')}`);
      const tps: Record<string, number[]> = Object.fromEntries(normalisers.map((n) => [n, []]));
      for (let r = 0; r < f.rounds; r++) {
        for (const attention of normalisers) {
          const out = join(root, `${size}-${attention}-${r}`);
          const cfg: TrainConfig = { ...TRAIN_DEFAULTS, ...bySize[size], attention, out, steps: f.steps,
            evalEvery: 10 ** 9, ckptEvery: 10 ** 9, logEvery: 10 ** 9 };
          tps[attention].push(await tokensPerSecond(cfg, f.warm));
          rmSync(out, { recursive: true, force: true });
        }
      }
      console.log(`\n${size}: tokens/s (median of ${f.rounds} rounds), ratio to softmax in the same round`);
      for (const n of normalisers) {
        const ratio = median(tps[n].map((t, r) => t / tps.softmax[r]));
        rows.push({ size, normaliser: n, tokensPerSecond: median(tps[n]), ratio, all: tps[n] });
        const mark = n === 'softmax' ? '' : ratio >= 0.7 ? '  (≥ 0.7: met)' : '  (< 0.7: NOT met)';
        console.log(`  ${n.padEnd(10)} ${median(tps[n]).toFixed(0).padStart(7)}  ${ratio.toFixed(2)}×${mark}`);
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  if (f.json) writeFileSync(f.json, JSON.stringify({ backend, steps: f.steps, warm: f.warm, rows }, null, 2));
}

silenceTfjs();
exitOnUncaught();
main(process.argv.slice(2)).catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
