/**
 * One prepared GPU run: every op and attention() on the GPU backend against the cpu backend on the
 * same inputs (values and gradients), then timings of attention on the GPU backend.
 * The fused α-entmax kernels (entmaxFused; WGSL on webgpu, their float32 mirror on cpu) are checked
 * against the mirror and against entmaxBisect on cpu, forward and gradients (x and α), on short,
 * long (registers / memory) and masked rows; attention() uses them on webgpu. Timings compare softmax
 * attention with the plain tfjs composite (matMul, scale, mask add, tf.softmax, matMul; mask made
 * once), the composite entmax paths (α = 1.5 by bisection, exact entmax15; the fused kernels
 * unregistered for those calls), the fused map between batched products (flash unregistered) and
 * the flash kernels (flashEntmaxAttention, attention()'s path). Targets: flash ≤ 1.5× our softmax attention,
 * ours ≤ 1.5× the plain composite (n ∈ {1024, 4096, 8192}, 8 heads, d = 64, causal, fp32).
 * Bundle and run on a GPU machine (scripts/gpu_bundle.sh; the training bench goes in the same bundle):
 *   bash scripts/gpu_bundle.sh packages/attention/bench/gpu_check.ts packages/train/bench/train.ts
 *   bash .gpu/run.sh [--backend webgpu] [--json out.json]
 *   bash .gpu/run.sh train --backend webgpu --corpus experiments/data/corpus.txt [--json train.json]
 * Without a GPU adapter it says so and exits 2 (try `--backend wasm` to dry-run the checks here).
 */
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import {
  attention,
  causalMask,
  entmax15,
  entmaxBisect,
  entmaxBisectLoss,
  entmaxFused,
  flashAttentionAvailable,
  flashEntmaxAttention,
  fusedEntmaxAvailable,
  logitStats,
  registerFlashAttention,
  registerFusedEntmax,
  softmax,
  sparsemax,
  sparsemaxLoss,
  unregisterFlashAttention,
  unregisterFusedEntmax,
  type NormaliserSpec,
} from '../src/index.js';
import { selectBackend, type BackendName } from '@aes/node';
import { parseFlags, summary, timeInterleaved } from './util.js';

const CONFIG = { backend: 'webgpu', ref: 'cpu', lengths: '1024,4096,8192', heads: 8, dim: 64, repeats: 5, json: '' };

/** `data`: which host inputs (rows [64, 300], long rows, attention q/k/v/dy); `fused`: needs the fused kernels. */
type Case = {
  name: string;
  data?: 'rows' | 'long' | 'attention';
  fused?: boolean;
  run: (inputs: tf.Tensor[]) => tf.Tensor[];
};
const grad = (f: (x: tf.Tensor) => tf.Tensor) => (x: tf.Tensor, dy: tf.Tensor) => tf.grad(f)(x, dy);
const ATT: NormaliserSpec[] = ['softmax', 'sparsemax', 'entmax15', 'alpha=1.3', 'learned', 'alpha=2.5'];

/** Each case maps the same host inputs to outputs, run once per backend. */
const CASES: Case[] = [
  ...(
    [
      ['softmax', softmax],
      ['sparsemax', sparsemax],
      ['entmax15', entmax15],
      ['entmaxBisect(1.5)', (x: tf.Tensor) => entmaxBisect(x, 1.5)],
    ] as const
  ).map(([name, f]): Case => ({ name, run: ([x, dy]) => [f(x), grad(f)(x, dy)] })),
  {
    name: 'entmaxBisect(per-row α) + dα',
    run: ([x, dy]) => {
      const alpha = tf.linspace(1.05, 2.5, x.shape[0]).reshape([x.shape[0], 1]);
      const [gx, ga] = tf.grads((z: tf.Tensor, a: tf.Tensor) => tf.sum(tf.mul(entmaxBisect(z, a), dy)))([x, alpha]);
      return [entmaxBisect(x, alpha), gx, ga];
    },
  },
  {
    name: 'losses + logitStats',
    run: ([x]) => {
      const y = tf.tensor1d(
        Array.from({ length: x.shape[0] as number }, (_, i) => i % (x.shape[1] as number)),
        'int32',
      );
      const st = logitStats(x);
      return [
        sparsemaxLoss(x, y),
        entmaxBisectLoss(x, y, 1.5),
        st.entropy,
        st.varentropy,
        tf.grad((z: tf.Tensor) => tf.sum(sparsemaxLoss(z, y)))(x),
      ];
    },
  },
  ...FUSED_CASES(),
  {
    name: 'attention (6 normalisers) + grads',
    data: 'attention',
    run: ([q, k, v, dy]) => {
      const alphaRaw = tf.linspace(-1, 1, 6);
      const f = (qq: tf.Tensor) => attention(qq, k, v, { causal: true, normaliser: ATT, alphaRaw }).output;
      return [f(q), tf.grad(f)(q, dy)];
    },
  },
  {
    name: 'attention with AES heads (state on the device) + grads',
    data: 'attention',
    run: ([q, k, v, dy]) => {
      const specs: NormaliserSpec[] = [
        'aes',
        { aes: { varentropyThreshold: 0 } },
        { aes: { gradient: 'schedule' } },
        { aes: { measureOn: 'output' } },
        'softmax',
        'sparsemax',
      ];
      const out: tf.Tensor[] = [];
      let state: tf.Tensor | undefined;
      for (const scale of [1, 3]) {
        // two calls: the second uses the state
        const qs = tf.mul(q, scale);
        const f = (qq: tf.Tensor) => attention(qq, k, v, { causal: true, normaliser: specs, state }).output;
        const r = attention(qs, k, v, { causal: true, normaliser: specs, state });
        out.push(r.output, tf.grad(f)(qs, dy));
        state = r.state!;
        out.push(state);
      }
      return out;
    },
  },
];

/**
 * entmaxFused against the cpu backend's (the mirror of the WGSL), and against entmaxBisect on cpu
 * (an independent solver). Per-row α spans the ν- and w-forms and the exact α = 1.5 and 2 finishes.
 */
function FUSED_CASES(): Case[] {
  const perRow = (x: tf.Tensor) =>
    tf.reshape(
      tf
        .tensor1d([1.01, 1.3, 1.5, 2, 2.5, 4])
        .tile([Math.ceil(x.shape[0] / 6)])
        .slice(0, x.shape[0]),
      [x.shape[0], 1],
    );
  const withGrads =
    (f: (z: tf.Tensor, a: tf.Tensor) => tf.Tensor) =>
    ([x, dy]: tf.Tensor[]) => {
      const alpha = perRow(x);
      const [gx, ga] = tf.grads((z: tf.Tensor, a: tf.Tensor) => tf.sum(tf.mul(f(z, a), dy)))([x, alpha]);
      return [f(x, alpha), gx, ga];
    };
  // Causal-style masks, one fully masked row and one NaN row.
  const masked = (x: tf.Tensor) => {
    const [R, n] = x.shape;
    const keep = tf.lessEqual(
      tf.range(0, n).reshape([1, n]),
      tf
        .range(0, R)
        .reshape([R, 1])
        .mul(Math.floor(n / R)),
    );
    const rowMask = tf
      .tensor1d(
        Array.from({ length: R }, (_, i) => (i === 3 ? 0 : 1)),
        'bool',
      )
      .reshape([R, 1]);
    const y = tf.where(tf.logicalAnd(keep, rowMask), x, tf.fill(x.shape, -Infinity));
    return tf.where(
      tf.equal(tf.range(0, R).reshape([R, 1]), 5).logicalAnd(tf.equal(tf.range(0, n).reshape([1, n]), 0)),
      tf.fill(x.shape, NaN),
      y,
    );
  };
  return [
    {
      name: 'entmaxFused(1.5) + dx',
      fused: true,
      run: ([x, dy]) => [entmaxFused(x, 1.5), grad((z) => entmaxFused(z, 1.5))(x, dy)],
    },
    { name: 'entmaxFused(per-row α) + dx, dα', fused: true, run: withGrads(entmaxFused) },
    { name: 'entmaxFused long rows (4096, 9000) + grads', data: 'long', fused: true, run: withGrads(entmaxFused) },
    {
      name: 'entmaxFused masked/NaN rows + grads',
      fused: true,
      run: ([x, dy]) => withGrads(entmaxFused)([masked(x), dy]),
    },
    {
      // webgpu: the flash kernels; cpu: scores, causal mask, entmaxBisect and values (the dense path)
      name: 'flash attention (α per head, causal) + grads q, k, v, α',
      data: 'attention',
      fused: true,
      run: ([q, k, v, dy]) => {
        const H = q.shape[1]!;
        const alpha = tf.tensor(
          Array.from({ length: H }, (_, h) => 1.2 + (0.8 * h) / (H - 1)),
          [H, 1, 1],
        );
        const f = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, a: tf.Tensor) => {
          if (tf.getBackend() !== 'cpu') return flashEntmaxAttention(qq, kk, vv, { alpha: a, causal: true });
          const [T, S] = [qq.shape[2]!, kk.shape[2]!];
          const s = tf.add(
            tf.mul(tf.matMul(qq, kk, false, true), 1 / Math.sqrt(qq.shape[3]!)),
            causalMask(T, S, S - T)!,
          );
          return tf.matMul(entmaxBisect(s, tf.reshape(a, [1, H, 1, 1])), vv);
        };
        const g = tf.grads((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, a: tf.Tensor) =>
          tf.sum(tf.mul(f(qq, kk, vv, a), dy)),
        )([q, k, v, alpha]);
        return [f(q, k, v, alpha), ...g];
      },
    },
    {
      name: 'entmaxFused vs entmaxBisect(cpu) + grads',
      fused: true,
      run: withGrads((z, a) => (tf.getBackend() === 'cpu' ? entmaxBisect(z, a) : entmaxFused(z, a))),
    },
  ];
}

function inputs(seed: number): Record<'rows' | 'long' | 'attention', Array<[number[], number[]]>> {
  const R = 64,
    n = 300,
    shape = [2, 6, 32, 16];
  const g = (s: number, sh: number[], scale = 1): [number[], number[]] => [
    Array.from(tf.randomNormal(sh, 0, scale, 'float32', seed + s).dataSync()),
    sh,
  ];
  return {
    rows: [g(1, [R, n], 3), g(2, [R, n])],
    long: [g(7, [12, 4096], 2), g(8, [12, 4096]), g(9, [6, 9000], 2), g(10, [6, 9000])],
    attention: [g(3, shape), g(4, shape), g(5, shape), g(6, shape)],
  };
}

/** Each case's outputs as arrays, or null where the case needs the fused kernels and the backend has none. */
async function runAll(backend: string, host: ReturnType<typeof inputs>): Promise<Array<number[][] | null>> {
  await selectBackend(backend as BackendName);
  const results: Array<number[][] | null> = [];
  for (const c of CASES) {
    if (c.fused && !fusedEntmaxAvailable()) {
      results.push(null);
      continue;
    }
    const data = host[c.data ?? 'rows'];
    const groups = c.data === 'long' ? [data.slice(0, 2), data.slice(2)] : [data]; // long: two widths
    const outs = groups.map((gr) => tf.tidy(() => c.run(gr.map(([v, sh]) => tf.tensor(v, sh)))));
    results.push(await Promise.all(outs.flat().map(async (t) => Array.from(await t.data())))); // no dataSync on webgpu
    tf.dispose(outs.flat());
  }
  return results;
}

/**
 * Runs `f` on the path named: 'composite' with the flash and fused kernels of webgpu unregistered
 * (attention() then makes the scores and the map with plain ops), 'fused' with only the flash
 * kernels unregistered (the batched products around the fused map), any other as registered.
 */
function onPath<T>(path: string, f: () => T): T {
  if (path !== 'composite' && path !== 'fused') return f();
  unregisterFlashAttention();
  if (path === 'composite') unregisterFusedEntmax('webgpu');
  try {
    return f();
  } finally {
    registerFusedEntmax(['webgpu']);
    registerFlashAttention();
  }
}

async function main() {
  const cfg = parseFlags(process.argv.slice(2), CONFIG);
  const host = inputs(0);
  const ref = await runAll(cfg.ref, host);
  let gpu;
  try {
    gpu = await selectBackend(cfg.backend as BackendName);
  } catch (e) {
    console.log(e instanceof Error ? e.message : e);
    process.exit(2);
  }
  console.log(`GPU backend: ${gpu.name} (${gpu.detail}); reference: ${cfg.ref}`);
  const got = await runAll(cfg.backend, host);
  const checks = CASES.map((c, i) => {
    const gotI = got[i];
    if (!gotI || !ref[i]) {
      console.log(`skip ${c.name.padEnd(44)} (no fused kernel on ${cfg.backend})`);
      return { name: c.name, maxRelErr: 0, skipped: true };
    }
    const err = Math.max(
      ...gotI.map((out, j) =>
        Math.max(
          ...out.map(
            (x, t) =>
              Math.abs(x - ref[i]![j][t]) / (1 + Math.abs(ref[i]![j][t])) ||
              (Number.isNaN(x) !== Number.isNaN(ref[i]![j][t]) ? Infinity : 0),
          ),
        ),
      ),
    );
    console.log(`${err < 1e-3 ? 'ok  ' : 'FAIL'} ${c.name.padEnd(44)} max rel err ${err.toExponential(2)}`);
    return { name: c.name, maxRelErr: err };
  });
  // Timings of attention on the GPU backend: softmax, the composite entmax paths, the fused path.
  const fusedHere = cfg.backend === 'webgpu' && fusedEntmaxAvailable() && flashAttentionAvailable();
  const VARIANTS: Array<{ name: string; spec: NormaliserSpec; path: 'flash' | 'fused' | 'composite' | 'plain' | '-' }> =
    [
      { name: 'softmax', spec: 'softmax', path: '-' },
      { name: 'plain tfjs composite', spec: 'softmax', path: 'plain' },
      { name: 'entmax15 exact sort', spec: 'entmax15', path: 'composite' },
      { name: 'bisect α=1.5 (learned)', spec: 'learned', path: 'composite' },
      { name: 'fused α=1.5', spec: 'entmax15', path: 'fused' },
      { name: 'fused learned α=1.5 (+dα)', spec: 'learned', path: 'fused' },
      { name: 'fused sparsemax', spec: 'sparsemax', path: 'fused' },
      { name: 'flash α=1.5', spec: 'entmax15', path: 'flash' },
      { name: 'flash learned α=1.5 (+dα)', spec: 'learned', path: 'flash' },
      { name: 'flash sparsemax', spec: 'sparsemax', path: 'flash' },
    ];
  const variants = VARIANTS.filter((vr) => (vr.path !== 'fused' && vr.path !== 'flash') || fusedHere);
  const timings: Array<Record<string, number | string | boolean>> = [];
  const H = cfg.heads,
    d = cfg.dim;
  for (const n of cfg.lengths.split(',').map(Number)) {
    const [q, k, v, dy] = [1, 2, 3, 4].map((s) => tf.randomNormal([1, H, n, d], 0, 1, 'float32', s));
    const alphaRaw = tf.zeros([H]); // learned α = 1 + sigmoid(0) = 1.5
    const mask = causalMask(n, n, 0)!; // the plain composite's, made once
    const f = (spec: NormaliserSpec, path?: string) => (qq: tf.Tensor) =>
      path === 'plain'
        ? tf.matMul(tf.softmax(tf.add(tf.mul(tf.matMul(qq, k, false, true), 1 / Math.sqrt(d)), mask)), v)
        : attention(qq, k, v, { causal: true, normaliser: spec, alphaRaw }).output;
    const wrap =
      <T>(vr: (typeof VARIANTS)[number], g: () => T) =>
      () =>
        onPath(vr.path, g);
    const fwd = (
      await timeInterleaved(
        variants.map((vr) => wrap(vr, () => f(vr.spec, vr.path)(q))),
        cfg.repeats,
        1,
      )
    ).map(summary);
    const both = (
      await timeInterleaved(
        variants.map((vr) => {
          const g = tf.grad(f(vr.spec, vr.path));
          return wrap(vr, () => g(q, dy));
        }),
        cfg.repeats,
        1,
      )
    ).map(summary);
    variants.forEach((vr, i) =>
      timings.push({
        n,
        normaliser: vr.name,
        path: vr.path,
        fwdMs: fwd[i].median,
        fwdIqr: fwd[i].iqr,
        fwdBwdMs: both[i].median,
        fwdBwdIqr: both[i].iqr,
        fwdRatio: fwd[i].median / fwd[0].median,
        fwdBwdRatio: both[i].median / both[0].median,
      }),
    );
    tf.dispose([q, k, v, dy, alphaRaw, mask]);
  }
  console.log(
    `\nattention timings, ${cfg.backend}, B=1 H=${H} d=${d} causal, median of ${cfg.repeats} (ratio to softmax ` +
      `attention)`,
  );
  console.log(
    `${'n'.padStart(5)}  ${'normaliser'.padEnd(26)} ${'fwd ms'.padStart(9)} ${'×'.padStart(6)} ` +
      `${'fwd+bwd ms'.padStart(11)} ${'×'.padStart(6)}`,
  );
  for (const t of timings) {
    const num = (x: number | string | boolean, w: number, dp: number) => (x as number).toFixed(dp).padStart(w);
    console.log(
      `${String(t.n).padStart(5)}  ${String(t.normaliser).padEnd(26)} ${num(t.fwdMs, 9, 1)} ` +
        `${num(t.fwdRatio, 6, 2)} ${num(t.fwdBwdMs, 11, 1)} ${num(t.fwdBwdRatio, 6, 2)}`,
    );
  }
  // Targets (issue 17): fused (flash) α-entmax ≤ 1.5× our softmax attention; ours ≤ 1.5× the plain composite.
  const plainOf = (n: unknown) => timings.find((t) => t.n === n && t.path === 'plain')!;
  const target = timings
    .filter((t) => ['flash α=1.5', 'flash learned α=1.5 (+dα)', 'softmax'].includes(t.normaliser as string))
    .map((t) => {
      const vsPlain = t.normaliser === 'softmax';
      const base = vsPlain ? plainOf(t.n) : { fwdRatio: 1, fwdBwdRatio: 1 };
      const [fwd, both] = [
        (t.fwdRatio as number) / (base.fwdRatio as number),
        (t.fwdBwdRatio as number) / (base.fwdBwdRatio as number),
      ];
      return {
        n: t.n,
        normaliser: t.normaliser,
        against: vsPlain ? 'plain composite' : 'softmax attention',
        fwdRatio: fwd,
        fwdBwdRatio: both,
        met: fwd <= 1.5 && both <= 1.5,
      };
    });
  for (const t of target) {
    console.log(
      `target ${t.normaliser} ≤ 1.5× ${t.against}, n=${t.n}: ${t.fwdRatio.toFixed(2)}× / ` +
        `${t.fwdBwdRatio.toFixed(2)}× ${t.met ? 'met' : 'NOT met'}`,
    );
  }
  if (cfg.json)
    writeFileSync(cfg.json, JSON.stringify({ backend: gpu, ref: cfg.ref, checks, timings, targets: target }, null, 2));
  process.exit(checks.every((c) => c.maxRelErr < 1e-3) ? 0 : 1);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
