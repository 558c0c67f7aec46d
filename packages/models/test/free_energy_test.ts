/**
 * Free energy: the identity S = β(⟨E⟩ − F) in float64 over a β grid, dS/dT = V/T against central
 * differences, hand-worked values, agreement with logitStats, the target-entropy solve (accuracy,
 * iteration count, clamping), and the sampler's frequencies and record.
 */
import * as tf from '@tensorflow/tfjs';
import { logitStats } from '@aes/attention';
import { expect, it } from 'vitest';
import {
  freeEnergySampler,
  freeEnergyStats,
  SOLVE_TEMPERATURE_DEFAULTS,
  solveTemperature,
} from '../src/free_energy.js';
import { Rng } from '../src/rng.js';
import { softmax64 } from '../src/sample.js';
import {
  chiSquare,
  describeBackends,
  drawCounts,
  expectJsonSafe,
  expectNoLeak,
  randomLogits,
} from './sampling_helpers.js';

const BETAS = [0.02, 0.1, 0.3, 1, 2, 5, 20, 100];

/** Random rows of various lengths and scales, some with masked entries. */
function rows(seed: number, count: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, k) => {
    const z = randomLogits(seed * 1000 + k, 3 + rng.int(200), [0.5, 2, 8][k % 3]);
    if (k % 4 === 0) z[rng.int(z.length)] = -Infinity;
    return z;
  });
}

describeBackends('free energy', () => {
  it('hand-worked values', () => {
    const s = freeEnergyStats([0, 0], 0.5);
    expect(s.logZ).toBeCloseTo(Math.LN2, 15);
    expect(s.F).toBeCloseTo(-0.5 * Math.LN2, 15);
    expect(s).toMatchObject({ beta: 2, meanEnergy: 0, varentropy: 0 });
    expect(s.entropy).toBeCloseTo(Math.LN2, 15);
    const t = freeEnergyStats([Math.log(3), 0, -Infinity], 1);               // p = (3/4, 1/4, 0)
    expect(t.entropy).toBeCloseTo(-(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25)), 14);
    expect(t.Z).toBeCloseTo(4, 14);
    expect(t.meanEnergy).toBeCloseTo(-0.75 * Math.log(3), 14);
    expect(t.varentropy).toBeCloseTo(0.1875 * Math.log(3) ** 2, 14);         // p(1−p)(ln 3)²
    expect(freeEnergyStats([1000, 0], 1e-3).Z).toBe(Infinity);                // use logZ instead
    expect(freeEnergyStats([1000, 0], 1e-3).logZ).toBeCloseTo(1e6, 6);
  });

  it('S = β(⟨E⟩ − F) to float64 precision over a β grid', () => {
    let worst = 0;
    for (const z of rows(1, 30)) {
      for (const beta of BETAS) {
        const s = freeEnergyStats(z, 1 / beta);
        worst = Math.max(worst, Math.abs(s.entropy - s.beta * (s.meanEnergy - s.F)));
        expect(s.F).toBeCloseTo(-s.logZ / beta, 9);
      }
    }
    expect(worst).toBeLessThan(1e-9);
  });

  it('dS/dT = V/T (the varentropy is the heat capacity)', () => {
    for (const z of rows(2, 20)) {
      for (const t of [0.2, 0.7, 1, 3]) {
        const h = 1e-5 * t;
        const fd = (freeEnergyStats(z, t + h).entropy - freeEnergyStats(z, t - h).entropy) / (2 * h);
        const { varentropy } = freeEnergyStats(z, t);
        expect(Math.abs(fd - varentropy / t)).toBeLessThan(1e-6 * Math.max(1, varentropy / t));
      }
    }
  });

  it('agrees with logitStats on a float32 tensor', () => {
    const z = randomLogits(3, 50, 2);
    const x = tf.tensor1d(z);
    const st = logitStats(tf.div(x, 0.8), {});
    const s = freeEnergyStats(x, 0.8);
    expect(s.entropy).toBeCloseTo(st.entropy.dataSync()[0], 4);
    expect(s.varentropy).toBeCloseTo(st.varentropy.dataSync()[0], 3);
    tf.dispose([x, st.entropy, st.varentropy]);
  });

  it('solveTemperature reaches the target entropy in a few Newton steps', () => {
    const rng = new Rng(4);
    let most = 0;
    for (const z of rows(5, 60)) {
      const n = z.filter((v) => v > -Infinity).length;
      const fraction = 0.05 + 0.9 * rng.next();
      const r = solveTemperature(z, { fraction });
      expect(r).toMatchObject({ converged: true, clamped: null, target: expect.closeTo(fraction * Math.log(n), 12) });
      expect(Math.abs(freeEnergyStats(z, r.temperature).entropy - r.target)).toBeLessThan(1e-4);
      most = Math.max(most, r.iterations);
    }
    expect(most).toBeLessThanOrEqual(20);
    // A target in nats, from far-off first guesses.
    const z = randomLogits(6, 40, 3);
    for (const initial of [1e-4, 1, 1e4]) {
      const r = solveTemperature(z, { entropy: 2 }, { initial });
      expect(Math.abs(r.entropy - 2)).toBeLessThan(1e-4);
      expect(r.iterations).toBeLessThanOrEqual(20);
    }
  });

  it('clamps unreachable targets with a flag, not an error', () => {
    const z = [1, 1, 0, -2];                                   // S(T → 0) = ln 2, S(T → ∞) = ln 4
    expect(solveTemperature(z, { entropy: 0.5 })).toMatchObject({
      clamped: 'low',
      converged: false,
      temperature: SOLVE_TEMPERATURE_DEFAULTS.tMin,
    });
    expect(solveTemperature(z, { fraction: 1 })).toMatchObject({
      clamped: 'high',
      converged: false,
      temperature: SOLVE_TEMPERATURE_DEFAULTS.tMax,
    });
    expect(solveTemperature(z, { entropy: Math.LN2 })).toMatchObject({ clamped: 'low', converged: false });
    expect(solveTemperature(z, { entropy: 3 }).clamped).toBe('high');
    expect(solveTemperature(z, { entropy: 1.3 }, { tMax: 2 })).toMatchObject({ clamped: 'high', temperature: 2 });
    expect(solveTemperature([2, 2, 2], { entropy: 0.5 }).clamped).toBe('low');   // S ≡ ln 3
    expect(solveTemperature([2, 2, 2], { fraction: 1 })).toMatchObject({ converged: true, clamped: null });
    const r = solveTemperature(z, { entropy: Math.LN2 + 1e-3 });
    expect(r).toMatchObject({ converged: true, clamped: null });
  });

  it('rejects bad input', () => {
    expect(() => freeEnergyStats([1, 2], 0)).toThrow(/temperature must be a finite number > 0/);
    expect(() => freeEnergyStats([1, NaN], 1)).toThrow(/finite or -Infinity/);
    expect(() => freeEnergyStats([-Infinity], 1)).toThrow(/every logit is -Infinity/);
    expect(() => freeEnergyStats([], 1)).toThrow(/empty/);
    expect(() => solveTemperature([1, 2], {})).toThrow(/target must be \{entropy: nats\} or \{fraction/);
    expect(() => solveTemperature([1, 2], { entropy: 1, fraction: 0.5 } as never)).toThrow(/target must be/);
    expect(() => solveTemperature([1, 2], { entropy: -1 })).toThrow(/entropy must be a finite number ≥ 0/);
    expect(() => solveTemperature([1, 2], { fraction: 1.5 })).toThrow(/fraction must be in \[0, 1\]/);
    expect(() => solveTemperature([1, 2], { fraction: 0.5 }, { tMin: 2, tMax: 1 })).toThrow(/tMin < tMax/);
    expect(() => solveTemperature([1, 2], { fraction: 0.5 }, { tol: 0 })).toThrow(/tol/);
    expect(() => solveTemperature([1, 2], { fraction: 0.5 }, { iters: 3 } as never)).toThrow(/unknown option 'iters'/);
    expect(() => freeEnergySampler({ target: { fraction: 0.5 }, minP: 2 })).toThrow(/minP must be in \[0, 1\]/);
    expect(() => freeEnergySampler({ target: {} })).toThrow(/target must be/);
  });

  it('freeEnergySampler draws from softmax(z / T*) after min-p, with a JSON-safe record', () => {
    const z = randomLogits(7, 24, 2).map(Math.fround);
    const x = tf.tensor1d(z);
    for (const minP of [0, 0.1]) {
      const sampler = freeEnergySampler({ target: { fraction: 0.6 }, minP });
      const { record } = sampler(x, { rng: new Rng(0) });
      expect(record).toMatchObject({ sampler: 'free-energy', converged: true, clamped: null, minP });
      expect(Math.abs((record.entropy as number) - 0.6 * Math.log(24))).toBeLessThan(1e-4);
      const p = softmax64(z.map((v) => v / (record.temperature as number)));
      const pMax = Math.max(...p);
      const q = p.map((v) => (v >= minP * pMax ? v : 0));
      expect(record.kept).toBe(q.filter((v) => v > 0).length);
      const counts = drawCounts(sampler, x, 20_000, 50);
      expect(chiSquare(counts, q).pValue).toBeGreaterThan(1e-4);
      expectJsonSafe(record);
    }
    const big = tf.tensor1d([5000, 4999]);
    const { record } = freeEnergySampler({ target: { entropy: 0.5 } })(big, { rng: new Rng(0) });
    expect(record.Z).toBeNull();                                 // e^{logZ} overflows; logZ stays finite
    expectJsonSafe(record);
    expectNoLeak(() => { freeEnergySampler({ target: { fraction: 0.5 } })(x, { rng: new Rng(1) }); });
    tf.dispose([x, big]);
  });
});
