/**
 * Test helpers for the samplers: both backends, seeded random logits, a chi-square goodness-of-fit
 * test (with its p-value from the regularised incomplete gamma function), draw counting and a leak
 * check.
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '@aes/node';
import { beforeAll, describe, expect } from 'vitest';
import { Rng } from '../src/rng.js';
import type { Sampler, SampleContext } from '../src/sampler_types.js';

/** Runs a suite on cpu and wasm (selectBackend loads the wasm backend from @aes/attention's deps). */
export function describeBackends(
  name: string,
  body: (backend: string) => void,
  backends = ['cpu', 'wasm'] as const,
): void {
  for (const b of backends) {
    describe(`${name} [${b}]`, () => {
      beforeAll(async () => {
        await selectBackend(b);
      });
      body(b);
    });
  }
}

/** `n` logits, standard normal times `scale`, from a seeded generator. */
export function randomLogits(seed: number, n: number, scale = 1): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => scale * rng.normal());
}

/** float64 softmax of plain numbers (−Infinity → 0). */
export function softmaxRef(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** ln Γ(x), Lanczos (g = 7, n = 9), accurate to ~1e-15 for x > 0. */
function lnGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Q(a, x) = Γ(a, x)/Γ(a): series for x < a + 1, Lentz continued fraction otherwise. */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const lnPre = -x + a * Math.log(x) - lnGamma(a);
  if (x < a + 1) {
    let [sum, term, ap] = [1 / a, 1 / a, a];
    for (let n = 0; n < 1000 && Math.abs(term) > Math.abs(sum) * 1e-16; n++) { ap += 1; term *= x / ap; sum += term; }
    return 1 - sum * Math.exp(lnPre);
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b; if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c; if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return Math.exp(lnPre) * h;
}

/**
 * Pearson chi-square test of observed counts against probabilities. Bins with expected count < 5
 * are pooled; a count in a bin of probability exactly 0 gives pValue 0.
 */
export function chiSquare(counts: number[], probs: ArrayLike<number>): { stat: number; df: number; pValue: number } {
  const n = counts.reduce((a, b) => a + b, 0);
  let total = 0;
  for (let i = 0; i < probs.length; i++) total += probs[i];
  const bins: Array<[number, number]> = [];
  let pooled: [number, number] = [0, 0];
  for (let i = 0; i < counts.length; i++) {
    const e = (n * probs[i]) / total;
    if (e === 0) {
      if (counts[i] > 0) return { stat: Infinity, df: 0, pValue: 0 };
      continue;
    }
    if (e < 5) pooled = [pooled[0] + counts[i], pooled[1] + e];
    else bins.push([counts[i], e]);
  }
  if (pooled[1] > 0) bins.push(pooled);
  const stat = bins.reduce((s, [o, e]) => s + (o - e) ** 2 / e, 0);
  const df = bins.length - 1;
  return { stat, df, pValue: df > 0 ? gammaQ(df / 2, stat / 2) : 1 };
}

/** Token counts of `draws` calls of a sampler on one logits tensor, with a seeded Rng. */
export function drawCounts(
  sampler: Sampler,
  logits: tf.Tensor1D,
  draws: number,
  seed: number,
  ctx: Omit<SampleContext, 'rng'> = {},
): number[] {
  const counts = new Array<number>(logits.shape[0]).fill(0);
  const rng = new Rng(seed);
  for (let i = 0; i < draws; i++) counts[sampler(logits, { ...ctx, rng }).token]++;
  return counts;
}

/** Runs `fn` a few times and asserts the live tensor count does not change. */
export function expectNoLeak(fn: () => void, repeats = 3): void {
  fn();
  const before = tf.memory().numTensors;
  for (let i = 0; i < repeats; i++) fn();
  expect(tf.memory().numTensors).toBe(before);
}

/** A record survives a JSON round trip unchanged (plain numbers, strings, booleans, null, arrays). */
export function expectJsonSafe(record: Record<string, unknown>): void {
  expect(JSON.parse(JSON.stringify(record))).toEqual(record);
}
