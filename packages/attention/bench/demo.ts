/**
 * The main job until the training CLI lands: (1) one row of scores through softmax, 1.25-entmax,
 * 1.5-entmax, sparsemax and 3-entmax, with support sizes and entropies; (2) a short experiment that
 * learns α by gradient descent: α = 1 + sigmoid(a) is fitted so that entmax_α(z) reproduces
 * distributions made by a hidden α*, through the α-gradient of entmaxBisect.
 *
 *   pnpm demo [--backend wasm] [--steps 300] [--alphaTrue 1.7] [--rows 256] [--width 16] [--lr 0.05] [--seed 0]
 */
import * as tf from '@tensorflow/tfjs';
import { entmax15, entmaxBisect, probStats, softmax, sparsemax, supportSize } from '../src/index.js';
import { selectBackend } from '@aes/node';
import { parseFlags } from './util.js';

const CONFIG = { backend: 'wasm', steps: 300, alphaTrue: 1.7, rows: 256, width: 16, lr: 0.05, seed: 0 };

function showMaps(): void {
  const scores = tf.tensor1d([3.2, 2.9, 1.0, 0.4, -0.5, -2.0]);
  console.log(`scores         ${fmt(scores)}`);
  const maps: Array<[string, tf.Tensor]> = [
    ['softmax', softmax(scores)],
    ['entmax α=1.25', entmaxBisect(scores, 1.25)],
    ['entmax15', entmax15(scores)],
    ['sparsemax', sparsemax(scores)],
    ['entmax α=3', entmaxBisect(scores, 3)],
  ];
  for (const [name, p] of maps) {
    const support = supportSize(p).dataSync()[0];
    const h = probStats(p).entropy.dataSync()[0];
    console.log(`${name.padEnd(14)} ${fmt(p)}   support ${support}/6   entropy ${h.toFixed(3)} nats`);
  }
}

function fmt(t: tf.Tensor): string {
  return Array.from(t.dataSync(), (v) => v.toFixed(3).padStart(6)).join(' ');
}

function learnAlpha(cfg: typeof CONFIG): void {
  const z = tf.randomNormal([cfg.rows, cfg.width], 0, 2, 'float32', cfg.seed + 1);   // tfjs reads seed 0 as none
  const target = entmaxBisect(z, cfg.alphaTrue);
  const a = tf.variable(tf.scalar(0));                               // α = 1.5 at the start
  const alphaOf = () => tf.add(1, tf.sigmoid(a));
  const opt = tf.train.adam(cfg.lr);
  console.log(
    `\nlearning α by SGD: ${cfg.rows} rows of width ${cfg.width}, targets from α* = ${cfg.alphaTrue}, α = 1 + ` +
    `sigmoid(a)`,
  );
  const t0 = performance.now();
  for (let step = 1; step <= cfg.steps; step++) {
    const loss = opt.minimize(() => tf.mean(tf.sum(tf.square(tf.sub(entmaxBisect(z, alphaOf()), target)), 1)), true, [
      a,
    ]);
    if (step === 1 || step % 50 === 0 || step === cfg.steps) {
      const alpha = tf.tidy(() => alphaOf().dataSync()[0]);
      console.log(
        `step ${String(step).padStart(4)}  loss ${loss!.dataSync()[0].toExponential(3)}  α ${alpha.toFixed(4)}`,
      );
    }
    loss!.dispose();
  }
  const alpha = tf.tidy(() => alphaOf().dataSync()[0]);
  const ms = performance.now() - t0;
  console.log(
    `learned α = ${alpha.toFixed(4)} (true ${cfg.alphaTrue}, error ` +
    `${Math.abs(alpha - cfg.alphaTrue).toExponential(1)}) in ${(ms / 1000).toFixed(1)} s`,
  );
  tf.dispose([z, target, a]);
  opt.dispose();
}

async function main() {
  const cfg = parseFlags(process.argv.slice(2), CONFIG);
  const b = await selectBackend(cfg.backend as Parameters<typeof selectBackend>[0]);
  console.log(
    `backend ${b.name} (${b.detail})` +
      `${b.skipped.length ? `; skipped ${b.skipped.map((s) => s.name).join(', ')}` : ''}\n`,
  );
  showMaps();
  learnAlpha(cfg);
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
