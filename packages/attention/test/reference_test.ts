import { describe, it, expect } from 'vitest';
import {
  dot,
  entmax15Ref,
  entmaxAlphaDerivRef,
  entmaxJvpRef,
  entmaxRef,
  entropyRef,
  fyLossRef,
  logitStatsRef,
  mulberry32,
  randn,
  softmaxRef,
  sparsemaxRef,
  tsallisRef,
  varentropyRef,
} from './reference.js';

const WIDTHS = [1, 2, 3, 5, 8, 17, 50];
const SCALES = [0.1, 1, 3, 10];

/** Seeded random rows of every width × scale, `reps` of each. */
function rows(seed: number, reps = 3, widths = WIDTHS, scales = SCALES): number[][] {
  const rng = mulberry32(seed);
  const out: number[][] = [];
  for (const n of widths)
    for (const s of scales)
      for (let r = 0; r < reps; r++) out.push(Array.from({ length: n }, () => s * randn(rng)));
  return out;
}

function maxAbsDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
const addScaled = (a: number[], b: number[], c: number) => a.map((v, i) => v + c * b[i]);

/**
 * True when no score of z lies within `margin` of the entmax threshold:
 * with max z subtracted, τ = −p_max^{α−1} and the margin of entry i is
 * (α−1)(z_i − max z) − τ (equal to p_i^{α−1} on the support).
 */
function tieFree(z: number[], alpha: number, margin = 1e-3): boolean {
  if (alpha === 1) return true;
  const p = entmaxRef(z, alpha);
  const m = Math.max(...z);
  const tau = -(Math.max(...p) ** (alpha - 1));
  return z.every((v) => Math.abs((alpha - 1) * (v - m) - tau) > margin);
}

describe('helpers', () => {
  it('mulberry32 is deterministic and in [0, 1)', () => {
    const a = mulberry32(7);
    const b = mulberry32(7);
    for (let i = 0; i < 1000; i++) {
      const u = a();
      expect(u).toBe(b());
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
    }
  });

  it('randn has roughly zero mean and unit variance', () => {
    const rng = mulberry32(1);
    const xs = Array.from({ length: 20000 }, () => randn(rng));
    const mean = sum(xs) / xs.length;
    const v = sum(xs.map((x) => (x - mean) ** 2)) / xs.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(v - 1)).toBeLessThan(0.05);
  });

  it('dot', () => {
    expect(dot([1, 2, 3], [4, 5, 6])).toBe(32);
  });
});

describe('normalisers agree with each other', () => {
  it('sparsemaxRef equals entmaxRef(α = 2) to 1e-9', () => {
    for (const z of rows(11)) expect(maxAbsDiff(sparsemaxRef(z), entmaxRef(z, 2))).toBeLessThan(1e-9);
  });

  it('entmax15Ref equals entmaxRef(α = 1.5) to 1e-9', () => {
    for (const z of rows(12)) expect(maxAbsDiff(entmax15Ref(z), entmaxRef(z, 1.5))).toBeLessThan(1e-9);
  });

  it('softmaxRef equals entmaxRef(α = 1 + 1e-6) within 1e-4, and entmaxRef(α = 1) exactly', () => {
    for (const z of rows(13)) {
      expect(maxAbsDiff(softmaxRef(z), entmaxRef(z, 1 + 1e-6))).toBeLessThan(1e-4);
      expect(entmaxRef(z, 1)).toEqual(softmaxRef(z));
    }
  });

  it('entmaxRef rejects α < 1', () => {
    expect(() => entmaxRef([1, 2], 0.5)).toThrow();
  });

  it('outputs are distributions (non-negative, sum to 1) for all α', () => {
    for (const z of rows(14))
      for (const p of [softmaxRef(z), sparsemaxRef(z), entmax15Ref(z), entmaxRef(z, 1.25), entmaxRef(z, 3)]) {
        expect(Math.abs(sum(p) - 1)).toBeLessThan(1e-12);
        for (const v of p) expect(v).toBeGreaterThanOrEqual(0);
      }
  });

  it('is invariant to adding a constant to z', () => {
    for (const z of rows(15, 1)) {
      const zc = z.map((v) => v + 3.7);
      expect(maxAbsDiff(sparsemaxRef(z), sparsemaxRef(zc))).toBeLessThan(1e-12);
      expect(maxAbsDiff(entmax15Ref(z), entmax15Ref(zc))).toBeLessThan(1e-12);
      expect(maxAbsDiff(entmaxRef(z, 1.7), entmaxRef(zc, 1.7))).toBeLessThan(1e-12);
    }
  });
});

describe('known values', () => {
  it('sparsemax', () => {
    expect(sparsemaxRef([1, 0])).toEqual([1, 0]);
    const p = sparsemaxRef([0.5, 0]);
    expect(p[0]).toBeCloseTo(0.75, 14);
    expect(p[1]).toBeCloseTo(0.25, 14);
    for (const v of sparsemaxRef([2, 2, 2, 2])) expect(v).toBeCloseTo(0.25, 14);
    // ρ = 2: 1 + 2·2 = 5 is not > 3 + 2 = 5 ⇒ k = 1, τ = 2 ⇒ p = [1, 0, 0].
    expect(sparsemaxRef([3, 2, -1])).toEqual([1, 0, 0]);
    const q = sparsemaxRef([1, 0.8, 0.1]); // k = 2, τ = 0.4
    expect(maxAbsDiff(q, [0.6, 0.4, 0])).toBeLessThan(1e-14);
    expect(sparsemaxRef([5])).toEqual([1]);
  });

  it('entmax15', () => {
    expect(maxAbsDiff(entmax15Ref([0, 0]), [0.5, 0.5])).toBeLessThan(1e-15);
    expect(entmax15Ref([2, 0])).toEqual([1, 0]); // gap ≥ 2 ⇒ one-hot
    // z = [1, 0]: X = [0, −0.5], τ = −0.25 − √0.4375.
    const s = Math.sqrt(0.4375);
    expect(maxAbsDiff(entmax15Ref([1, 0]), [(0.25 + s) ** 2, (s - 0.25) ** 2])).toBeLessThan(1e-14);
    for (const v of entmax15Ref([-1, -1, -1])) expect(v).toBeCloseTo(1 / 3, 14);
  });

  it('softmax', () => {
    const p = softmaxRef([Math.log(1), Math.log(2), Math.log(3)]);
    expect(maxAbsDiff(p, [1 / 6, 2 / 6, 3 / 6])).toBeLessThan(1e-15);
    expect(softmaxRef([1000, 1000])).toEqual([0.5, 0.5]); // stable
  });

  it('α-entmax at α = 3 of two entries: p_i = √(2 z_i − τ)', () => {
    // z = [0.5, 0]: X = 2(z − max z) = [0, −1]; τ = −1 gives p = [√1, √0] = [1, 0].
    expect(maxAbsDiff(entmaxRef([0.5, 0], 3), [1, 0])).toBeLessThan(1e-12);
    // z = [0.25, 0]: X = [0, −0.5]; √(−τ) + √(−0.5 − τ) = 1 ⇒ −τ = 0.5625 ⇒ p = [0.75, 0.25].
    expect(maxAbsDiff(entmaxRef([0.25, 0], 3), [0.75, 0.25])).toBeLessThan(1e-12);
  });
});

describe('-Infinity masking', () => {
  const fns: [string, (z: number[]) => number[]][] = [
    ['softmax', softmaxRef],
    ['sparsemax', sparsemaxRef],
    ['entmax15', entmax15Ref],
    ['entmax α=1.25', (z) => entmaxRef(z, 1.25)],
    ['entmax α=2.5', (z) => entmaxRef(z, 2.5)],
  ];

  for (const [name, f] of fns) {
    it(`${name}: masked entries get 0 and the rest equals the truncated row`, () => {
      const rng = mulberry32(21);
      for (const z of rows(22, 2, [2, 5, 12], [0.5, 3])) {
        const mask = z.map(() => rng() < 0.4);
        mask[Math.floor(rng() * z.length)] = false; // at least one finite entry
        const zm = z.map((v, i) => (mask[i] ? -Infinity : v));
        const p = f(zm);
        const pt = f(zm.filter((v) => v !== -Infinity));
        let j = 0;
        for (let i = 0; i < z.length; i++) {
          if (mask[i]) expect(p[i]).toBe(0);
          else expect(p[i]).toBe(pt[j++]);
        }
      }
    });

    it(`${name}: all -Infinity gives zeros`, () => {
      expect(f([-Infinity, -Infinity, -Infinity])).toEqual([0, 0, 0]);
      expect(f([])).toEqual([]);
    });
  }

  it('logitStatsRef ignores -Infinity entries', () => {
    const a = logitStatsRef([1, -Infinity, 2, -Infinity]);
    const b = logitStatsRef([1, 2]);
    expect(a.entropy).toBeCloseTo(b.entropy, 14);
    expect(a.varentropy).toBeCloseTo(b.varentropy, 14);
    expect(logitStatsRef([-Infinity])).toEqual({ entropy: 0, varentropy: 0 });
  });

  it('fyLossRef skips masked scores', () => {
    for (const alpha of [1, 1.5, 2]) {
      const l = fyLossRef([1, -Infinity, 0.3], 2, alpha);
      expect(l).toBeCloseTo(fyLossRef([1, 0.3], 1, alpha), 12);
      expect(Number.isFinite(l)).toBe(true);
    }
  });
});

describe('derivatives', () => {
  const ALPHAS = [1, 1.25, 1.5, 2, 3];

  for (const alpha of ALPHAS) {
    it(`entmaxJvpRef matches central finite differences at α = ${alpha}`, () => {
      const rng = mulberry32(31);
      const h = 1e-6;
      let checked = 0;
      for (const z of rows(32, 2, [1, 2, 4, 9, 20], [0.3, 1, 3])) {
        if (!tieFree(z, alpha)) continue;
        const v = z.map(() => randn(rng));
        const p = entmaxRef(z, alpha);
        const fd = entmaxRef(addScaled(z, v, h), alpha)
          .map((x, i) => (x - entmaxRef(addScaled(z, v, -h), alpha)[i]) / (2 * h));
        expect(maxAbsDiff(entmaxJvpRef(p, alpha, v), fd)).toBeLessThan(1e-6);
        checked++;
      }
      expect(checked).toBeGreaterThan(15);
    });
  }

  it('entmaxJvpRef at α = 1 is p⊙v − p(p·v); α = 2 uses the support indicator; J is symmetric', () => {
    const rng = mulberry32(33);
    for (const z of rows(34, 1)) {
      const v = z.map(() => randn(rng));
      const u = z.map(() => randn(rng));
      const p = softmaxRef(z);
      const pv = dot(p, v);
      expect(maxAbsDiff(entmaxJvpRef(p, 1, v), p.map((pi, i) => pi * v[i] - pi * pv))).toBeLessThan(1e-14);
      const q = sparsemaxRef(z);
      const s = q.map((qi) => (qi > 0 ? 1 : 0));
      const mv = dot(s, v) / sum(s);
      expect(maxAbsDiff(entmaxJvpRef(q, 2, v), s.map((si, i) => si * (v[i] - mv)))).toBeLessThan(1e-12);
      for (const alpha of [1.3, 1.5, 2.5]) {
        const r = entmaxRef(z, alpha);
        expect(dot(u, entmaxJvpRef(r, alpha, v))).toBeCloseTo(dot(v, entmaxJvpRef(r, alpha, u)), 10);
      }
    }
  });

  it('entmaxAlphaDerivRef sums to 0 and matches the closed form of Correia et al. (2019)', () => {
    // ∂p/∂α = (p − ŝ)/(α−1)² − (S − ŝ Σ S)/(α−1), S_i = p_i ln p_i, ŝ = g/Σg, g = p^{2−α}.
    let checked = 0;
    for (const alpha of [1.2, 1.5, 2, 2.7]) {
      for (const z of rows(41, 1, [2, 3, 7, 15], [0.5, 2])) {
        if (!tieFree(z, alpha, 1e-2)) continue;
        const p = entmaxRef(z, alpha, 300);
        const g = p.map((pi) => (pi > 0 ? pi ** (2 - alpha) : 0));
        const sh = g.map((gi) => gi / sum(g));
        const S = p.map((pi) => (pi > 0 ? pi * Math.log(pi) : 0));
        const ent = sum(S);
        const a = alpha - 1;
        const closed = p.map((pi, i) => (pi - sh[i]) / a ** 2 - (S[i] - sh[i] * ent) / a);
        const fd = entmaxAlphaDerivRef(z, alpha);
        expect(Math.abs(sum(fd))).toBeLessThan(1e-8);
        expect(maxAbsDiff(fd, closed)).toBeLessThan(1e-5);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(10);
  });

  it('entmaxAlphaDerivRef near α = 1 uses the one-sided formula', () => {
    const z = [0.3, -0.2, 1.1];
    const d = entmaxAlphaDerivRef(z, 1);
    const d2 = entmaxAlphaDerivRef(z, 1 + 1e-3);
    expect(maxAbsDiff(d, d2)).toBeLessThan(1e-2);
    expect(Math.abs(sum(d))).toBeLessThan(1e-8);
  });
});

describe('Fenchel–Young loss', () => {
  const ALPHAS = [1, 1.25, 1.5, 2, 3];

  for (const alpha of ALPHAS) {
    it(`gradient wrt z is p − onehot(y) at α = ${alpha}`, () => {
      const h = 1e-6;
      const rng = mulberry32(51);
      for (const z of rows(52, 1, [1, 2, 5, 12], [0.3, 1, 4])) {
        const y = Math.floor(rng() * z.length);
        const p = entmaxRef(z, alpha);
        const grad = p.map((pi, i) => pi - (i === y ? 1 : 0));
        const fd = z.map((_, i) => {
          const e = z.map((__, j) => (j === i ? 1 : 0));
          return (fyLossRef(addScaled(z, e, h), y, alpha) - fyLossRef(addScaled(z, e, -h), y, alpha)) / (2 * h);
        });
        expect(maxAbsDiff(grad, fd)).toBeLessThan(1e-6);
      }
    });

    it(`is ≥ 0 at α = ${alpha}`, () => {
      const rng = mulberry32(53);
      for (const z of rows(54, 1)) {
        const y = Math.floor(rng() * z.length);
        expect(fyLossRef(z, y, alpha)).toBeGreaterThanOrEqual(-1e-12);
      }
    });
  }

  it('α = 1 is cross-entropy logsumexp(z) − z_y', () => {
    for (const z of rows(55, 1)) {
      const m = Math.max(...z);
      const lse = m + Math.log(sum(z.map((v) => Math.exp(v - m))));
      for (let y = 0; y < z.length; y++) expect(fyLossRef(z, y, 1)).toBeCloseTo(lse - z[y], 10);
    }
  });

  it('α = 2 (sparsemax loss) is 0 when z is strongly peaked at y, positive otherwise', () => {
    expect(fyLossRef([0, 10, 0, -3], 1, 2)).toBe(0);
    expect(fyLossRef([0, 10, 0, -3], 1, 1.5)).toBe(0);
    expect(fyLossRef([0, 10, 0, -3], 0, 2)).toBeGreaterThan(9);
    // Sparsemax loss (Martins & Astudillo 2016): z·p − ½‖p‖² + ½ − z_y.
    const z = [0.5, 0, 0.2];
    const p = sparsemaxRef(z);
    expect(fyLossRef(z, 1, 2)).toBeCloseTo(dot(p, z) - 0.5 * dot(p, p) + 0.5 - z[1], 14);
  });
});

describe('entropies', () => {
  it('uniform over k items has entropy ln k and varentropy 0', () => {
    for (const k of [1, 2, 3, 10, 100]) {
      const p = Array.from({ length: k }, () => 1 / k);
      expect(entropyRef(p)).toBeCloseTo(Math.log(k), 12);
      expect(varentropyRef(p)).toBeCloseTo(0, 20);
      const st = logitStatsRef(Array.from({ length: k }, () => 0.7));
      expect(st.entropy).toBeCloseTo(Math.log(k), 12);
      expect(st.varentropy).toBeCloseTo(0, 20);
      expect(tsallisRef(p, 2)).toBeCloseTo((1 - 1 / k) / 2, 14);
    }
  });

  it('varentropy of a two-point distribution is p(1−p) ln²(p/(1−p))', () => {
    const q = 0.2;
    expect(varentropyRef([q, 1 - q])).toBeCloseTo(q * (1 - q) * Math.log(q / (1 - q)) ** 2, 14);
    expect(entropyRef([0, 1])).toBe(0);
    expect(varentropyRef([0, 1])).toBe(0);
  });

  it('logitStatsRef agrees with entropyRef / varentropyRef of softmaxRef', () => {
    for (const z of rows(61, 1)) {
      const p = softmaxRef(z);
      const st = logitStatsRef(z);
      expect(st.entropy).toBeCloseTo(entropyRef(p), 10);
      expect(st.varentropy).toBeCloseTo(varentropyRef(p), 9);
    }
  });

  it('tsallisRef(p, 1 + 1e-7) ≈ entropyRef(p) and tsallisRef(p, 1) = entropyRef(p)', () => {
    for (const z of rows(62, 1)) {
      const p = softmaxRef(z);
      // H_{1+ε}(p) = H − ε (H + ½ Σ p ln² p) + O(ε²): bound the gap by ε (H + Σ p ln² p).
      const m2 = sum(p.map((pi) => (pi > 0 ? pi * Math.log(pi) ** 2 : 0)));
      const gap = Math.abs(tsallisRef(p, 1 + 1e-7) - entropyRef(p));
      expect(gap).toBeLessThan(1e-7 * (entropyRef(p) + m2) + 1e-8); // 1e-8: cancellation in 1 − Σ p^α over ε
      expect(gap).toBeLessThan(1e-5);
      expect(tsallisRef(p, 1)).toBe(entropyRef(p));
    }
  });
});
