/**
 * aesSchedule: endpoints and continuity of the piecewise ζ(S), monotonicity, the built-in formulas
 * against independent float64 implementations, the tensor path against the number path (values
 * and gradients), construction errors, and tensor leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { AES_SCHEDULE_DEFAULTS, aesSchedule, type AesScheduleArgs } from '../src/aes_schedule.js';

type Bounds = Required<Pick<AesScheduleArgs, 'S0' | 'Smax' | 'zmax'>>;

/** Hand-written float64 references for the built-ins, written from their definitions. */
const REF: Record<string, (S: number, b: Bounds) => number> = {
  linear: (S, { S0, Smax, zmax }) => zmax * (1 - (S - S0) / (Smax - S0)),
  cosine: (S, { S0, Smax, zmax }) => (zmax / 2) * (1 + Math.cos((Math.PI * (S - S0)) / (Smax - S0))),
  logistic: (S, { S0, Smax, zmax }) => {
    // logistic step centred at c with steepness k, rescaled to run from zmax at S0 to 0 at Smax
    const [c, k] = [(S0 + Smax) / 2, 10 / (Smax - S0)];
    const L = (s: number) => 1 / (1 + Math.exp(k * (s - c)));
    return (zmax * (L(S) - L(Smax))) / (L(S0) - L(Smax));
  },
};
const SHAPES = ['linear', 'cosine', 'logistic', 'zmax * ((Smax - S) / (Smax - S0))^2'];
/** Non-default bounds so that hard-coded defaults would show. */
const B: Bounds = { S0: 0.25, Smax: 0.75, zmax: 1.5 };
const grid = (a: number, b: number, n: number) => Array.from({ length: n + 1 }, (_, i) => a + ((b - a) * i) / n);

describe('aesSchedule', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('defaults: frozen, cosine, and the built-in name expands to its formula', () => {
    expect(Object.isFrozen(AES_SCHEDULE_DEFAULTS)).toBe(true);
    const s = aesSchedule();
    expect(s.args).toEqual({ S0: 0.1, Smax: 0.6, zmax: 1, shape: 'cosine' });
    expect(s.formula).toMatch(/cos\(pi/);
    expect(aesSchedule({ shape: s.formula }).zeta(0.55)).toBe(s.zeta(0.55));
  });

  for (const shape of SHAPES) {
    for (const b of [B, { S0: 0, Smax: 1, zmax: 1 }, { S0: 0.3, Smax: 0.8, zmax: 0.01 }]) {
      it(`${shape} ${JSON.stringify(b)}: endpoints, flat parts, α range, continuity, monotonicity`, () => {
        const s = aesSchedule({ ...b, shape });
        expect(s.zeta(b.S0)).toBe(b.zmax);
        expect(s.zeta(b.Smax)).toBe(0);
        for (const S of grid(0, b.S0, 10)) expect(s.zeta(S)).toBe(b.zmax);
        for (const S of grid(b.Smax, 1, 10)) expect(s.zeta(S)).toBe(0);
        expect(s.alpha(0)).toBe(2);
        expect(s.alpha(1)).toBe(1);
        // continuity: the formula meets the flat parts (the schedule validated it to 1e-6·zmax)
        expect(Math.abs(s.zeta(b.S0 + 1e-7) - s.zeta(b.S0 - 1e-7))).toBeLessThan(1e-5 * b.zmax);
        expect(Math.abs(s.zeta(b.Smax + 1e-7) - s.zeta(b.Smax - 1e-7))).toBeLessThan(1e-5 * b.zmax);
        const z = grid(0, 1, 2000).map(s.zeta);
        for (let i = 1; i < z.length; i++) expect(z[i]).toBeLessThanOrEqual(z[i - 1] + 1e-12);
        for (const S of grid(0, 1, 50)) {
          expect(s.alpha(S)).toBeGreaterThanOrEqual(1);
          expect(s.alpha(S)).toBeLessThanOrEqual(2);
        }
      });
    }
  }

  it('built-in formulas agree with independent float64 implementations', () => {
    for (const [shape, ref] of Object.entries(REF)) {
      for (const b of [B, { S0: 0, Smax: 1, zmax: 1 }, { S0: 0.1, Smax: 0.35, zmax: 3 }]) {
        const s = aesSchedule({ ...b, shape });
        for (const S of grid(b.S0, b.Smax, 7)) expect(Math.abs(s.zeta(S) - ref(S, b))).toBeLessThan(1e-12 * b.zmax);
        expect(Math.abs(s.alpha((b.S0 + b.Smax) / 2) - 1 - ref((b.S0 + b.Smax) / 2, b) / b.zmax)).toBeLessThan(1e-12);
      }
    }
    // cosine and logistic are symmetric about the midpoint: ζ(c) = zmax/2
    expect(aesSchedule({ ...B, shape: 'logistic' }).zeta(0.5)).toBeCloseTo(0.75, 12);
  });

  // sqrt: NaN below S0 and an infinite slope at S0 (gradients must stay finite); min/max: kinks
  const sqrt = 'zmax * (1 - sqrt((S - S0) / (Smax - S0)))';
  const clipped = 'min(zmax, max(0, 2 * zmax * (Smax - S) / (Smax - S0) - zmax / 2))';
  for (const shape of [...SHAPES, sqrt, clipped]) {
    it(`zetaTensor/alphaTensor match zeta/alpha, gradient matches finite differences: ${shape}`, () => {
      const s = aesSchedule({ ...B, shape });
      const xs = [...grid(-0.05, 1.05, 110), B.S0, B.Smax].map(Math.fround);  // float32 inputs, exact here
      const S = tf.tensor1d(xs);
      const z = Array.from(s.zetaTensor(S).dataSync());
      const a = Array.from(s.alphaTensor(S).dataSync());
      xs.forEach((x, i) => {
        expect(Math.abs(z[i] - s.zeta(x))).toBeLessThan(1e-5);
        expect(Math.abs(a[i] - s.alpha(x))).toBeLessThan(1e-5);
      });
      const g = Array.from(tf.grad((t: tf.Tensor) => tf.sum(s.zetaTensor(t)))(S).dataSync());
      const h = 1e-6;
      xs.forEach((x, i) => {
        if (x <= B.S0 || x >= B.Smax) expect(g[i]).toBe(0);                  // flat parts, no NaN
        else if (x > B.S0 + 1e-3 && x < B.Smax - 1e-3) {
          const fd = (s.zeta(x + h) - s.zeta(x - h)) / (2 * h);
          expect(Math.abs(g[i] - fd)).toBeLessThan(1e-3 * (1 + Math.abs(fd)));
        }
      });
    });
  }

  it('zetaTensor keeps shape, propagates NaN and rejects non-float32 input', () => {
    const s = aesSchedule(B);
    expect(s.zetaTensor(tf.fill([2, 3, 4, 1], 0.5)).shape).toEqual([2, 3, 4, 1]);
    expect(s.zetaTensor(tf.scalar(0.1)).dataSync()[0]).toBeCloseTo(1.5, 6);
    expect(Number.isNaN(s.zetaTensor(tf.tensor1d([NaN])).dataSync()[0])).toBe(true);
    expect(Number.isNaN(s.zeta(NaN))).toBe(true);
    expect(() => s.zetaTensor(tf.tensor1d([1], 'int32'))).toThrow(/float32/);
  });

  it('construction errors name the problem', () => {
    const bad = (args: AesScheduleArgs, re: RegExp) => expect(() => aesSchedule(args)).toThrow(re);
    bad({ S0: 0.8, Smax: 0.8 }, /0 ≤ S0 < Smax ≤ 1.*S0 = 0\.8, Smax = 0\.8/);
    bad({ S0: 0.9, Smax: 0.2 }, /S0 < Smax/);
    bad({ S0: -0.1 }, /0 ≤ S0/);
    bad({ Smax: 1.5 }, /Smax ≤ 1/);
    bad({ zmax: 0 }, /zmax must be > 0/);
    bad({ zmax: -1 }, /zmax must be > 0/);
    bad({ zmax: Infinity }, /zmax must be a finite number/);
    bad({ S0: '0.2' as unknown as number }, /S0 must be a finite number/);
    bad({ shape: 'zmax * (' }, /cannot parse formula "zmax \* \("/);
    bad({ shape: ' ' }, /empty shape.*linear, cosine, logistic/);
    bad({ shape: 3 as unknown as string }, /shape must be a string/);
    bad({ shape: 'x * S' }, /unknown symbol 'x'.*allowed: .*symbols S, S0, Smax, zmax, pi, e/);
    bad({ shape: 'cosin' }, /unknown symbol 'cosin'.*built-in shapes linear, cosine, logistic/);
    bad({ shape: 'zmax * gamma(S)' }, /unsupported function 'gamma'.*functions exp, log/);
    bad({ shape: 'zmax * log(S, 2)' }, /wrong number of arguments \(2\) to log/);
    bad({ shape: 'S = 1' }, /unsupported construct AssignmentNode/);
    bad({ shape: 'zmax * [1, 2]' }, /unsupported construct ArrayNode/);
    bad({ shape: '"zmax"' }, /unsupported constant/);
    bad({ shape: 'zmax * (S > 0.5 ? 0 : 1)' }, /unsupported construct ConditionalNode/);
    bad({ shape: 'zmax * (Smax - S) % 2' }, /unsupported operator '%'/);
    bad({ S0: 0.3, Smax: 0.8, shape: 'zmax * (1 + sin(20*S))/2' }, /not monotone non-increasing.*at S = 0\.3/);
    bad({ shape: 'zmax * (S - S0) / (Smax - S0)' }, /not monotone/);
    bad({ S0: 0.3, Smax: 0.8, shape: 'zmax * 0.5' }, /misses the endpoint.*at S = S0 = 0\.3/);
    bad(
      { S0: 0.3, Smax: 0.8, shape: 'zmax * (Smax - S) / (Smax - S0) - 1e-3 * zmax * (S - S0) / (Smax - S0)' },
      /outside \[0, zmax\]/,
    );
    bad({ S0: 0.3, Smax: 0.8, shape: 'zmax * 2 * (Smax - S) / (Smax - S0)' }, /outside \[0, zmax\] \(2\) at S = 0\.3/);
    bad({ S0: 0.3, Smax: 0.8, shape: 'zmax * (Smax - S) / (S - S0)' }, /not finite \(Infinity\) at S = 0\.3/);
    bad({ shape: 'sqrt(0.5 - S)' }, /not finite \(NaN\)/);                 // mathjs gives a Complex
    bad({ S0: 0.2, smax: 0.9 } as AesScheduleArgs, /unknown arg\(s\) smax; valid keys: S0, Smax, zmax, shape/);
  });

  it('leaks no tensors', () => {
    const s = aesSchedule({ ...B, shape: 'logistic' });
    const S = tf.tensor1d([0.1, 0.3, 0.5, 0.7, 0.9]);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      s.zetaTensor(S);
      s.alphaTensor(S);
      tf.grad((t: tf.Tensor) => tf.sum(s.alphaTensor(t)))(S);
    });
    tf.dispose(s.zetaTensor(S));
    expect(tf.memory().numTensors).toBe(before);
    S.dispose();
  });
});
