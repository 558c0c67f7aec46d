/**
 * Bench of the normalisers: median time of forward and forward+backward for softmax, sparsemax,
 * entmax15, entmaxBisect (Halley, the default, and bisection, the reference) and, on wasm and cpu, the
 * row kernel hostEntmax, on rows of width 256 / 1024 / 4096
 * (batches of ≈1M elements),
 * with each one's ratio to our softmax measured in the same process (runs interleaved). tfjs's own `tf.softmax`
 * (no masked-row handling) is listed as the floor.
 *
 *   pnpm bench:maps [--backend wasm] [--widths 256,1024,4096] [--elements 1048576] [--repeats 7] [--json out.json]
 */
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import {
  entmax15, entmaxBisect, hostEntmax, hostEntmaxAvailable, softmax, sparsemax, supportSize,
} from '../src/index.js';
import { selectBackend } from '@aes/node';
import { parseFlags, summary, timeInterleaved } from './util.js';

const CONFIG = {
  backend: 'wasm',
  widths: '256,1024,4096',
  elements: 1 << 20,
  repeats: 7,
  warmup: 2,
  seed: 0,
  json: '',
};

const MAPS: Record<string, (x: tf.Tensor) => tf.Tensor> = {
  'tf.softmax': (x) => tf.softmax(x),
  softmax,
  sparsemax,
  entmax15,
  'entmaxBisect(2) halley': (x) => entmaxBisect(x, 2),
  'entmaxBisect(1.5) halley': (x) => entmaxBisect(x, 1.5),
  'entmaxBisect(1.5) bisect': (x) => entmaxBisect(x, 1.5, { solver: 'bisect' }),
  'entmaxBisect(1.3) halley': (x) => entmaxBisect(x, 1.3),
  'entmaxBisect(1.3) bisect': (x) => entmaxBisect(x, 1.3, { solver: 'bisect' }),
  // The row kernel entmax() takes for one α on wasm and cpu (host_entmax.ts; not on device backends).
  'hostEntmax(1.5)': (x) => hostEntmax(x, 1.5),
  'hostEntmax(1.3)': (x) => hostEntmax(x, 1.3),
};

async function main() {
  const cfg = parseFlags(process.argv.slice(2), CONFIG);
  const backend = await selectBackend(cfg.backend as Parameters<typeof selectBackend>[0]);
  console.log(
    `backend ${backend.name} (${backend.detail}); tfjs ${tf.version.tfjs}; median of ${cfg.repeats} after ` +
    `${cfg.warmup} warm-up`,
  );
  const rows: Array<Record<string, string | number>> = [];
  for (const width of cfg.widths.split(',').map(Number)) {
    const n = Math.max(1, Math.round(cfg.elements / width));
    const x = tf.randomNormal([n, width], 0, 1, 'float32', cfg.seed + 1);           // tfjs reads seed 0 as none
    const dy = tf.randomNormal([n, width], 0, 1, 'float32', cfg.seed + 2);
    const names = Object.keys(MAPS).filter((k) => hostEntmaxAvailable() || !k.startsWith('hostEntmax'));
    const fwd = (await timeInterleaved(names.map((k) => () => MAPS[k](x)), cfg.repeats, cfg.warmup)).map(summary);
    const grads = names.map((k) => tf.grad(MAPS[k]));                // VJP with upstream dy
    const both = (await timeInterleaved(grads.map((g) => () => g(x, dy)), cfg.repeats, cfg.warmup)).map(summary);
    const base = { fwd: fwd[names.indexOf('softmax')].median, both: both[names.indexOf('softmax')].median };
    names.forEach((name, i) => {
      const support = tf.tidy(() => tf.mean(tf.cast(supportSize(MAPS[name](x)), 'float32')).dataSync()[0]);
      rows.push({
        width,
        rows: n,
        map: name,
        fwdMs: fwd[i].median,
        fwdIqr: fwd[i].iqr,
        fwdBwdMs: both[i].median,
        fwdBwdIqr: both[i].iqr,
        meanSupport: support,
      });
    });
    for (const r of rows.filter((r) => r.width === width)) {
      r.fwdRatio = (r.fwdMs as number) / base.fwd;
      r.fwdBwdRatio = (r.fwdBwdMs as number) / base.both;
    }
    tf.dispose([x, dy]);
  }
  console.log('width  rows  map                  fwd ms (×softmax)   fwd+bwd ms (×softmax)  mean support');
  for (const r of rows) {
    const f = (v: unknown, d = 2) => (v as number).toFixed(d);
    console.log(
      `${String(r.width).padEnd(6)} ${String(r.rows).padEnd(5)} ${String(r.map).padEnd(20)} ` +
        `${f(r.fwdMs).padStart(7)} (${f(r.fwdRatio)}×)    ${f(r.fwdBwdMs).padStart(7)} (${f(r.fwdBwdRatio)}×)      ` +
        `${f(r.meanSupport, 1)}`,
    );
  }
  if (cfg.json) {
    writeFileSync(
      cfg.json,
      JSON.stringify(
        { bench: 'maps', backend, tfjs: tf.version.tfjs, node: process.version, config: cfg, rows },
        null,
        2,
      ),
    );
    console.log(`wrote ${cfg.json}`);
  }
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
