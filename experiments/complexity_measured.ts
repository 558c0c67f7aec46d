/**
 * Experiment 1b: complexity measured on trained heads, not modelled. For every model found under
 * `--runs` whose task is `--data` (the length experiment's flip-flop runs by default; `--fresh` uses
 * untrained models of the listed normalisers instead, the quick smoke size), a sequence of n tokens
 * goes through the model with `keepQueries`/`keepCache`, and each layer's heads are attended again,
 * timed and counted:
 *
 *   dense softmax attention, dense α-entmax attention (the heads' own α), block-skipping α-entmax
 *   (`blockSparseAttention`, the heads' own α; its dense fallback per head as in the library),
 *   exact-mask α-entmax (`plan: 'scores'`: every score, then only the blocks holding a nonzero, in the
 *   products with V and the backward pass: what the oracle's mask buys in time), and the fixed
 *   strided √n pattern (`stridedAttention`, forward only)
 *
 * at n = 256 … 4096 (`--full` times up to 2048 and counts up to 4096). Per head: α, the normalised
 * softmax entropy S/ln(visible) and varentropy of its
 * scores, the block-skipping plan's skip rate and the number of scores it actually computed, and
 * `oracleKept`: the share of 64 × 64 block pairs holding a nonzero probability, the least any exact
 * block skipping could compute (whether a head's zeros fall in whole blocks at all).
 * Exponents of computed scores and of time against n, and the per-head cost share against ζ = α − 1
 * and against varentropy, are least-squares fits of these measurements; the n² FLOP count of a dense
 * head stays only as a reference line.
 *
 *   pnpm exp:complexity-measured            (quick: untrained sparsemax/entmax15 models, n ≤ 512)
 *   pnpm exp:complexity-measured --full     (trained flip-flop models of experiments/results/length)
 *   pnpm exp:complexity-measured --full --synthetic --out experiments/results/complexity_measured/synthetic
 *                                           (the second set: synthetic clustered heads, see SYNTHETIC)
 *
 * Writes results/complexity_measured/: heads.csv (model × layer × head × n), timing.csv (model ×
 * layer × n × method), fits.json, and the plots scores_vs_n, time_vs_n, skip_vs_entropy,
 * skip_vs_varentropy (SVG + PNG).
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  asentScale, attention, blockSparseAttention, clusteredHeads, entmax, logitStats, stridedAttention,
  type NormaliserSpec,
} from '@aes/attention';
import { GPT, loadCheckpoint, readTensors } from '@aes/models';
import { fileSystemIO } from '@aes/node';
import { openSource, type Source } from '@aes/train';
import { fitLine, RESULTS, startRun, timeIt, type Json } from './common.js';

const QUICK = {
  runs: '', fresh: 'sparsemax,entmax15', data: 'task:flipflop:len=48,vary=16', pos: '', lengths: '256,512',
  repeats: 1, models: '', timeUpTo: 0, synthetic: false,
};
/** The trained models with heads of α > 1, and softmax as the reference (the others have no zeros to skip). */
const FULL = { runs: join(RESULTS, 'length', 'runs'), fresh: '', pos: 'rope', lengths: '256,512,1024,2048,4096',
  repeats: 1, models: 'softmax,sparsemax,entmax15,learned,aes,asentmax', timeUpTo: 2048 };

type Model = { name: string; model: GPT; source: Source };

/** Trained models under `root` (one per run directory with a checkpoint), or fresh ones. */
async function models(cfg: typeof QUICK): Promise<Model[]> {
  const out: Model[] = [];
  if (cfg.runs) {
    if (!existsSync(cfg.runs))
      throw new Error(`complexity-measured: no runs at ${cfg.runs} (run pnpm exp:length first)`);
    for (const d of readdirSync(cfg.runs).sort()) {
      const ckpt = join(cfg.runs, d, 'ckpt');
      if (!existsSync(join(ckpt, 'model.json'))) continue;
      const conf = (JSON.parse(readFileSync(join(cfg.runs, d, 'config.json'), 'utf8')) as { train: Json }).train;
      if (!wanted(conf, cfg)) continue;
      const { model, tokenizer } = await loadCheckpoint(fileSystemIO(ckpt), ckpt);
      const source = await openSource(sourceArgs(String(conf.data ?? cfg.data), tokenizer));
      out.push({ name: String(conf.attention ?? d), model, source });
    }
  }
  for (const norm of cfg.fresh ? cfg.fresh.split(',') : []) {
    const source = await openSource(sourceArgs(cfg.data));
    const model = new GPT({ vocabSize: source.vocabSize, nLayer: 1, nHead: 4, nEmbd: 64, pos: 'rope',
      attention: norm as NormaliserSpec }, { seed: 1 });
    out.push({ name: `${norm} (untrained)`, model, source });
  }
  return out;
}

/**
 * Whether a run under `--runs` is measured: its task is `--data` and its position encoding `--pos`
 * (the length experiment's folder holds every task's runs), and, with `--models`, its normaliser is listed.
 */
export function wanted(conf: Json, cfg: { data: string; pos: string; models: string }): boolean {
  if ((cfg.data && conf.data !== cfg.data) || (cfg.pos && conf.pos !== cfg.pos)) return false;
  return !cfg.models || cfg.models.split(',').includes(String(conf.attention));
}

function sourceArgs(data: string, savedTokenizer?: Source['tokenizer']) {
  return { data, blockSize: 64, tokenizer: 'char' as const, valFraction: 0.1, evalBatches: 1, batch: 1, cacheDir: '',
    seed: 1, savedTokenizer };
}

/** One head's α > 1 per head from the model (AES: its running ζ̄), 1 for softmax-based heads. */
async function headAlphas(m: GPT, l: number): Promise<number[]> {
  return (await m.alphas())[l].map((a) => (Number.isFinite(a) ? a : 1));
}

/** Per-row query scale `[1, H, n, 1]`: ASEntmax heads' c (the library's `asentScale`), 1 elsewhere. */
function rowScales(m: GPT, l: number, n: number): tf.Tensor {
  return tf.tidy(() => {
    const p = (name: string, h: number) => tf.reshape(tf.slice(m.params.get(`h${l}.attn.${name}`)!, [h], [1]), []);
    const lnN = tf.log(tf.maximum(tf.range(1, n + 1), 2)).reshape([n, 1]);   // causal: row i sees i + 1 keys
    const per = m.plans[l].heads.map((head, h) =>
      head.kind === 'asentmax' ? asentScale(head.delta, p('asentBeta', h), p('asentGamma', h), lnN) : tf.ones([n, 1]));
    return tf.reshape(tf.stack(per), [1, per.length, n, 1]);
  });
}

export async function run(argv: string[]): Promise<Json> {
  const { cfg, writeCsv, writeJson, plot } = await startRun('complexity_measured', QUICK, FULL, argv);
  const heads: Json[] = [];
  const timing: Json[] = [];
  const started = performance.now();
  const lengths = cfg.lengths.split(',').map(Number);
  const done = (name: string, n: number) => console.log(`${name} n=${n}: ` +
    `${((performance.now() - started) / 1000).toFixed(0)} s, ${tf.memory().numTensors} tensors`);
  for (const set of cfg.synthetic ? SYNTHETIC : []) {
    for (const n of lengths) {
      const [q, k, v] = syntheticHeads(set, n);
      await measureLayer({ model: set.name, layer: 0, n, q, k, v, alphas: set.alphas, cfg, heads, timing });
      tf.dispose([q, k, v]);
      done(set.name, n);
    }
    writeCsv('heads.csv', heads);                                   // as it goes: a crash keeps what was done
    writeCsv('timing.csv', timing);
  }
  for (const { name, model, source } of cfg.synthetic ? [] : await models(cfg)) {
    for (const want of lengths) {
      // A validation sequence of at least `want` tokens (a task's length parameter sets its size), cut to want.
      let seq = source.evalAt(want, 1)[0].x[0];
      if (seq.length < want) seq = source.evalAt(Math.ceil((want * want) / seq.length), 1)[0].x[0];
      const ids = seq.slice(0, want);
      const n = ids.length;
      const x = tf.tensor2d([ids], [1, n], 'int32');
      const r = model.forward(x, { keepQueries: true, keepCache: true });
      for (let l = 0; l < model.config.nLayer; l++) {
        const scale = rowScales(model, l, n);
        const q = tf.mul(r.queries![l], scale);
        scale.dispose();
        const [k, v] = [r.present[l].k, r.present[l].v];
        const alphas = await headAlphas(model, l);
        await measureLayer({ model: name, layer: l, n, q, k, v, alphas, cfg, heads, timing });
        q.dispose();
      }
      tf.dispose([x, r.logits, ...r.queries!, ...r.present.flatMap((c) => [c.k, c.v])]);
      done(name, n);
    }
    model.dispose();
    writeCsv('heads.csv', heads);
    writeCsv('timing.csv', timing);
  }
  writeCsv('heads.csv', heads);
  writeCsv('timing.csv', timing);
  const fits = fitAll(heads, timing);
  writeJson('fits.json', fits);
  await charts(heads, timing, plot);
  return fits;
}

/**
 * The second set: synthetic heads (`clusteredHeads`: keys and queries drawn around a few topic
 * directions that recur in segments), one head per (α, noise), so that heads differ in α at one
 * noise level and in entropy / varentropy at one α.
 */
type SyntheticSet = { name: string; alphas: number[]; noise: number[] };
const SYNTHETIC: SyntheticSet[] = [
  { name: 'synthetic: α 1.25…2, noise 0.1', alphas: [1.25, 1.5, 1.75, 2], noise: [0.1, 0.1, 0.1, 0.1] },
  { name: 'synthetic: α 1.5, noise 0.1…1', alphas: [1.5, 1.5, 1.5, 1.5], noise: [0.1, 0.3, 0.6, 1] },
];
const SEGMENT = 128;

function syntheticHeads(set: SyntheticSet, n: number): tf.Tensor[] {
  const per = set.noise.map((noise, h) => clusteredHeads(h + 1, { T: n, d: 64, segment: SEGMENT, noise }));
  const out = ['q', 'k', 'v'].map((key) => tf.concat(per.map((p) => p[key as 'q' | 'k' | 'v']), 1));
  tf.dispose(per.flatMap((p) => [p.q, p.k, p.v]));
  return out;
}

type LayerArgs = {
  model: string; layer: number; n: number; q: tf.Tensor; k: tf.Tensor; v: tf.Tensor; alphas: number[];
  cfg: typeof QUICK; heads: Json[]; timing: Json[];
};

/** Counts (block-skipping plan), statistics and timings of one layer's heads `[1, H, n, d]`. */
async function measureLayer({ model: name, layer: l, n, q, k, v, alphas, cfg, heads, timing }: LayerArgs) {
  const [, H, , d] = q.shape as number[];
  const sparseHeads = alphas.map((a, h) => [a, h]).filter(([a]) => a > 1).map(([, h]) => h);
  const sub = (t: tf.Tensor) => tf.gather(t, sparseHeads, 1);
  const [qs, ks, vs] = sparseHeads.length ? [sub(q), sub(k), sub(v)] : [q, k, v];
  const sAlphas = sparseHeads.map((h) => alphas[h]);
  const plan = sparseHeads.length ? blockSparseAttention(qs, ks, vs,
    { alpha: sAlphas, causal: true, blockSize: BLOCK, queryBlockSize: BLOCK }) : null;
  plan?.output.dispose();
  // Softmax entropy / ln(visible) and varentropy of each head's scores (one head at a time: memory);
  // for heads with α > 1 also their probabilities, for the block pairs an oracle would have to keep.
  const stats: Array<{ entropy: number; varentropy: number; oracleKept: number }> = [];
  for (let h = 0; h < H; h++) {
    const means = tf.tidy(() => {
      const causal = tf.cast(tf.linalg.bandPart(tf.ones([n, n]), -1, 0), 'bool');
      const at = (t: tf.Tensor) => tf.reshape(tf.slice(t, [0, h, 0, 0], [1, 1, n, d]), [n, d]);
      const s = tf.where(causal, tf.div(tf.matMul(at(q), at(k), false, true), Math.sqrt(d)), -Infinity);
      const st = logitStats(s);
      const logN = tf.log(tf.maximum(tf.range(1, n + 1), 2));
      const probs = alphas[h] > 1 ? [entmax(s, alphas[h])] : [];
      return [tf.mean(tf.div(st.entropy, logN)), tf.mean(st.varentropy), ...probs];
    });
    const [[entropy], [varentropy], p] = await readTensors(means);
    tf.dispose(means);
    stats.push({ entropy, varentropy, oracleKept: p ? liveBlockShare(p, n, BLOCK) : 1 });
  }
  const visible = (n * (n + 1)) / 2;
  alphas.forEach((alpha, h) => {
    const i = sparseHeads.indexOf(h);
    const skip = i >= 0 ? plan!.stats.skipRate[i] : 0;
    heads.push({ model: name, layer: l, head: h, n, alpha, entropy: stats[h].entropy, varentropy: stats[h].varentropy,
      skipRate: skip, keptBlocks: i >= 0 ? plan!.stats.keptBlocks[i] : 1, oracleKept: stats[h].oracleKept,
      mode: i >= 0 ? plan!.stats.mode[i] : 'softmax',
      computed: Math.round((1 - skip) * visible), visible });
  });
  // Timings of the layer: every head, each method; the sparse ones on the heads with α > 1.
  const specs: NormaliserSpec[] = alphas.map((a) => (a > 1 ? { alpha: a } : 'softmax'));
  const fwdBwd = (f: (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor) => () => {
    const dy = tf.onesLike(v);
    const g = tf.grads(f)([q, k, v], dy);
    dy.dispose();
    return g;
  };
  const methods: Array<[string, (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor, boolean]> = [
    ['dense softmax', (a, b, c) => attention(a, b, c, { causal: true }).output, true],
    ['dense α-entmax', (a, b, c) => attention(a, b, c, { causal: true, normaliser: specs }).output, true],
    ['block-skipping α-entmax', (a, b, c) => blockSparseOrDense(a, b, c, alphas), true],
    ['exact-mask α-entmax', (a, b, c) => blockSparseOrDense(a, b, c, alphas, 'scores'), true],
    ['strided √n', (a, b, c) => strided(a, b, c), false],
  ];
  // (`--time-up-to N`: lengths above N are counted, not timed: on 2 cores one layer's timings at
  // n = 4096 take minutes.)
  for (const [method, f, grads] of cfg.timeUpTo && n > cfg.timeUpTo ? [] : methods) {
    const fwd = await timeIt(() => f(q, k, v), cfg.repeats);
    const both = grads ? await timeIt(fwdBwd(f), cfg.repeats) : NaN;
    timing.push({ model: name, layer: l, n, method, fwdMs: fwd, fwdBwdMs: both });
  }
  if (sparseHeads.length) tf.dispose([qs, ks, vs]);
}

/** The key and query block size of `blockSparseAttention` (its default), for the oracle's count. */
const BLOCK = 64;

/**
 * The share of the causally visible (query block, key block) pairs of one head's probabilities p
 * (`[n, n]`, row-major, blocks of `bs`) that hold a nonzero entry: the least that any exact block
 * skipping must compute at that block size, whatever its bound (an oracle that knew p beforehand).
 */
export function liveBlockShare(p: ArrayLike<number>, n: number, bs: number): number {
  const blocks = Math.ceil(n / bs);
  let visible = 0, live = 0;
  for (let qb = 0; qb < blocks; qb++) {
    for (let kb = 0; kb <= qb; kb++) {
      visible++;
      search: for (let i = qb * bs; i < Math.min((qb + 1) * bs, n); i++) {
        for (let j = kb * bs; j < Math.min((kb + 1) * bs, i + 1); j++) {
          if (p[i * n + j] !== 0) { live++; break search; }
        }
      }
    }
  }
  return live / visible;
}

/** Block skipping on the heads with α > 1, softmax attention on the others, concatenated by head. */
function blockSparseOrDense(
  q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, alphas: number[], plan: 'bound' | 'scores' = 'bound',
): tf.Tensor {
  const H = alphas.length;
  const split = (t: tf.Tensor) => tf.split(t, H, 1);
  const [qs, ks, vs] = [split(q), split(k), split(v)];
  return tf.concat(alphas.map((a, h) => (a > 1
    ? blockSparseAttention(qs[h], ks[h], vs[h], { alpha: a, causal: true, plan }).output
    : attention(qs[h], ks[h], vs[h], { causal: true }).output)), 1);
}

function strided(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor): tf.Tensor {
  const [, H, n, d] = q.shape as number[];
  const heads = (t: tf.Tensor) => tf.unstack(tf.reshape(t, [H, n, d])) as tf.Tensor2D[];
  const [qs, ks, vs] = [heads(q), heads(k), heads(v)];
  return tf.stack(qs.map((qh, i) => stridedAttention(qh, ks[i], vs[i])));
}

/** Exponents of measured work and time against n; cost share against ζ = α − 1 and varentropy. */
function fitAll(heads: Json[], timing: Json[]): Json {
  const slope = (rows: Json[], x: string, y: string) => {
    const ok = rows.filter((r) => (r[x] as number) > 0 && (r[y] as number) > 0);
    return ok.length >= 2 && new Set(ok.map((r) => r[x])).size >= 2
      ? fitLine(ok.map((r) => Math.log(r[x] as number)), ok.map((r) => Math.log(r[y] as number))).slope : NaN;
  };
  const models = [...new Set(heads.map((r) => r.model as string))];
  const work = Object.fromEntries(models.map((m) => {
    const per = [...new Set(heads.filter((r) => r.model === m).map((r) => r.n as number))].map((n) => ({
      n, computed: heads.filter((r) => r.model === m && r.n === n).reduce((a, r) => a + (r.computed as number), 0),
    }));
    return [m, slope(per, 'n', 'computed')];
  }));
  const methods = [...new Set(timing.map((r) => r.method as string))];
  const time = Object.fromEntries(models.map((m) => [m, Object.fromEntries(methods.map((method) => {
    const per = [...new Set(timing.map((r) => r.n as number))].map((n) => {
      const rows = timing.filter((r) => r.model === m && r.method === method && r.n === n);
      const sum = (key: string) => rows.reduce((a, r) => a + (r[key] as number), 0);
      return { n, fwd: sum('fwdMs'), both: sum('fwdBwdMs') };
    });
    return [method, { fwd: slope(per, 'n', 'fwd'), fwdBwd: slope(per, 'n', 'both') }];
  }))]));
  const nMax = Math.max(...heads.map((r) => r.n as number));
  const last = heads.filter((r) => r.n === nMax && (r.alpha as number) > 1)
    .map((r): Json => ({ ...r, zeta: (r.alpha as number) - 1, share: (r.computed as number) / (r.visible as number) }));
  // per model, the mean over its heads with α > 1 at the largest n
  const meanOf = (key: string) => Object.fromEntries(models.map((m) => {
    const rs = last.filter((r) => r.model === m);
    return [m, rs.length ? rs.reduce((a, r) => a + (r[key] as number), 0) / rs.length : NaN];
  }));
  return {
    work, time, n: nMax,
    costVsZeta: { slope: slope(last, 'zeta', 'share'), heads: last.length, claim: -1 },
    costVsVarentropy: { slope: slope(last, 'varentropy', 'share'), heads: last.length, claim: -1 },
    skipRate: meanOf('skipRate'),
    oracleKept: meanOf('oracleKept'),
  };
}

async function charts(heads: Json[], timing: Json[], plot: (f: string, s: never) => Promise<string[]>) {
  const logXY = (title: string, values: Json[], y: string, color: string, yTitle: string) => ({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json', width: 460, height: 280, title, data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'n', type: 'quantitative', scale: { type: 'log' }, title: 'keys n' },
      y: { field: y, type: 'quantitative', scale: { type: 'log' }, title: yTitle },
      color: { field: color, type: 'nominal' }, strokeDash: { field: 'kind', type: 'nominal' },
    },
  }) as never;
  const ns = [...new Set(heads.map((r) => r.n as number))];
  const models = [...new Set(heads.map((r) => r.model as string))];
  const perHead = (m: string, n: number) => heads.filter((r) => r.model === m && r.n === n);
  const scores = models.flatMap((m) => ns.map((n) => {
    const hs = perHead(m, n);
    return { n, model: m, kind: 'measured', scores: hs.reduce((a, r) => a + (r.computed as number), 0) / hs.length };
  }));
  const guides = ns.flatMap((n) => [
    { n, model: 'n(n+1)/2 (dense causal)', kind: 'guide', scores: (n * (n + 1)) / 2 },
    { n, model: 'n√n', kind: 'guide', scores: n * Math.sqrt(n) },
  ]);
  await plot('scores_vs_n', logXY('Scores computed per head (block-skipping plan), trained heads',
    [...scores, ...guides], 'scores', 'model', 'scores per head'));
  const t = timing.map((r) => ({ ...r, kind: 'measured', label: `${r.model}: ${r.method}` }));
  await plot('time_vs_n', logXY('Forward time per layer', t, 'fwdMs', 'label', 'ms'));
  const scatter = (x: string, title: string) => ({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json', width: 460, height: 280, title,
    data: { values: heads.filter((r) => (r.alpha as number) > 1) }, mark: { type: 'point' },
    encoding: {
      x: { field: x, type: 'quantitative',
        title: x === 'entropy' ? 'entropy / ln(visible keys)' : 'varentropy (nats²)' },
      y: { field: 'skipRate', type: 'quantitative', title: 'skip rate' },
      color: { field: 'model', type: 'nominal' }, shape: { field: 'n', type: 'ordinal' },
    },
  }) as never;
  await plot('skip_vs_entropy', scatter('entropy', 'Skip rate against the head\'s normalised entropy'));
  await plot('skip_vs_varentropy', scatter('varentropy', 'Skip rate against the head\'s varentropy'));
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  run(process.argv.slice(2)).then((f) => console.log(JSON.stringify(f, null, 2)), (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
