/**
 * Where a training step's time goes: `tf.profile` around `train()` (what `aes train` runs) for a few
 * steps after a warm-up, per setting in its own process (one wasm backend, one thread count per
 * process). Prints and saves, per setting, the wall time, the time inside tfjs kernels, the share of
 * the products (BatchMatMul) and of our custom ops (tfjs's "unnamed scope": customGrad ops such as
 * the entmax row kernel, which include the kernels they call), and the top kernels.
 *
 *   pnpm bench:profile [--steps 6] [--json bench/profile.json]
 *
 * Settings: softmax and learned α, at the README's default size and on text at block size 256, on 1
 * thread and on one per core.
 */
import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defaultThreads, exitOnUncaught, selectBackend, silenceTfjs } from '@aes/node';
import { parseFlags } from '../src/flags.js';
import { TRAIN_DEFAULTS, train, type TrainConfig } from '../src/index.js';

const CORPUS = resolve(import.meta.dirname, '../../../experiments/data/corpus.txt');
const SIZES: Record<string, Partial<TrainConfig>> = {
  default: {},
  'text-256': { data: CORPUS, blockSize: 256, batch: 8 },
};

/** Child mode: one setting, its profile as JSON on stdout. */
async function child(threads: number, size: string, attention: string, steps: number): Promise<void> {
  await selectBackend('wasm', { threads });
  const dir = mkdtempSync(join(tmpdir(), 'aes-profile-'));
  const cfg = (out: string, n: number): TrainConfig => ({
    ...TRAIN_DEFAULTS, ...SIZES[size], attention, steps: n, out, overwrite: true,
    evalEvery: 1e9, ckptEvery: 1e9, logEvery: 1e9,
  });
  try {
    await train(cfg(join(dir, 'warm'), 3), () => {});
    const t0 = performance.now();
    const prof = await tf.profile(async () => {
      await train(cfg(join(dir, 'run'), steps), () => {});
      return [] as tf.Tensor[];
    });
    const wallMs = performance.now() - t0;
    const by = new Map<string, number>();
    for (const k of prof.kernels) by.set(k.name, (by.get(k.name) ?? 0) + Number(k.kernelTimeMs));
    const kernelMs = [...by.values()].reduce((a, b) => a + b, 0);
    const share = (re: RegExp) => [...by].filter(([n]) => re.test(n)).reduce((s, [, t]) => s + t, 0) / wallMs;
    console.log(JSON.stringify({
      size, attention, threads, steps, wallMs, kernelShare: kernelMs / wallMs, kernels: prof.kernels.length / steps,
      matMulShare: share(/MatMul/), customShare: share(/unnamed scope/),
      top: [...by].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([name, ms]) => ({ name, share: ms / wallMs })),
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(argv: string[]) {
  const f = parseFlags(argv, { steps: 6, json: '', child: '', threads: 0, size: '', attention: '' }, 'bench:profile');
  if (f.child) return child(f.threads, f.size, f.attention, f.steps);
  const rows: Array<Record<string, unknown>> = [];
  for (const size of Object.keys(SIZES)) {
    for (const attention of ['softmax', 'learned']) {
      for (const threads of [1, defaultThreads()]) {
        const out = execFileSync(process.execPath, [...process.execArgv, import.meta.filename, '--child', '1',
          '--threads', String(threads), '--size', size, '--attention', attention, '--steps', String(f.steps)],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
        const r = JSON.parse(out.trim().split('\n').pop()!);
        rows.push(r);
        console.log(`${size.padEnd(9)} ${attention.padEnd(8)} ${threads} thread(s): ` +
          `${(r.wallMs / f.steps).toFixed(0)} ms/step, kernels ${(100 * r.kernelShare).toFixed(0)}% ` +
          `(${r.kernels.toFixed(0)} per step), matMul ${(100 * r.matMulShare).toFixed(0)}%, ` +
          `custom ops ${(100 * r.customShare).toFixed(0)}%`);
      }
    }
  }
  if (f.json) {
    writeFileSync(f.json, `${JSON.stringify({ date: new Date().toISOString().slice(0, 10), tfjs: tf.version.tfjs,
      steps: f.steps, rows }, null, 2)}\n`);
  }
}

silenceTfjs();
exitOnUncaught();
main(process.argv.slice(2)).catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
