/**
 * Experiment 6: length generalisation. Every normaliser of the grid experiments/grids/length.yaml
 * (softmax, sparsemax, entmax15, learned α, AES per head and per row, SSMax, ASEntmax, adaptive-
 * temperature softmax) with RoPE and NoPE, trained on copy, flip-flop and MQMTAR at length ≤ 64 and
 * evaluated at 1×–16× the training length (`--eval-lengths 1x,…,16x`): exact match, token accuracy
 * and per-head α, entropy and support at each length.
 *
 *   pnpm exp:length                 (quick: copy, softmax vs AES, RoPE, one seed, 60 steps; a smoke run)
 *   pnpm exp:length --full          (the whole grid: 162 runs)
 *   pnpm exp:length --full --attention softmax,aes --pos rope --seeds 0   (a part of it)
 *   pnpm exp:length --full --seeds 1 --merge    (another part, added to the committed cells.csv)
 *
 * The runs go through the sweep runner into results/length/runs/ (not committed): a finished run is
 * kept and skipped, an interrupted one resumes from its checkpoint. Written to results/length/:
 * cells.csv (every run × length), summary.csv (mean ± std over seeds), verdict.json, and the plots
 * accuracy_vs_length and heads_vs_length (SVG + PNG, log-x).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expandGrid, runLocal, type SweepRun } from '@aes/train';
import { parse as parseYaml } from 'yaml';
import { readCsv, startRun, type Json } from './common.js';

const QUICK = {
  steps: 60, workers: 1, grid: '', evalLengths: '1x,2x,4x', merge: false,
  data: 'task:copy:len=8,vary=4', attention: 'softmax,aes', pos: 'rope', seeds: '0',
};
const FULL = { steps: 0, evalLengths: '', data: '', attention: '', pos: '', seeds: '' };
const GRID = join(import.meta.dirname, 'grids', 'length.yaml');

type Grid = { base: Record<string, unknown>; axes: Record<string, Array<string | number>> };
type Cell = {
  data: string; attention: string; pos: string; seed: number; steps: number;
  length: number; times: number; tokens: number;
  exact: number; tokenAccuracy: number; loss: number; alpha: number; entropy: number; support: number; peakMB: number;
};

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) => {
  const m = mean(xs);
  return xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1)) : 0;
};

/** The grid at this size: `--data`, `--attention`, `--pos`, `--seeds` (comma lists) replace its axes. */
function grid(cfg: typeof QUICK & { full: boolean }, dir: string) {
  const path = cfg.grid || GRID;
  const raw = parseYaml(readFileSync(path, 'utf8')) as Grid;
  const axes = { ...raw.axes };
  // a comma list of tasks would split their parameters: tasks are separated by ';'
  const pick = (key: string, list: string, sep = ',') => {
    if (list) axes[key] = list.split(sep).map((x) => (key === 'seed' ? Number(x) : x.trim()));
  };
  pick('data', cfg.data, ';');
  pick('attention', cfg.attention);
  pick('pos', cfg.pos);
  pick('seed', cfg.seeds);
  const base = { ...raw.base };
  if (cfg.steps) Object.assign(base, { steps: cfg.steps, 'eval-every': cfg.steps, 'ckpt-every': cfg.steps,
    'log-every': cfg.steps, warmup: Math.round(cfg.steps / 10) });
  if (cfg.evalLengths) base['eval-lengths'] = cfg.evalLengths;
  return expandGrid({ ...raw, base, axes, out: join(dir, 'runs') }, 'length', path);
}

/** The per-length rows of a finished run's last evaluation, heads averaged. */
function cells(run: SweepRun, trainLength: number): Cell[] {
  const rows = readFileSync(join(run.config.out, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((r) => r.split === 'val' && typeof r.length === 'number');
  const last = Math.max(...rows.map((r) => r.step));
  const flat = (g: number[][]) => mean(g.flat());
  return rows
    .filter((r) => r.step === last)
    .map((r) => ({
      data: run.config.data, attention: run.config.attention, pos: run.config.pos, seed: run.config.seed,
      steps: run.config.steps,
      length: r.length, times: r.length / trainLength, tokens: r.tokens, exact: r.exact, tokenAccuracy: r.tokenAccuracy,
      loss: r.loss, alpha: flat(r.alpha), entropy: flat(r.entropy), support: flat(r.support), peakMB: r.peakMB,
    }));
}

export async function run(argv: string[]): Promise<Json> {
  const { cfg, dir, writeCsv, writeJson, plot } = await startRun('length', QUICK, FULL, argv);
  const sweep = grid(cfg, dir);
  const t0 = performance.now();
  const failures = await runLocal(sweep, { workers: cfg.workers, retries: 0, backend: cfg.backend }, {
    progress: (p) => console.error(`length runs ${p.done}/${p.total} done`),
    failed: (r, error) => console.error(`run ${r} failed: ${error}`),
  });
  if (Object.keys(failures).length) throw new Error(`length: runs failed: ${JSON.stringify(failures)}`);
  const seconds = (performance.now() - t0) / 1000;
  const fresh = sweep.runs.flatMap((r) => cells(r, trainLengthOf(r.config.data)));
  const all = cfg.merge ? [...kept(join(dir, 'cells.csv'), fresh), ...fresh] : fresh;
  writeCsv('cells.csv', all);
  // mean ± std over seeds of every (task, normaliser, position, length)
  const key = (c: Cell) => `${c.data}|${c.attention}|${c.pos}|${c.length}`;
  const groups = new Map<string, Cell[]>();
  for (const c of all) groups.set(key(c), [...(groups.get(key(c)) ?? []), c]);
  const summary = [...groups.values()].map((cs) => ({
    data: cs[0].data,
    attention: cs[0].attention,
    pos: cs[0].pos,
    length: cs[0].length,
    times: cs[0].times,
    seeds: cs.length,
    exactMean: mean(cs.map((c) => c.exact)),
    exactStd: std(cs.map((c) => c.exact)),
    tokenAccuracyMean: mean(cs.map((c) => c.tokenAccuracy)),
    tokenAccuracyStd: std(cs.map((c) => c.tokenAccuracy)),
    alpha: mean(cs.map((c) => c.alpha)),
    entropy: mean(cs.map((c) => c.entropy)),
    support: mean(cs.map((c) => c.support)),
    peakMB: Math.max(...cs.map((c) => c.peakMB)),
  }));
  writeCsv('summary.csv', summary);
  const verdict = verdictOf(summary);
  const runs = new Set(all.map(runKey)).size;
  const seeds = [...new Set(all.map((c) => c.seed))].sort((a, b) => a - b);
  // wall time of every call whose cells are in the table (a merged call adds its own)
  const before = join(dir, 'verdict.json');
  const earlier = cfg.merge && existsSync(before) ? Number(JSON.parse(readFileSync(before, 'utf8')).seconds) : 0;
  const total = seconds + earlier;
  writeJson('verdict.json', { runs, seeds, seconds: total, runsThisCall: sweep.runs.length, secondsThisCall: seconds,
    ...verdict });
  const facets = { row: { field: 'pos', type: 'nominal' }, column: { field: 'data', type: 'nominal', title: null } };
  const logX = {
    field: 'times', type: 'quantitative', scale: { type: 'log', base: 2 }, title: '× training length',
    axis: { values: [...new Set(all.map((c) => c.times))] },
  };
  await plot('accuracy_vs_length', {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Exact match against evaluation length (mean over seeds)',
    data: { values: all },
    facet: facets,
    spec: {
      width: 220,
      height: 160,
      mark: { type: 'line', point: true },
      encoding: {
        x: logX,
        y: { aggregate: 'mean', field: 'exact', type: 'quantitative', title: 'exact match', scale: { domain: [0, 1] } },
        color: { field: 'attention', type: 'nominal' },
      },
    },
  } as never);
  await plot('heads_vs_length', {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Attention heads against evaluation length (mean over heads, layers, seeds; first position encoding)',
    data: { values: all.filter((c) => c.pos === sweep.runs[0].config.pos) },
    transform: [{ fold: ['alpha', 'entropy', 'support'], as: ['quantity', 'value'] }],
    facet: { row: { field: 'quantity', type: 'nominal' }, column: facets.column },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 220, height: 120, mark: { type: 'line', point: true },
      encoding: { x: logX, y: { aggregate: 'mean', field: 'value', type: 'quantitative', title: null },
        color: { field: 'attention', type: 'nominal' } },
    },
  } as never);
  return { runs, seeds, seconds: total, runsThisCall: sweep.runs.length, secondsThisCall: seconds, ...verdict };
}

const runKey = (c: Pick<Cell, 'data' | 'attention' | 'pos' | 'seed'>) => `${c.data}|${c.attention}|${c.pos}|${c.seed}`;

/**
 * With `--merge`: the cells of an earlier cells.csv whose run (task, normaliser, position, seed) is
 * not among this call's, so slices of the grid run at different times (or on different machines,
 * whose run folders are not here) add up to one table. Rows of the runs of this call are replaced.
 */
function kept(file: string, fresh: Cell[]): Cell[] {
  if (!existsSync(file)) return [];
  const now = new Set(fresh.map(runKey));
  const text = new Set(['data', 'attention', 'pos']);
  return readCsv(file)
    .map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, text.has(k) ? v : Number(v)])) as Cell)
    .filter((c) => !now.has(runKey(c)));
}

/** The length parameter a task was trained at (`len=16,vary=8` → 16), from its spec. */
function trainLengthOf(data: string): number {
  const m = /[:,](?:len|pairs)=(\d+)/.exec(data);
  if (!m) throw new Error(`length: cannot tell the training length of '${data}'; give len= in the task`);
  return Number(m[1]);
}

type Row = Record<string, number | string>;

/**
 * From the summary: per task and position encoding, the largest multiple at which softmax keeps
 * half its 1× exact match ("collapse" is the next one), the normaliser best at the longest length,
 * and per normaliser how α and support move from 1× to the longest length.
 */
function verdictOf(summary: Row[]): Json {
  const out: Json = {};
  const tasks = [...new Set(summary.map((r) => `${r.data} ${r.pos}`))];
  for (const t of tasks) {
    const rows = summary.filter((r) => `${r.data} ${r.pos}` === t);
    const longest = Math.max(...rows.map((r) => r.times as number));
    const at = (norm: string, times: number) => rows.find((r) => r.attention === norm && r.times === times);
    const norms = [...new Set(rows.map((r) => r.attention as string))];
    const soft = rows
      .filter((r) => r.attention === 'softmax')
      .sort((a, b) => (a.times as number) - (b.times as number));
    // softmax must solve the training length first (≥ 90% exact match at 1×) for its collapse to mean anything
    const solved = (soft[0]?.exactMean as number) >= 0.9;
    const keeps = soft.filter((r) => (r.exactMean as number) >= 0.5 * (soft[0]?.exactMean as number));
    const ranking = norms
      .map((n) => ({ n, e: at(n, longest)?.exactMean as number, s: at(n, longest)?.exactStd as number }))
      .sort((a, b) => b.e - a.e);
    out[t] = {
      softmaxAt1x: soft[0]?.exactMean ?? null,
      softmaxSolvesTrainingLength: solved,
      softmaxKeepsHalfUpTo: solved ? keeps.at(-1)!.times : null,
      longest,
      rankingAtLongest: ranking.map(({ n, e, s }) => `${n} ${(100 * e).toFixed(1)}±${(100 * s).toFixed(1)}%`),
      heads: Object.fromEntries(
        norms.map((n) => [
          n,
          {
            alpha: [at(n, 1)?.alpha, at(n, longest)?.alpha].map((v) =>
              v === undefined ? null : Number((v as number).toFixed(3)),
            ),
            support: [at(n, 1)?.support, at(n, longest)?.support].map((v) =>
              v === undefined ? null : Number((v as number).toFixed(3)),
            ),
          },
        ]),
      ),
    };
  }
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  run(process.argv.slice(2)).then((s) => console.log(JSON.stringify(s, null, 2)), (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
