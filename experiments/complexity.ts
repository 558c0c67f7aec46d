/**
 * Experiment 1: complexity against sparsity. Tests the seed's claims that attention cost falls as
 * sparsity rises — "∝ 1/ζ", "∝ 1/varentropy" and "O(n√n) instead of O(n²)" — against what an
 * α-entmax row really needs.
 *
 *   pnpm exp:complexity            (quick: n ≤ 2048 for supports, timings to 1024)
 *   pnpm exp:complexity --full     (n ≤ 4096 for both)
 *
 * (a) support size per row of softmax / entmax(1.25) / entmax15 / sparsemax / entmax(3) / AES on
 *     Gaussian scores at several temperatures (entropy levels), n from 128 up;
 * (b) the work of a sparsity-aware kernel per head with T = n queries, in FLOPs: all n·n scores
 *     (2n²d — the threshold of a row needs every score of it), a threshold search (n² log₂ k₀ for a
 *     partial sort), and the products with V on the support only (2·Σk·d); against dense attention
 *     (4n²d) and a fixed strided pattern (Child et al. 2019, stride √n, ≤ 2√n keys per query:
 *     4n·2√n·d); plus measured times of softmax, sparsemax and the strided kernel;
 * (c) fitted exponents γ of cost ~ n^γ; (d) cost against ζ = α − 1 and against varentropy.
 */
import * as tf from '@tensorflow/tfjs';
import { pathToFileURL } from 'node:url';
import { aesSchedule, attention, entmax, logitStats, probStats, stridedAttention, supportSize } from '@aes/attention';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint, readTensors } from '@aes/models';
import { fitLine, repoCorpus, RESULTS, startRun, timeIt, type Json } from './common.js';
import { fileSystemIO } from '@aes/node';

/** Trained text models of experiment 2 (seed 0), when they exist: their heads' supports are measured too. */
const TRAINED = join(RESULTS, 'training', 'runs', 'text');
const QUICK = {
  lengths: '128,256,512,1024,2048',
  timeLengths: '128,256,512,1024',
  scales: '0.5,1,2,4',
  rows: 64,
  dim: 64,
  repeats: 3,
  seed: 1,
  trained: TRAINED,
};
const FULL = {
  lengths: '128,256,512,1024,2048,4096',
  timeLengths: '128,256,512,1024,2048,4096',
  rows: 128,
  repeats: 5,
};
const MAPS: Array<[string, number | 'aes']> = [
  ['softmax', 1],
  ['entmax α=1.25', 1.25],
  ['entmax15', 1.5],
  ['sparsemax', 2],
  ['entmax α=3', 3],
  ['AES', 'aes'],
];
const FIRST_K = 32;                                                   // partial-sort width of the exact maps

/** Mean support, entropy and varentropy of a map on Gaussian rows z = scale·N(0, 1), `[rows, n]`. */
async function supportOf(
  rows: number,
  n: number,
  scale: number,
  alpha: number | 'aes',
  seed: number,
): Promise<Record<string, number>> {
  const z = tf.tidy(() => tf.mul(tf.randomNormal([rows, n], 0, 1, 'float32', seed), scale));
  let a = alpha;
  if (a === 'aes') {
    // AES: one α for the whole "head"
    const sBarT = tf.tidy(() => tf.mean(tf.div(logitStats(z).entropy, Math.log(n))));
    const [[sBar]] = await readTensors([sBarT]);
    sBarT.dispose();
    a = aesSchedule().alpha(sBar);
  }
  const alphaUsed = a;
  const means = tf.tidy(() => {
    const p = entmax(z, alphaUsed);
    const st = probStats(p);
    const rowsOf = [tf.cast(supportSize(p), 'float32'), st.entropy, st.varentropy, logitStats(z).varentropy];
    return rowsOf.map((t) => tf.mean(t));
  });
  const [[support], [entropy], [varentropy], [softmaxVarentropy]] = await readTensors(means);
  tf.dispose([z, ...means]);
  return { alpha: alphaUsed, support, entropy, varentropy, softmaxVarentropy };
}

/** FLOPs per head with T = n queries, see the file comment. */
function flops(n: number, d: number, k: number): Record<string, number> {
  const stride = Math.ceil(Math.sqrt(n));
  return {
    dense: 4 * n * n * d,
    sparseScores: 2 * n * n * d,
    sparseThreshold: n * n * Math.log2(FIRST_K),
    sparseValues: 2 * n * k * d,
    sparseTotal: 2 * n * n * d + n * n * Math.log2(FIRST_K) + 2 * n * k * d,
    strided: 4 * n * Math.min(n, 2 * stride) * d,
  };
}

export async function run(argv: string[]): Promise<Json> {
  const { cfg, writeCsv, writeJson, plot } = await startRun('complexity', QUICK, FULL, argv);
  const ns = cfg.lengths.split(',').map(Number), scales = cfg.scales.split(',').map(Number);
  // (a) supports
  type Row = Record<string, number | string>;
  const support: Row[] = [];
  for (const n of ns) for (const scale of scales) for (const [map, alpha] of MAPS) {
    support.push({ n, scale, map, ...(await supportOf(cfg.rows, n, scale, alpha, cfg.seed + n)) });
  }
  writeCsv('support.csv', support);
  // (b) FLOPs at scale 1, and (c) fitted exponents
  const flopRows: Row[] = support
    .filter((r) => r.scale === 1)
    .map((r) => ({ n: r.n, map: r.map, support: r.support, ...flops(r.n as number, cfg.dim, r.support as number) }));
  writeCsv('flops.csv', flopRows);
  const gamma = (xs: Row[], key: string) =>
    fitLine(
      xs.map((r) => Math.log(r.n as number)),
      xs.map((r) => Math.log(r[key] as number)),
    ).slope;
  const byMap = (m: string) => flopRows.filter((r) => r.map === m);
  const fits: Json = {
    flops: {
      dense: gamma(byMap('softmax'), 'dense'),
      strided: gamma(byMap('softmax'), 'strided'),
      ...Object.fromEntries(MAPS.map(([m]) => [`${m} sparse-aware total`, gamma(byMap(m), 'sparseTotal')])),
    },
    support: Object.fromEntries(MAPS.map(([m]) => [m, gamma(byMap(m), 'support')])),
  };
  // measured times: one head, T = n, d = dim
  const timing: Row[] = [];
  for (const n of cfg.timeLengths.split(',').map(Number)) {
    const [q, k, v] = [1, 2, 3].map((s) => tf.randomNormal([1, 1, n, cfg.dim], 0, 1, 'float32', cfg.seed + s));
    const q2 = tf.reshape(q, [n, cfg.dim]) as tf.Tensor2D,
      k2 = tf.reshape(k, [n, cfg.dim]) as tf.Tensor2D,
      v2 = tf.reshape(v, [n, cfg.dim]) as tf.Tensor2D;
    for (const [name, fn] of [
      ['dense softmax', () => attention(q, k, v, { normaliser: 'softmax' }).output],
      ['sparsemax', () => attention(q, k, v, { normaliser: 'sparsemax' }).output],
      ['entmax15', () => attention(q, k, v, { normaliser: 'entmax15' }).output],
      ['strided √n', () => stridedAttention(q2, k2, v2)],
    ] as Array<[string, () => tf.Tensor]>) timing.push({ n, kernel: name, ms: await timeIt(fn, cfg.repeats) });
    tf.dispose([q, k, v, q2, k2, v2]);
  }
  writeCsv('timing.csv', timing);
  const byKernel = (kname: string) => {                               // fixed overheads dominate below n = 256
    const all = timing.filter((r) => r.kernel === kname);
    const large = all.filter((r) => (r.n as number) >= 256);
    return large.length >= 2 ? large : all;
  };
  fits.time = Object.fromEntries(
    ['dense softmax', 'sparsemax', 'entmax15', 'strided √n'].map((kname) => [kname, gamma(byKernel(kname), 'ms')]),
  );
  // (d) cost against ζ (fixed-α maps at n = largest, scale 1) and against varentropy (all scales)
  const nMax = ns[ns.length - 1];
  const zetaRows: Array<Record<string, number>> = support
    .filter((r) => r.n === nMax && r.scale === 1 && (r.alpha as number) > 1)
    .map((r) => ({ zeta: (r.alpha as number) - 1, ...flops(nMax, cfg.dim, r.support as number) }));
  const zetaFit = fitLine(
    zetaRows.map((r) => Math.log(r.zeta as number)),
    zetaRows.map((r) => Math.log(r.sparseTotal as number)),
  );
  const zetaValuesFit = fitLine(
    zetaRows.map((r) => Math.log(r.zeta as number)),
    zetaRows.map((r) => Math.log(r.sparseValues as number)),
  );
  const vRows: Array<Record<string, number>> = support
    .filter((r) => r.n === nMax && r.map === 'entmax15')
    .map((r) => ({
      scale: r.scale as number,
      varentropy: r.softmaxVarentropy as number,
      ...flops(nMax, cfg.dim, r.support as number),
    }));
  const vFit = fitLine(
    vRows.map((r) => Math.log(r.varentropy as number)),
    vRows.map((r) => Math.log(r.sparseTotal as number)),
  );
  fits.zeta = { totalSlope: zetaFit.slope, valuesSlope: zetaValuesFit.slope, claim: -1 };
  fits.varentropy = { totalSlope: vFit.slope, claim: -1 };
  writeCsv('cost_vs_zeta.csv', zetaRows);
  writeCsv('cost_vs_varentropy.csv', vRows);
  writeJson('fits.json', fits);
  const logXY = (
    title: string,
    values: Json[] | Row[],
    x: string,
    y: string,
    color: string,
    xTitle: string,
    yTitle: string,
  ) =>
    ({
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      width: 460,
      height: 280,
      title,
      data: { values },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: x, type: 'quantitative', scale: { type: 'log' }, title: xTitle },
        y: { field: y, type: 'quantitative', scale: { type: 'log' }, title: yTitle },
        color: { field: color, type: 'nominal' },
      },
    }) as Parameters<typeof plot>[1];
  const costLong = flopRows
    .filter((r) => r.map === 'sparsemax' || r.map === 'entmax15')
    .flatMap((r) => [{ n: r.n, flops: r.sparseTotal, method: `${r.map}, sparsity-aware` }])
    .concat(
      byMap('softmax').flatMap((r) => [
        { n: r.n, flops: r.dense, method: 'dense attention' },
        { n: r.n, flops: r.strided, method: 'strided √n' },
      ]),
    );
  await plot(
    'support_vs_n',
    logXY(
      'Support per row (scores N(0,1), scale 1)',
      support.filter((r) => r.scale === 1),
      'n',
      'support',
      'map',
      'keys n',
      'non-zeros per row',
    ),
  );
  await plot('flops_vs_n', logXY('FLOPs per head, T = n queries', costLong, 'n', 'flops', 'method', 'keys n', 'FLOPs'));
  await plot(
    'time_vs_n',
    logXY(`Measured time per head (${cfg.backend}), d = ${cfg.dim}`, timing, 'n', 'ms', 'kernel', 'keys n', 'ms'),
  );
  await plot(
    'cost_vs_zeta',
    logXY(
      `Sparsity-aware cost at n = ${nMax} against ζ = α − 1`,
      zetaRows.flatMap((r) => [
        { zeta: r.zeta, flops: r.sparseTotal, part: 'total' },
        { zeta: r.zeta, flops: r.sparseValues, part: 'P·V on the support' },
      ]),
      'zeta',
      'flops',
      'part',
      'ζ',
      'FLOPs',
    ),
  );
  await plot(
    'cost_vs_varentropy',
    logXY(
      `entmax15 cost at n = ${nMax} against varentropy (scale varies)`,
      vRows.flatMap((r) => [
        { v: r.varentropy, flops: r.sparseTotal, part: 'total' },
        { v: r.varentropy, flops: r.sparseValues, part: 'P·V on the support' },
      ]),
      'v',
      'flops',
      'part',
      'softmax varentropy (nats²)',
      'FLOPs',
    ),
  );
  // (a, trained) supports of the heads of the text models of experiment 2, against the number of
  // visible keys (row t of a causal head sees t + 1 keys)
  const trained = await trainedSupports(cfg.trained);
  if (trained.length) {
    writeCsv('trained_support.csv', trained);
    fits.trainedSupport = Object.fromEntries(
      [...new Set(trained.map((r) => r.normaliser as string))].map((m) => [
        m,
        gamma(
          trained.filter((r) => r.normaliser === m && (r.n as number) >= 8),
          'support',
        ),
      ]),
    );
    await plot(
      'trained_support',
      logXY(
        'Heads of trained text models (experiment 2): support per row',
        trained,
        'n',
        'support',
        'normaliser',
        'visible keys n',
        'non-zeros per row',
      ),
    );
    writeJson('fits.json', fits);
  }
  return fits;
}

/** Mean support per visible-key count over every head of each trained model found under `root`. */
async function trainedSupports(root: string): Promise<Array<Record<string, number | string>>> {
  const rows: Array<Record<string, number | string>> = [];
  if (!root || !existsSync(root)) return rows;
  const text = readFileSync(repoCorpus(), 'utf8');
  for (const norm of ['softmax', 'sparsemax', 'entmax15', 'learned', 'aes']) {
    const dir = join(root, norm, 'seed0', 'ckpt');
    if (!existsSync(dir)) continue;
    const { model, tokenizer } = await loadCheckpoint(fileSystemIO(dir), dir);
    const T = model.config.blockSize;
    const ids = tokenizer.encode(text.slice(Math.floor(text.length * 0.95))); // held-out tail
    const windows = Array.from({ length: 8 }, (_, b) => ids.slice(b * T, (b + 1) * T)).filter((w) => w.length === T);
    const x = tf.tensor2d(windows, undefined, 'int32');
    const r = model.forward(x, { returnStats: true });
    const perPosT = tf.tidy(() => tf.mean(tf.stack(r.stats!.map((s) => tf.mean(s.support, [0, 1]))), 0)); // [T]
    const perPos = Array.from((await readTensors([perPosT]))[0]);
    perPosT.dispose();
    perPos.forEach((support, t) => {
      if ([1, 2, 4, 8, 16, 32, 64, 128, 256].includes(t + 1)) rows.push({ normaliser: norm, n: t + 1, support });
    });
    tf.dispose([x, r.logits, ...r.stats!.flatMap((s) => Object.values(s))]);
    model.dispose();
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  run(process.argv.slice(2))
    .then((f) => console.log(JSON.stringify(f, null, 2)))
    .catch((e) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    });
}
