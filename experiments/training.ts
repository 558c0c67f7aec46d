/**
 * Experiment 2: training comparison. softmax, sparsemax, entmax15, learned α per head and AES on two
 * built-in tasks and one real text, equal budgets (same model, steps, batch, schedule), several
 * seeds: final validation loss and accuracy (mean ± std), attention sparsity, the distribution of
 * learned α per layer, and training speed.
 *
 *   pnpm exp:training           (quick: 2 layers × 4 heads × width 32, 150 steps, 3 seeds; ~10 min)
 *   pnpm exp:training --full    (400 steps: the size in docs/results.md; ~30 min on 2 cores)
 *
 * The grid is experiments/grids/training.yaml (an `aes sweep` file); the text is the pinned snapshot
 * of this repository's docs and sources (experiments/data/corpus.txt, character-level), so nothing
 * is downloaded. Runs go to results/training/runs/ (not committed); the summary tables and plots to
 * results/training/.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expandGrid, readResult, runLocal } from '@aes/train';
import { parse as parseYaml } from 'yaml';
import { startRun, type Json } from './common.js';

const QUICK = { steps: 150, evalBatches: 2, workers: 1, grid: '' };
const FULL = { steps: 400, evalBatches: 4 };
const GRID = join(import.meta.dirname, 'grids', 'training.yaml');
const NAMES: Record<string, string> = { 'experiments/data/corpus.txt': 'text' };

type Stat = { mean: number; std: number };
const stat = (xs: number[]): Stat => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean: m, std: Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / Math.max(1, xs.length - 1)) };
};

export async function run(argv: string[]): Promise<Json> {
  const { cfg, dir, writeCsv, writeJson, plot } = await startRun('training', QUICK, FULL, argv);
  const perRun: Array<Record<string, number | string>> = [];
  const alphas: Array<Record<string, number | string>> = [];
  // The grid of experiments/grids/training.yaml, at this size, on the sweep runner (finished runs
  // are kept and skipped: delete results/training/runs to train again). One runner by default, so
  // that the tokens/s of different normalisers are comparable.
  const gridPath = cfg.grid || GRID;
  const raw = parseYaml(readFileSync(gridPath, 'utf8')) as { base: Record<string, unknown> };
  const steps = cfg.steps;
  const sweep = expandGrid(
    {
      ...raw,
      out: join(dir, 'runs'),
      base: {
        ...raw.base,
        steps,
        'eval-every': steps,
        'ckpt-every': steps,
        'log-every': steps,
        'eval-batches': cfg.evalBatches,
        warmup: Math.round(steps / 10),
      },
    },
    'training',
    gridPath,
  );
  const failures = await runLocal(sweep, { workers: cfg.workers, retries: 0, backend: cfg.backend }, {
    progress: (p) => console.error(`training runs ${p.done}/${p.total} done`),
    failed: (run, error) => console.error(`run ${run} failed: ${error}`),
  });
  if (Object.keys(failures).length) throw new Error(`training: runs failed: ${JSON.stringify(failures)}`);
  for (const run of sweep.runs) {
    const { final: f } = readResult(run.config.out);
    const dataset = NAMES[run.config.data] ?? run.config.data, norm = run.config.attention, seed = run.config.seed;
    const last = readFileSync(join(run.config.out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((r) => r.split === 'train')
      .at(-1);
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
      layer.forEach((a, h) => alphas.push({ dataset, normaliser: norm, seed, layer: `layer ${l}`, head: h, alpha: a })),
    );
  }
  const datasets = [...new Set(perRun.map((r) => r.dataset as string))];
  const normalisers = [...new Set(perRun.map((r) => r.normaliser as string))];
  writeCsv('runs.csv', perRun);
  writeCsv('alpha.csv', alphas);
  const summary: Array<Record<string, number | string>> = [];
  for (const dataset of datasets) {
    for (const norm of normalisers) {
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
  const best = Object.fromEntries(datasets.map((d) => {
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
