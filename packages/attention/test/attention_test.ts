/**
 * attention(): every fixed normaliser against a float64 reference of the whole computation, causal
 * and padding masks, learned α (finite differences wrt the raw parameter), statistics, errors, leaks.
 * AES is in aes_test.ts, the literature's maps in head_maps_test.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { attention, initialAesState, planAttention, type AttentionArgs, type NormaliserSpec } from '../src/index.js';
import { describeAllBackends, directional, expectClose, expectNoLeak, value, values } from './helpers.js';
import { entmaxRef, entropyRef, mulberry32, randn, softmaxRef } from './reference.js';

type Arr4 = number[][][][];
const [B, H, T, D] = [2, 4, 5, 3];

function rand4(seed: number, shape: number[], scale = 1): Arr4 {
  const rng = mulberry32(seed);
  const make = (i: number): unknown =>
    i === shape.length ? scale * randn(rng) : Array.from({ length: shape[i] }, () => make(i + 1));
  return make(0) as Arr4;
}

/** float64 attention probabilities and output, with per-head α (1 = softmax). */
function reference(q: Arr4, k: Arr4, v: Arr4, alphas: number[], o: { causal?: boolean; keyMask?: number[][] } = {}) {
  const d = q[0][0][0].length;
  const probs = q.map((qb, b) => qb.map((qh, h) => qh.map((qi, i) => {
    const s = k[b][h].map((kj, j) => {
      if (o.causal && j > i + (k[b][h].length - qh.length)) return -Infinity;
      if (o.keyMask && !o.keyMask[b][j]) return -Infinity;
      return qi.reduce((acc, x, c) => acc + x * kj[c], 0) / Math.sqrt(d);
    });
    return alphas[h] === 1 ? softmaxRef(s) : entmaxRef(s, alphas[h]);
  })));
  const out = probs.map((pb, b) =>
    pb.map((ph, h) => ph.map((pi) => v[b][h][0].map((_, c) => pi.reduce((acc, p, j) => acc + p * v[b][h][j][c], 0)))),
  );
  return { probs, out };
}

const flat = (a: unknown[]): number[] => (a as number[]).flat(4);

const ALPHA_OF: Record<string, number> = { softmax: 1, sparsemax: 2, entmax15: 1.5 };

for (const layout of ['perHead', 'batched'] as const) describeAllBackends(`attention (${layout})`, () => {
  const q = rand4(1, [B, H, T, D], 1.5), k = rand4(2, [B, H, T, D], 1.5), v = rand4(3, [B, H, T, D]);
  const run = (args: AttentionArgs, qq: Arr4 = q, kk: Arr4 = k, vv: Arr4 = v) =>
    attention(tf.tensor4d(qq), tf.tensor4d(kk), tf.tensor4d(vv), { layout, ...args });

  for (const spec of ['softmax', 'sparsemax', 'entmax15', 'alpha=1.3', 'alpha=2.5'] as NormaliserSpec[]) {
    for (const causal of [false, true]) {
      it(`${spec}${causal ? ', causal' : ''}: equals the float64 reference`, async () => {
        const alpha = ALPHA_OF[spec as string] ?? Number((spec as string).slice(6));
        const got = run({ normaliser: spec, causal });
        expect(got.output.shape).toEqual([B, H, T, D]);
        expectClose(await values(got.output), flat(reference(q, k, v, Array(H).fill(alpha), { causal }).out), 2e-5);
      });
    }
  }

  it('mixed heads, a padding mask and cross lengths (T ≠ S) match the reference', async () => {
    const k7 = rand4(4, [B, H, 7, D], 1.5), v7 = rand4(5, [B, H, 7, D]);
    const keyMask = [[1, 1, 0, 1, 1, 1, 0], [1, 0, 1, 1, 1, 1, 1]];
    const got = run(
      { normaliser: ['softmax', 'sparsemax', 'entmax15', { alpha: 1.7 }], causal: true, keyMask: tf.tensor2d(keyMask) },
      q,
      k7,
      v7,
    );
    const want = reference(q, k7, v7, [1, 2, 1.5, 1.7], { causal: true, keyMask }).out;
    expectClose(await values(got.output), flat(want), 2e-5);
  });

  it('causal: no mass on future keys for every normaliser (identity values read p back)', async () => {
    const eye = Array.from({ length: B }, () =>
      Array.from({ length: H }, () =>
        Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => (i === j ? 1 : 0))),
      ),
    );
    const p = (await run(
      { normaliser: ['softmax', 'sparsemax', 'entmax15', 'alpha=3'], causal: true },
      q,
      k,
      eye,
    ).output.array()) as Arr4;
    for (const pb of p) for (const ph of pb) ph.forEach((row, i) => {
      row.forEach((x, j) => { if (j > i) expect(x).toBe(0); });
      expect(Math.abs(row.reduce((a, b) => a + b) - 1)).toBeLessThan(1e-5);
    });
  });

  it('fully masked rows give zero output and no NaN, also in gradients', async () => {
    const keyMask = tf.tensor2d([[0, 0, 0, 0, 0], [1, 1, 1, 1, 1]]);
    for (const spec of ['softmax', 'sparsemax', 'entmax15', 'aes', 'alpha=1.2'] as NormaliserSpec[]) {
      const out = (await run({ normaliser: spec, keyMask }).output.array()) as Arr4;
      expect(flat(out[0]).every((x) => x === 0)).toBe(true);
      expect(flat(out[1]).every(Number.isFinite)).toBe(true);
      const g = tf.grad((qq: tf.Tensor) =>
        tf.sum(attention(qq, tf.tensor4d(k), tf.tensor4d(v), { layout, normaliser: spec, keyMask }).output),
      )(tf.tensor4d(q));
      expect((await values(g)).every(Number.isFinite)).toBe(true);
    }
  });

  it('learned α = 1 + sigmoid(a) in (1, 2): output matches the reference, dLoss/da matches finite differences',
    async () => {
    const raw = [-2, -0.3, 0.4, 3];
    const alphas = raw.map((a) => 1 + 1 / (1 + Math.exp(-a)));
    const got = run({ normaliser: 'learned', alphaRaw: tf.tensor1d(raw), returnStats: true });
    expectClose(await values(got.stats!.alpha), alphas, 1e-6);
    expectClose(await values(got.output), flat(reference(q, k, v, alphas).out), 5e-5);
    const w = tf.tensor4d(rand4(6, [B, H, T, D]));
    const loss = (a: tf.Tensor) =>
      tf.sum(
        tf.mul(
          w,
          attention(tf.tensor4d(q), tf.tensor4d(k), tf.tensor4d(v), {
            layout,
            normaliser: 'learned',
            alphaRaw: a,
            causal: true,
          }).output,
        ),
      );
    const a0 = tf.tensor1d(raw);
    const g = tf.grad(loss)(a0);
    const dir = tf.tensor1d([0.3, -1, 0.5, 0.8]);
    expect(await value(tf.sum(tf.mul(g, dir)))).toBeCloseTo(await directional(loss, a0, dir), 2);
    expect((await values(g)).some((x) => Math.abs(x) > 1e-3)).toBe(true);
  });

  it('statistics: per-row entropy/support against the reference, cross-head metrics', async () => {
    const keyMask = [[1, 1, 1, 0, 1], [1, 1, 1, 1, 1]];
    const r = run({
      normaliser: ['softmax', 'sparsemax', 'entmax15', 'alpha=1.2'],
      causal: true,
      keyMask: tf.tensor2d(keyMask),
      returnStats: true,
    });
    const { probs } = reference(q, k, v, [1, 2, 1.5, 1.2], { causal: true, keyMask });
    const st = r.stats!;
    expect(st.entropy.shape).toEqual([B, H, T]);
    expectClose(await values(st.entropy), probs.flat(2).map(entropyRef), 1e-4);
    expectClose(await values(st.support), probs.flat(2).map((p) => p.filter((x) => x > 0).length), 0);
    const visible = (b: number, i: number) => keyMask[b].slice(0, i + 1).reduce((a, x) => a + x, 0);
    const frac = probs.flatMap((pb, b) =>
      pb.flatMap((ph) => ph.map((p, i) => p.filter((x) => x > 0).length / visible(b, i))),
    );
    expectClose(await values(st.supportFraction), frac, 1e-6);
    expect((await values(st.supportFraction)).every((f) => f > 0 && f <= 1)).toBe(true);
    const ent = probs.map((pb) => pb.map((ph) => ph.map(entropyRef)));       // [B][H][T]
    const varH = ent.flatMap((eb) =>
      eb[0].map((_, t) => {
        const xs = eb.map((eh) => eh[t]);
        const m = xs.reduce((a, x) => a + x) / H;
        return xs.reduce((a, x) => a + (x - m) ** 2, 0) / H;
      }),
    );
    expectClose(await values(st.headEntropyVariance), varH, 1e-4);
    const agree = probs.flatMap((pb) => pb[0].map((_, t) => {
      const mean = pb[0][t].map((_, s) => pb.reduce((a, ph) => a + ph[t][s], 0) / H);
      return pb.reduce((a, ph) => a + ph[t].reduce((c, p, s) => c + Math.abs(p - mean[s]), 0), 0) / (H * T);
    }));
    expectClose(await values(st.agreement), agree, 1e-5);
    expect(st.interactionStrength.shape).toEqual([B, T]);
    expect((await values(st.interactionStrength)).every((x) => x > 0 && Number.isFinite(x))).toBe(true);
  });

  it('shape and option errors name the offending shapes', async () => {
    const [qt, kt, vt] = [tf.tensor4d(q), tf.tensor4d(k), tf.tensor4d(v)];
    expect(() => attention(tf.zeros([2, 4, 5]), kt, vt)).toThrow(/expected q \[B, H, T, d\].*q \[2,4,5\]/);
    expect(() => attention(qt, tf.zeros([2, 4, 5, 2]), vt)).toThrow(/same head size d.*k \[2,4,5,2\]/);
    expect(() => attention(qt, kt, tf.zeros([2, 4, 6, 3]))).toThrow(/same number of keys/);
    expect(() => attention(qt, tf.zeros([2, 3, 5, 3]), vt)).toThrow(/batch and head sizes differ/);
    expect(() => attention(qt, kt, vt, { keyMask: tf.ones([2, 4]) })).toThrow(
      /keyMask must be \[B, S\] = \[2, 5\], got \[2,4\]/,
    );
    expect(() => attention(qt, kt, vt, { layout, normaliser: ['softmax', 'softmax'] })).toThrow(
      /2 normalisers for 4 heads/,
    );
    expect(() => attention(qt, kt, vt, { layout, normaliser: 'relu' as NormaliserSpec })).toThrow(
      /unknown attention normaliser "relu"/,
    );
    expect(() => attention(qt, kt, vt, { layout, normaliser: 'learned' })).toThrow(/alphaRaw/);
    expect(() => attention(qt, kt, vt, { layout, normaliser: { alpha: 0.5 } })).toThrow(/alpha must be ≥ 1/);
    expect(() => attention(qt, kt, vt, { layout, normaliser: { aes: { momentum: 2 } } })).toThrow(/momentum/);
    expect(() => attention(qt, kt, vt, { layout, normaliser: { aes: { smax: 1 } as never } })).toThrow(
      /unknown aes option/,
    );
    expect(() => attention(tf.zeros([2, 4, 5, 3], 'int32'), kt, vt)).toThrow(/float32/);
  });

  it('no leaked tensors across 100 calls (every normaliser, with stats)', async () => {
    const [qt, kt, vt, a] = [tf.tensor4d(q), tf.tensor4d(k), tf.tensor4d(v), tf.zeros([H])];
    const plan = planAttention(['softmax', 'learned', 'aes', 'sparsemax'], { heads: H });
    let state = initialAesState(plan) as tf.Tensor;
    const call = () => {
      const r = attention(qt, kt, vt, { layout, plan, alphaRaw: a, causal: true, state, returnStats: true });
      state.dispose();
      state = r.state!;
      tf.dispose([r.output, ...Object.values(r.stats!)]);
    };
    await expectNoLeak(call, 100);
  });
});

describeAllBackends('attention with one batch entry and one head', () => {
  it('differentiates in q, k and v in both layouts (tfjs Unpack gradient fails on a length-1 axis)', async () => {
    const [q, k, v] = [1, 2, 3].map((s) => tf.randomNormal([1, 1, 6, 4], 0, 1, 'float32', s));
    for (const layout of ['perHead', 'batched'] as const) {
      const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(
          tf.square(
            attention(a, b, c, { layout, causal: true, normaliser: 'sparsemax', keyMask: tf.ones([1, 6]) }).output,
          ),
        );
      const grads = tf.grads(f)([q, k, v]);
      const dir = tf.randomNormal([1, 1, 6, 4], 0, 1, 'float32', 9);
      for (const [i, g] of grads.entries()) {
        const fd = await directional(
          (x) => f(...([q, k, v].map((t, j) => (j === i ? x : t)) as [tf.Tensor, tf.Tensor, tf.Tensor])),
          [q, k, v][i],
          dir,
        );
        expect(Math.abs(fd - (await value(tf.sum(tf.mul(g, dir)))))).toBeLessThan(2e-2 * (1 + Math.abs(fd)));
      }
    }
  });
});
