/**
 * Experiment 2: training comparison. softmax, sparsemax, entmax15, learned α per head and AES on two
 * built-in tasks and one real text, equal budgets (same model, steps, batch, schedule), several
 * seeds: final validation loss and accuracy (mean ± std), attention sparsity, the distribution of
 * learned α per layer, and training speed.
 *
 *   pnpm exp:training           (quick: 2 layers × 4 heads × width 32, 150 steps, 3 seeds; ~10 min)
 *   pnpm exp:training --full    (400 steps: the size in docs/results.md; ~30 min on 2 cores)
 *
 * The text is this repository's docs and sources (`repoCorpus`, character-level), so nothing is
 * downloaded. Runs go to results/training/runs/ (not committed); the summary tables and plots to
 * results/training/.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { TRAIN_DEFAULTS, train } from '@aes/train';
import { repoCorpus, startRun, type Json } from './common.js';

const QUICK = {
  datasets: 'task:sort,task:recall:pairs=4,text', normalisers: 'softmax,sparsemax,entmax15,learned,aes', seeds: 3,
  steps: 150, textSteps: 150, batch: 16, layers: 2, heads: 4, embd: 32, blockSize: 64, evalBatches: 2,
};
const FULL = { steps: 400, textSteps: 400, evalBatches: 4 };

type Stat = { mean: number; std: number };
const stat = (xs: number[]): Stat => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean: m, std: Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / Math.max(1, xs.length - 1)) };
};

export async function run(argv: string[]): Promise<Json> {
  const { cfg, dir, writeCsv, writeJson, plot } = await startRun('training', QUICK, FULL, argv);
  const perRun: Array<Record<string, number | string>> = [];
  const alphas: Array<Record<string, number | string>> = [];
  const corpus = cfg.datasets.includes('text') ? repoCorpus() : '';
  for (const dataset of cfg.datasets.split(',')) {
    for (const norm of cfg.normalisers.split(',')) {
      for (let seed = 0; seed < cfg.seeds; seed++) {
        const out = join(dir, 'runs', dataset.replace(/[:=,]/g, '_'), norm, `seed${seed}`);
        const steps = dataset === 'text' ? cfg.textSteps : cfg.steps;
        rmSync(out, { recursive: true, force: true });               // this experiment's own scratch run
        const res = await train({
          ...TRAIN_DEFAULTS,
          data: dataset === 'text' ? corpus : dataset,
          out,
          steps,
          seed,
          attention: norm,
          batch: cfg.batch,
          layers: cfg.layers,
          heads: cfg.heads,
          embd: cfg.embd,
          blockSize: cfg.blockSize,
          evalEvery: steps,
          ckptEvery: steps,
          logEvery: steps,
          evalBatches: cfg.evalBatches,
          warmup: Math.round(steps / 10),
        });
        const last = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l))
          .filter((r) => r.split === 'train')
          .at(-1);
        const f = res.final;
        const support = f.supportFraction.flat().reduce((a, b) => a + b, 0) / f.supportFraction.flat().length;
        perRun.push({
          dataset,
          normaliser: norm,
          seed,
          valLoss: f.loss,
          accuracy: f.exactMatch ?? NaN,
          bitsPerChar: f.bitsPerChar ?? NaN,
          supportFraction: support,
          tokensPerSecond: last.tokensPerSecond,
        });
        f.alpha.forEach((layer, l) =>
          layer.forEach((a, h) =>
            alphas.push({ dataset, normaliser: norm, seed, layer: `layer ${l}`, head: h, alpha: a }),
          ),
        );
        console.log(
          `${dataset} ${norm} seed ${seed}: val loss ` +
          `${f.loss.toFixed(4)}${f.exactMatch !== undefined ? `, exact ${(100 * f.exactMatch).toFixed(1)}%` : ''}, ` +
          `support ${(100 * support).toFixed(0)}%`,
        );
      }
    }
  }
  writeCsv('runs.csv', perRun);
  writeCsv('alpha.csv', alphas);
  const summary: Array<Record<string, number | string>> = [];
  for (const dataset of cfg.datasets.split(',')) {
    for (const norm of cfg.normalisers.split(',')) {
      const rs = perRun.filter((r) => r.dataset === dataset && r.normaliser === norm);
      const s = (k: string) => stat(rs.map((r) => r[k] as number));
      const row: Record<string, number | string> = { dataset, normaliser: norm };
      for (const k of ['valLoss', 'accuracy', 'bitsPerChar', 'supportFraction', 'tokensPerSecond']) {
        row[`${k}Mean`] = s(k).mean;
        row[`${k}Std`] = s(k).std;
      }
      summary.push(row);
    }
  }
  writeCsv('summary.csv', summary);
  const best = Object.fromEntries(cfg.datasets.split(',').map((d) => {
    const rows = summary
      .filter((r) => r.dataset === d)
      .sort((a, b) => (a.valLossMean as number) - (b.valLossMean as number));
    return [
      d,
      {
        bestByLoss: rows[0].normaliser,
        ranking: rows.map(
          (r) => `${r.normaliser} ${(r.valLossMean as number).toFixed(4)}±${(r.valLossStd as number).toFixed(4)}`,
        ),
      },
    ];
  }));
  writeJson('verdict.json', best);
  const base = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', width: 150, height: 200 } as const;
  await plot('val_loss', {
    ...base,
    title: 'Final validation loss (nats/token), mean ± std over seeds',
    data: { values: perRun },
    facet: { column: { field: 'dataset', type: 'nominal' } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 150,
      height: 200,
      layer: [
        {
          mark: { type: 'bar' },
          encoding: {
            x: { field: 'normaliser', type: 'nominal', title: null },
            y: { aggregate: 'mean', field: 'valLoss', type: 'quantitative', title: 'val loss' },
            color: { field: 'normaliser', type: 'nominal', legend: null },
          },
        },
        {
          mark: { type: 'errorbar', extent: 'stdev' },
          encoding: {
            x: { field: 'normaliser', type: 'nominal' },
            y: { field: 'valLoss', type: 'quantitative', title: 'val loss' },
          },
        },
      ],
    },
  } as never);
  await plot('alpha_hist', {
    ...base,
    title: 'Learned α per head after training (all datasets and seeds)',
    data: { values: alphas.filter((a) => a.normaliser === 'learned') },
    mark: 'bar',
    facet: undefined,
    encoding: {
      x: { field: 'alpha', type: 'quantitative', bin: { maxbins: 20 }, title: 'α' },
      y: { aggregate: 'count', type: 'quantitative', title: 'heads' },
      color: { field: 'layer', type: 'nominal' },
      column: { field: 'layer', type: 'nominal' },
    },
  } as never);
  await plot('speed', {
    ...base,
    title: 'Training speed (tokens/s, mean over seeds)',
    data: { values: perRun },
    mark: 'bar',
    encoding: {
      x: { field: 'normaliser', type: 'nominal', title: null },
      y: { aggregate: 'mean', field: 'tokensPerSecond', type: 'quantitative', title: 'tokens/s' },
      color: { field: 'normaliser', type: 'nominal', legend: null },
      column: { field: 'dataset', type: 'nominal' },
    },
  } as never);
  return best;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  run(process.argv.slice(2))
    .then((v) => console.log(JSON.stringify(v, null, 2)))
    .catch((e) => {
      console.error(e instanceof Error ? e.stack : e);
      process.exit(1);
    });
}
