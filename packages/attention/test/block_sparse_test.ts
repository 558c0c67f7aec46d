/**
 * Block-skipping exact attention and its JavaScript row maps: the row maps against the float64
 * references (values, special rows, the Jacobian); blockSparseAttention against dense attention()
 * (outputs and gradients in q, k, v, causal with and without an offset, several heads and α) and
 * against finite differences; skip rates that must be high on clustered heads and the dense
 * fallback on high-entropy ones; errors and leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import {
  attention, blockSparseAttention, clusteredHeads, initialParam, planAttention, type BlockSparseArgs,
} from '../src/index.js';
import { BLOCK_SPARSE_DEFAULTS, keptShareBound, planHead, type Cfg } from '../src/block_sparse.js';
import { entmaxRows, entmaxRowsVjp, entmaxThresholdBounds } from '../src/js_rows.js';
import { mulberry32 } from '../src/synthetic.js';
import { describeAllBackends, directional, expectClose, expectNoLeak, randomRows, value, values } from './helpers.js';
import { entmaxJvpRef, entmaxRef } from './reference.js';

it('entmaxRows equals the float64 references, with masked entries and special rows', async () => {
  for (const [seed, n, scale] of [[1, 7, 1], [2, 300, 3], [3, 64, 0.05], [4, 40, 1000]] as const) {
    const rows = randomRows(seed, 5, n, scale);
    rows[1] = rows[1].map((z, j) => (j % 3 ? z : -Infinity));
    for (const alpha of [1.01, 1.3, 1.5, 2, 3]) {
      const got = entmaxRows(Float32Array.from(rows.flat()), rows.length, n, alpha);
      rows.forEach((r, i) => expectClose(got.subarray(i * n, (i + 1) * n), entmaxRef(r, alpha), 2e-6));
    }
  }
  const special = Float32Array.from([-Infinity, -Infinity, -Infinity, 1, NaN, 0, Infinity, 0, 0]);
  const p = Array.from(entmaxRows(special, 3, 3, 1.5));
  expect(p.slice(0, 3)).toEqual([0, 0, 0]);                         // fully masked → zeros
  expect(p.slice(3).every(Number.isNaN)).toBe(true);                // NaN / +∞ → NaN rows
  expect(Array.from(entmaxRows(Float32Array.from([5]), 1, 1, 2))).toEqual([1]);
  expect(() => entmaxRows(new Float32Array(2), 1, 2, 1)).toThrow(/alpha/);
});

it('entmaxRows with a floor below the threshold gives the same rows; entmaxThresholdBounds bounds it', async () => {
  const rows = randomRows(8, 6, 120, 2);
  for (const alpha of [1.2, 1.5, 2, 2.5]) {
    // θ from the float64 reference: θ = m − p_max^{α−1}/(α−1) (the max entry has p = (1 − εν)^{1/ε}).
    const theta = rows.map((r) => Math.max(...r) - Math.max(...entmaxRef(r, alpha)) ** (alpha - 1) / (alpha - 1));
    const x = Float32Array.from(rows.flat());
    const floored = entmaxRows(
      x,
      6,
      120,
      alpha,
      undefined,
      theta.map((t) => t - 0.05),
    );
    rows.forEach((r, i) => expectClose(floored.subarray(i * 120, (i + 1) * 120), entmaxRef(r, alpha), 2e-6));
    for (const steps of [1, 2, 4, 50]) {
      const bound = entmaxThresholdBounds(x, 6, 120, alpha, steps);
      bound.forEach((b, i) => expect(b).toBeLessThanOrEqual(theta[i] + 1e-6));
      if (steps === 50) expectClose(bound, theta, 1e-5); // converged: the threshold itself
    }
  }
  expect(Array.from(entmaxThresholdBounds(Float32Array.from([-Infinity, -Infinity, NaN, 0]), 2, 2, 1.5))).toEqual([
    -Infinity,
    NaN,
  ]);
});

it('entmaxRowsVjp is the entmax Jacobian (float64 reference) applied to dP', async () => {
  const rows = randomRows(5, 4, 50, 2);
  const dp = randomRows(6, 4, 50, 1);
  for (const alpha of [1.2, 1.5, 2, 2.5]) {
    const p = rows.map((r) => entmaxRef(r, alpha));
    const got = entmaxRowsVjp(Float32Array.from(p.flat()), Float32Array.from(dp.flat()), 4, 50, alpha);
    p.forEach((pr, i) => expectClose(got.subarray(i * 50, (i + 1) * 50), entmaxJvpRef(pr, alpha, dp[i]), 2e-5, 1e-4));
  }
});

describeAllBackends('blockSparseAttention', (backend) => {
  // The block plan is read on the host: blockSparseAttention refuses device backends and attention()
  // plans no skipping there (the last test checks both), so the other tests run on cpu and wasm only.
  const onHost = it.skipIf(backend === 'webgpu');
  // Small clustered heads: T = 100 (not a multiple of the blocks), d = 8, topic segments of 16.
  const small = (seed: number, extra: object = {}) =>
    clusteredHeads(seed, { B: 2, H: 2, T: 100, d: 8, segment: 16, topics: 8, strength: 4, ...extra });
  const blocks: BlockSparseArgs = { blockSize: 8, queryBlockSize: 8, probeStride: 4 };

  onHost('equals dense attention (outputs and gradients in q, k, v) and skips most blocks of clustered heads',
    async () => {
    const { q, k, v } = small(11);
    const dy = tf.randomNormal([2, 2, 100, 8], 0, 1, 'float32', 12);
    for (const alpha of [2, 1.5, 1.3]) {
      for (const causal of [false, true]) {
        const sparse = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
          blockSparseAttention(a, b, c, { ...blocks, alpha, causal }).output;
        const dense = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
          attention(a, b, c, { normaliser: { alpha }, causal }).output;
        const r = blockSparseAttention(q, k, v, { ...blocks, alpha, causal });
        expect(r.stats.mode).toEqual(['sparse', 'sparse', 'sparse', 'sparse']);
        for (const s of r.stats.skipRate) expect(s).toBeGreaterThan(0.4);
        expectClose(await values(r.output), await values(dense(q, k, v)), 2e-5, 1e-4);
        const gs = tf.grads(sparse)([q, k, v], dy), gd = tf.grads(dense)([q, k, v], dy);
        for (const [i, g] of gs.entries()) expectClose(await values(g), await values(gd[i]), 1e-4, 1e-3);
        tf.dispose([r.output, ...gs, ...gd]);
      }
    }
    tf.dispose([q, k, v, dy]);
  });

  onHost('per-head α, a causal offset (fewer queries than keys) and finite differences', async () => {
    const { k, v } = small(21);
    const q = tf.slice(small(22).q, [0, 0, 60, 0], [2, 2, 40, 8]);   // the last 40 positions query all 100 keys
    const args: BlockSparseArgs = { ...blocks, alpha: [2, 1.5], causal: true };
    const dense = attention(q, k, v, { normaliser: [{ alpha: 2 }, { alpha: 1.5 }], causal: true }).output;
    expectClose(await values(blockSparseAttention(q, k, v, args).output), await values(dense), 2e-5, 1e-4);
    // ⟨u, f(q + hδ) − f(q − hδ)⟩/2h against ⟨grad, δ⟩ for a random direction δ.
    const u = tf.randomNormal([2, 2, 40, 8], 0, 1, 'float32', 23), dir = tf.randomNormal(q.shape, 0, 1, 'float32', 24);
    const f = (x: tf.Tensor) => tf.sum(tf.mul(blockSparseAttention(x, k, v, args).output, u));
    const fd = await directional(f, q, dir);
    const an = await value(tf.sum(tf.mul(tf.grad(f)(q), dir)));
    expect(Math.abs(fd - an)).toBeLessThan(1e-2 * (1 + Math.abs(an)));
  });

  onHost('high-entropy heads: little to skip, the dense fallback by default, the same result either way', async () => {
    const { q, k, v } = small(31, { strength: 0 });
    const dense = await values(attention(q, k, v, { normaliser: 'entmax15', causal: true }).output);
    const auto = blockSparseAttention(q, k, v, { ...blocks, causal: true });
    expect(auto.stats.mode.every((m) => m === 'dense')).toBe(true);
    expect(auto.stats.skipRate).toEqual([0, 0, 0, 0]);
    expectClose(await values(auto.output), dense, 2e-5, 1e-4);
    const forced = blockSparseAttention(q, k, v, { ...blocks, causal: true, denseAbove: 1 });
    expect(forced.stats.mode.every((m) => m === 'sparse')).toBe(true);
    expectClose(await values(forced.output), dense, 2e-5, 1e-4);
  });

  onHost('counts what it computes: a head of known block structure gives the known number of scores', async () => {
    // 8 key blocks of 8 identical keys 10·e_b; query block a (8 queries) is e_a. Row i's scores are 10
    // on its own block and 0 elsewhere, so its support is its own block (p = 1/8 each, threshold > 0),
    // and a plan that is tight keeps exactly that block for each query block.
    const [n, b, d] = [64, 8, 8];
    const qd = new Float32Array(n * d), kd = new Float32Array(n * d);
    for (let i = 0; i < n; i++) { qd[i * d + Math.floor(i / b)] = 1; kd[i * d + Math.floor(i / b)] = 10; }
    const [q, k, v] = [tf.tensor4d(qd, [1, 1, n, d]), tf.tensor4d(kd, [1, 1, n, d]), tf.randomNormal([1, 1, n, 4])];
    const args = { blockSize: b, queryBlockSize: b, probeStride: 4, denseAbove: 1, scale: 1 };
    for (const alpha of [2, 1.5]) {
      const free = blockSparseAttention(q, k, v, { ...args, alpha });
      expect(free.stats.skipRate[0]).toBe(1 - (n * b) / (n * n));           // 512 of 4096 scores computed
      expect(free.stats.keptBlocks[0]).toBe(1 / 8);                          // 8 of 64 block pairs
      // Causal: query block a sees blocks 0 … a (36 pairs) and keeps its own; row r of a block sees r + 1
      // of its own keys: 8 · (1 + … + 8) = 288 of the n(n + 1)/2 = 2080 visible scores.
      const causal = blockSparseAttention(q, k, v, { ...args, alpha, causal: true });
      expect(causal.stats.skipRate[0]).toBe(1 - 288 / 2080);
      expect(causal.stats.keptBlocks[0]).toBe(8 / 36);
      // The oracle's mask keeps the same blocks, having computed every score.
      const masked = blockSparseAttention(q, k, v, { ...args, alpha, causal: true, plan: 'scores' });
      expect([masked.stats.keptBlocks[0], masked.stats.skipRate[0]]).toEqual([8 / 36, 0]);
      expectClose(await values(masked.output), await values(causal.output), 1e-6, 1e-5);
      masked.output.dispose();
      const dense = attention(q, k, v, { normaliser: { alpha }, causal: true, scale: 1 }).output;
      expectClose(await values(causal.output), await values(dense), 1e-5, 1e-4);
      tf.dispose([free.output, causal.output, dense]);
    }
    tf.dispose([q, k, v]);
  });

  onHost("plan 'scores': every score, then only the blocks holding a nonzero; equals dense, in values and gradients",
    async () => {
    // Clustered heads with noise (the bounds keep blocks an oracle would not) and random heads (all kept).
    const dy = tf.randomNormal([2, 2, 100, 8], 0, 1, 'float32', 42);
    for (const [seed, extra] of [[41, { noise: 1.5 }], [43, { strength: 0 }]] as const) {
      const { q, k, v } = small(seed, extra);
      for (const [alpha, causal] of [[2, true], [1.5, false], [1.3, true]] as const) {
        const args = { ...blocks, alpha, causal };
        const masked = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
          blockSparseAttention(a, b, c, { ...args, plan: 'scores' }).output;
        const dense = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
          attention(a, b, c, { normaliser: { alpha }, causal }).output;
        const r = blockSparseAttention(q, k, v, { ...args, plan: 'scores' });
        expect(r.stats.mode).toEqual(['masked', 'masked', 'masked', 'masked']);
        expect(r.stats.skipRate).toEqual([0, 0, 0, 0]);                  // every score is computed
        // The kept share is the oracle's: the blocks of the float64 reference map holding a nonzero.
        const [qd, kd] = [await values(q), await values(k)];
        const p = new Float64Array(4 * 100 * 100);
        for (let h = 0; h < 4; h++) for (let i = 0; i < 100; i++) {
          const row = Array.from({ length: 100 }, (_, j) => {
            let z = 0;
            for (let e = 0; e < 8; e++) z += qd[(h * 100 + i) * 8 + e] * kd[(h * 100 + j) * 8 + e];
            return causal && j > i ? -Infinity : z / Math.sqrt(8);
          });
          p.set(entmaxRef(row, alpha), (h * 100 + i) * 100);
        }
        const oracle = [0, 1, 2, 3].map((h) => {
          let live = 0, visible = 0;
          for (let a = 0; a < 13; a++) for (let b = 0; b < 13; b++) {
            if (causal && b > a) continue;
            visible++;
            let any = false;
            for (let i = a * 8; i < Math.min(100, a * 8 + 8); i++)
              for (let j = b * 8; j < Math.min(100, b * 8 + 8); j++) any ||= p[(h * 100 + i) * 100 + j] > 0;
            if (any) live++;
          }
          return live / visible;
        });
        expectClose(r.stats.keptBlocks, oracle, 1e-12);
        const bound = blockSparseAttention(q, k, v, { ...args, denseAbove: 1 }).stats.keptBlocks;
        bound.forEach((b, i) => expect(b).toBeGreaterThanOrEqual(oracle[i] - 1e-12));
        expectClose(await values(r.output), await values(dense(q, k, v)), 2e-5, 1e-4);
        const gs = tf.grads(masked)([q, k, v], dy), gd = tf.grads(dense)([q, k, v], dy);
        for (const [i, g] of gs.entries()) expectClose(await values(g), await values(gd[i]), 1e-4, 1e-3);
        tf.dispose([r.output, ...gs, ...gd]);
      }
      if (seed === 41) {
        // The noisy clustered heads leave blocks empty, so the mask skips some; finite differences in k.
        const r = blockSparseAttention(q, k, v, { ...blocks, causal: true, plan: 'scores' });
        for (const x of r.stats.keptBlocks) expect(x).toBeLessThan(0.9);
        const u = tf.randomNormal([2, 2, 100, 8], 0, 1, 'float32', 44);
        const dir = tf.randomNormal(k.shape, 0, 1, 'float32', 45);
        const f = (x: tf.Tensor) =>
          tf.sum(tf.mul(blockSparseAttention(q, x, v, { ...blocks, causal: true, plan: 'scores' }).output, u));
        const fd = await directional(f, k, dir);
        const an = await value(tf.sum(tf.mul(tf.grad(f)(k), dir)));
        expect(Math.abs(fd - an)).toBeLessThan(1e-2 * (1 + Math.abs(an)));
        tf.dispose([r.output, u, dir]);
      }
      tf.dispose([q, k, v]);
    }
    dy.dispose();
  });

  onHost('large, cancelling products (terms ~1e4, scores ~1e-3 apart): no key with p > 0 is skipped', async () => {
    // One query against keys A·c + s_j q/|q|² with q·c = 0: each score s_j is a small difference of
    // products of size ~A. Half the keys sit just above the sparsemax threshold (p ~ 1e-3), half far
    // below it. The rounding of the bounds (~1e-2 here) exceeds a margin that scales with θ₀ alone
    // (1e-4·(1 + |θ₀|) skips supported keys here and fails this test); V = I makes the output
    // the probability row itself, so a wrong skip shows as an exact 0 where the dense row is > 0.
    const [S, d, A] = [64, 8, 1e4];
    let wrong = 0, skipped = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const rnd = mulberry32(seed);
      const q = Array.from({ length: d }, (_, e) => (e % 2 ? -1 : 1) * (1 + 0.5 * rnd()));
      const c = q.map((_, e) => (e % 2 ? -q[e - 1] : q[e + 1]));
      const qq = q.reduce((s, x) => s + x * x, 0);
      const kd = new Float32Array(S * d);
      for (let j = 0; j < S; j++) {
        const s = j === 0 ? 1 : j % 2 ? 0.004 * rnd() : -1 - rnd();
        for (let e = 0; e < d; e++) kd[j * d + e] = A * c[e] + (s * q[e]) / qq;
      }
      const [qt, k] = [tf.tensor4d(q, [1, 1, 1, d]), tf.tensor4d(kd, [1, 1, S, d])];
      const v = tf.reshape(tf.eye(S), [1, 1, S, S]);
      const sp = blockSparseAttention(qt, k, v, {
        alpha: 2, blockSize: 1, queryBlockSize: 1, probeStride: 64, denseAbove: 1, scale: 1,
      });
      const dense = await values(attention(qt, k, v, { normaliser: 'sparsemax', scale: 1 }).output);
      const sparse = await values(sp.output);
      dense.forEach((p, j) => { if (p > 0 && sparse[j] === 0) wrong++; });
      expectClose(sparse, dense, 1e-5, 1e-4);
      skipped += sp.stats.skipRate[0] / 20;
      tf.dispose([qt, k, v, sp.output]);
    }
    expect(wrong).toBe(0);
    expect(skipped).toBeGreaterThan(0.4);   // the keys far below the threshold are still skipped
  });

  onHost('inside attention(): heads with zeros skip blocks; outputs and every gradient equal the dense path',
    async () => {
    // Heads: sparsemax, learned α, ASEntmax (learned β, γ), per-head AES with a running ζ̄ (α = 1.5,
    // frozen), softmax (no zeros: dense). T = S = 100 in the per-head layout, planned from 64 keys.
    const H = 5;
    const { q, k, v } = clusteredHeads(51, { B: 2, H, T: 100, d: 8, segment: 16, topics: 8, strength: 4 });
    const plan = planAttention(['sparsemax', 'learned', 'asentmax', 'aes', 'softmax'], { heads: H });
    const params = Object.fromEntries(plan.params.map((p, i) => [p.name, initialParam(p, H, 60 + i)]));
    const state = tf.tensor1d([NaN, NaN, NaN, 0.5, NaN]);
    const call = (skip: boolean) => (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, ...ps: tf.Tensor[]) =>
      attention(a, b, c, {
        plan, causal: true, layout: 'perHead', state, aesMode: 'frozen',
        params: Object.fromEntries(plan.params.map((p, i) => [p.name, ps[i]])),
        blockSkip: skip ? { ...blocks, minKeys: 64 } : false,
      }).output;
    const r = attention(q, k, v, { plan, causal: true, layout: 'perHead', state, aesMode: 'frozen', params,
      blockSkip: { ...blocks, minKeys: 64 } });
    const modes = r.blockSkip!.mode.slice(0, H);
    expect(modes).toEqual(['sparse', 'sparse', 'sparse', 'sparse', 'dense']);
    for (const h of [0, 1, 2, 3]) expect(r.blockSkip!.skipRate[h]).toBeGreaterThan(0.3);
    expect(r.blockSkip!.skipRate[4]).toBe(0);
    const inputs = [q, k, v, ...plan.params.map((p) => params[p.name])];
    const dense = call(false)(...(inputs as [tf.Tensor, tf.Tensor, tf.Tensor]));
    expectClose(await values(r.output), await values(dense), 2e-5, 1e-4);
    const dy = tf.randomNormal([2, H, 100, 8], 0, 1, 'float32', 52);
    const gs = tf.grads(call(true))(inputs, dy), gd = tf.grads(call(false))(inputs, dy);
    expect(plan.params.map((p) => p.name)).toEqual(['alpha', 'asentBeta', 'asentGamma']);
    for (const [i, g] of gs.entries()) expectClose(await values(g), await values(gd[i]), 1e-4, 1e-3);
    expect(Math.abs((await values(gs[3]))[1])).toBeGreaterThan(1e-4);  // a real α-gradient, learned head
    // Below minKeys, or with returnStats, nothing is planned.
    expect(attention(q, k, v, { plan, causal: true, state, params }).blockSkip).toBeUndefined();
    tf.dispose([r.output, dense, dy, state, ...gs, ...gd, ...Object.values(params)]);
  });

  onHost('inside attention() while training: heads the bounds cannot thin take the exact mask; every gradient equal',
    async () => {
    // Noisy clustered heads: zeros in whole blocks, bounds too loose to prove them (the plans keep > ½).
    const H = 4;
    const { q, k, v } = clusteredHeads(81, { B: 2, H, T: 100, d: 8, segment: 16, topics: 8, strength: 4, noise: 1.5 });
    const plan = planAttention(['sparsemax', 'learned', 'asentmax', 'entmax15'], { heads: H });
    const params = Object.fromEntries(plan.params.map((p, i) => [p.name, initialParam(p, H, 90 + i)]));
    let modes: string[] = [], kept: number[] = [];
    const call = (skip: object | false) => (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, ...ps: tf.Tensor[]) => {
      const r = attention(a, b, c, {
        plan, causal: true, layout: 'perHead', params: Object.fromEntries(plan.params.map((p, i) => [p.name, ps[i]])),
        blockSkip: skip && { ...blocks, minKeys: 64, ...skip },
      });
      [modes, kept] = [r.blockSkip?.mode ?? [], r.blockSkip?.keptBlocks ?? []];
      return r.output;
    };
    const inputs = [q, k, v, ...plan.params.map((p) => params[p.name])] as [tf.Tensor, tf.Tensor, tf.Tensor];
    call({ maskAbove: 1 })(...inputs).dispose();                   // no tape: the dense fallback
    const evalModes = modes;
    expect(evalModes.filter((m) => m === 'dense').length).toBeGreaterThanOrEqual(4);
    const dy = tf.randomNormal([2, H, 100, 8], 0, 1, 'float32', 82);
    const gs = tf.grads(call({ maskAbove: 1 }))(inputs, dy);
    // Recorded: each head the fallback ran dense now runs masked, keeping fewer than all its blocks.
    evalModes.forEach((m, i) => expect(modes[i]).toBe(m === 'dense' ? 'masked' : m));
    evalModes.forEach((m, i) => { if (m === 'dense') expect(kept[i]).toBeLessThan(1); });
    const gd = tf.grads(call(false))(inputs, dy);
    for (const [i, g] of gs.entries()) expectClose(await values(g), await values(gd[i]), 1e-4, 1e-3);
    // By default (maskAbove 0: off) nothing is masked while training: the dense fallback.
    tf.dispose(tf.grads(call({}))(inputs, dy));
    expect(modes).toEqual(evalModes);
    tf.dispose([q, k, v, dy, ...gs, ...gd, ...Object.values(params)]);
  });

  onHost("the pre-planning bound never exceeds the plan's kept share; heads it rules dense are not planned",
    async () => {
    const cfg = { ...BLOCK_SPARSE_DEFAULTS, ...blocks, causal: true } as Cfg;
    const last = Array.from({ length: 13 }, (_, a) => Math.min(100, 8 * (a + 1)) - 1);   // T = 100, blocks of 8
    for (const strength of [0, 4]) {                               // random (diffuse) and clustered heads
      const { q, k } = clusteredHeads(70 + strength, { B: 1, H: 1, T: 100, d: 8, segment: 16, topics: 8, strength });
      const [q2, k2] = [tf.reshape(q, [100, 8]), tf.reshape(k, [100, 8])] as tf.Tensor2D[];
      const qs = tf.mul(q2, 1 / Math.sqrt(8)) as tf.Tensor2D;
      for (const alpha of [1.2, 1.5, 2])
        for (const offset of [0, 20, null]) {
          const scores = tf.matMul(tf.gather(qs, last), k2, false, true);
          const bound = keptShareBound((scores.dataSync() as Float32Array).slice(), last, 100, alpha, offset, 8);
          const kept = planHead(qs, k2, alpha, offset, cfg).keptShare;
          expect(bound).toBeGreaterThan(0);
          expect(bound).toBeLessThanOrEqual(kept + 1e-12);
          if (strength === 4 && offset === 0 && alpha === 2) expect(bound).toBeLessThan(0.5);  // clustered: sparse
          scores.dispose();
        }
      tf.dispose([q, k, q2, k2, qs]);
    }
    // Diffuse learned-α heads at α = 1.5: attention() reports the bound (not a plan) and matches dense.
    const { q, k, v } = clusteredHeads(75, { B: 2, H: 2, T: 100, d: 8, segment: 16, topics: 8, strength: 0 });
    const plan = planAttention('learned', { heads: 2 });
    const params = { alpha: tf.zeros([2]) };
    const args = { plan, params, causal: true, layout: 'perHead' } as const;
    const r = attention(q, k, v, { ...args, blockSkip: { ...blocks, minKeys: 64 } });
    const dense = attention(q, k, v, { ...args, blockSkip: false });
    expect(r.blockSkip!.mode).toEqual(['dense', 'dense', 'dense', 'dense']);
    const qs = tf.mul(tf.reshape(q, [400, 8]), 1 / Math.sqrt(8)) as tf.Tensor2D;
    const k2 = tf.reshape(k, [400, 8]) as tf.Tensor2D;
    const want = [0, 1].map((h) => [0, 1].reduce((sum, b) => {
      const rows = tf.gather(qs, last.map((i) => (b * 2 + h) * 100 + i));
      const sc = tf.matMul(rows, tf.slice(k2, [(b * 2 + h) * 100, 0], [100, 8]), false, true);
      return sum + keptShareBound((sc.dataSync() as Float32Array).slice(), last, 100, 1.5, 0, 8) / 2;
    }, 0));
    expect(want.every((w) => w > 0.5)).toBe(true);
    expectClose(r.blockSkip!.keptBlocks, [...want, ...want], 1e-6);
    expectClose(await values(r.output), await values(dense.output), 1e-6);
    tf.dispose([q, k, v, r.output, dense.output, qs, k2, params.alpha]);
  });

  onHost('clear errors; no leaked tensors across forward and backward', async () => {
    const { q, k, v } = small(41);
    expect(() => blockSparseAttention(q, k, v, { alpha: 1 })).toThrow(/softmax/);
    expect(() => blockSparseAttention(q, k, v, { alpha: 0.5 })).toThrow(/alpha/);
    expect(() => blockSparseAttention(q, k, v, { alpha: [2] })).toThrow(/1 alphas for 2 heads/);
    expect(() => blockSparseAttention(q, k, v, { blockSize: 0 })).toThrow(/blockSize/);
    expect(() => blockSparseAttention(q, k, v, { denseAbove: 2 })).toThrow(/denseAbove/);
    expect(() => blockSparseAttention(tf.zeros([2, 8]), k, v)).toThrow(/expected q/);
    expect(() => blockSparseAttention(q, tf.slice(k, [0, 0, 0, 0], [2, 2, 100, 4]), v)).toThrow(/do not match/);
    expect(() => blockSparseAttention(tf.cast(q, 'int32'), k, v)).toThrow(/float32/);
    const g = tf.grads(
      (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => blockSparseAttention(a, b, c, { ...blocks, causal: true }).output,
    );
    await expectNoLeak(() => { tf.dispose(g([q, k, v])); tf.dispose(blockSparseAttention(q, k, v, blocks).output); });
  });

  it.runIf(backend === 'webgpu')('on a device: blockSparseAttention refuses clearly; attention() skips nothing',
    async () => {
    const { q, k, v } = small(61);
    expect(() => blockSparseAttention(q, k, v, blocks)).toThrow(/cannot do synchronously; use attention\(\) there/);
    const args = { normaliser: 'sparsemax', causal: true, layout: 'perHead' } as const;
    const r = attention(q, k, v, { ...args, blockSkip: { ...blocks, minKeys: 64 } });
    expect(r.blockSkip).toBeUndefined();
    expectClose(await values(r.output), await values(attention(q, k, v, args).output), 0);
    tf.dispose([q, k, v, r.output]);
  });
});
