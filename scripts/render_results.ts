/**
 * The sections of docs/results.md that quote numbers, rendered from the committed result files of
 * experiments/results/ (see render_docs.ts). Each section names the run it comes from (its date in
 * config.json), so a table that predates a change of the code says so.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = <T = any>(p: string): T => JSON.parse(read(p)) as T;

/** Rows of a committed CSV as objects (fields may be quoted). */
export function csv(path: string): Array<Record<string, string>> {
  const split = (line: string) => {
    const out: string[] = [];
    let cur = '', quoted = false;
    for (const ch of line) {
      if (ch === '"') quoted = !quoted;
      else if (ch === ',' && !quoted) { out.push(cur); cur = ''; } else cur += ch;
    }
    return [...out, cur];
  };
  const [head, ...rows] = read(path).trim().split('\n');
  const cols = split(head);
  return rows.map((r) => Object.fromEntries(split(r).map((v, i) => [cols[i], v])));
}

/** Greedy word wrap at `width` columns. */
export function wrap(text: string, width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line].join('\n');
}

const fix = (x: number | string, d: number) => Number(x).toFixed(d);
/** The mean of column `k` over CSV rows. */
const meanOf = (rs: Array<Record<string, string>>, k: string) => rs.reduce((a, r) => a + Number(r[k]), 0) / rs.length;
const pct = (x: number | string, d = 1) => `${(100 * Number(x)).toFixed(d)}%`;
/** A Markdown table. */
export const table = (head: string[], rows: string[][]) =>
  [`| ${head.join(' | ')} |`, `|${head.map(() => '---|').join('')}`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join(
    '\n',
  );
/** "Run of YYYY-MM-DD (tfjs …, backend)" from an experiment's config.json. */
function runOf(exp: string): string {
  const c = json(`experiments/results/${exp}/config.json`);
  return `run of ${String(c.date).slice(0, 10)}, ${c.backend.name} (${c.backend.detail}), tfjs ${c.versions.tfjs}`;
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const MAPS = ['softmax', 'entmax α=1.25', 'entmax15', 'sparsemax', 'entmax α=3', 'AES'];

function complexitySupport(): string {
  const rows = csv('experiments/results/complexity/support.csv');
  const ns = [...new Set(rows.map((r) => r.n))];
  const at = (n: string, scale: string, map: string) =>
    rows.find((r) => r.n === n && r.scale === scale && r.map === map)!;
  const cell = (n: string, map: string) => {
    const r = at(n, '1', map);
    return map === 'AES' ? `${fix(r.support, 1)} (α = ${fix(r.alpha, 2)})` : fix(r.support, map === 'softmax' ? 0 : 2);
  };
  const fits = json('experiments/results/complexity/fits.json').support as Record<string, number>;
  const big = ns.at(-1)!;
  return [
    wrap(`(${runOf('complexity')}.) Scores N(0, 1), scale 1; mean non-zeros per row:`),
    '',
    table(['n', ...MAPS], [ns[0], big].map((n) => [n, ...MAPS.map((m) => cell(n, m))])),
    '',
    wrap(`Fitted growth of the support with n (k ~ n^γ): ${MAPS.map((m) => `${m} ${fix(fits[m], 2)}`).join(', ')}. ` +
      `At n = ${big}, AES picks α = ${['0.5', '1', '2', '4'].map((s) => `${fix(at(big, s, 'AES').alpha, 2)} at ` +
      `scale ${s}`).join(', ')}; sparsemax keeps ${fix(at(big, '4', 'sparsemax').support, 1)} of ${big} keys at ` +
      'scale 4.'),
  ].join('\n');
}

function complexityTrained(): string {
  const rows = csv('experiments/results/complexity/trained_support.csv');
  const fits = json('experiments/results/complexity/fits.json').trainedSupport as Record<string, number>;
  const ns = ['8', '16', '32', '64'];
  const names: Record<string, string> = { learned: 'learned α', aes: 'AES' };
  const body = Object.keys(fits).map((m) => [
    names[m] ?? m,
    ...ns.map((n) => fix(rows.find((r) => r.normaliser === m && r.n === n)?.support ?? NaN, 1)),
    fix(fits[m], 2),
  ]);
  return table(['visible keys n', ...ns, 'fitted γ (n ≥ 8)'], body);
}

function complexityWork(): string {
  const fits = json('experiments/results/complexity/fits.json');
  const timing = csv('experiments/results/complexity/timing.csv');
  const big = timing.at(-1)!.n;
  const ms = (k: string) => fix(timing.find((r) => r.n === big && r.kernel === k)!.ms, 1);
  const sparse = '2n²d + n² log₂ k₀ + 2·Σk·d';
  const body = [
    ['dense softmax attention', '4n²d', fix(fits.flops.dense, 2), fix(fits.time['dense softmax'], 2)],
    ['sparsity-aware sparsemax', sparse, fix(fits.flops['sparsemax sparse-aware total'], 2),
      fix(fits.time.sparsemax, 2)],
    ['sparsity-aware entmax15', 'same', fix(fits.flops['entmax15 sparse-aware total'], 2), fix(fits.time.entmax15, 2)],
    ['strided pattern, stride √n (Child et al.)', '4n·2√n·d', fix(fits.flops.strided, 2),
      fix(fits.time['strided √n'], 2)],
  ];
  return [
    table(['method', 'FLOPs', 'γ (FLOPs)', 'γ (measured time, n ≥ 256)'], body),
    '',
    wrap(`Measured at n = ${big}: dense ${ms('dense softmax')} ms, sparsemax ${ms('sparsemax')} ms, entmax15 ` +
      `${ms('entmax15')} ms, strided ${ms('strided √n')} ms (timing.csv).`),
  ].join('\n');
}

function complexitySlopes(): string {
  const f = json('experiments/results/complexity/fits.json');
  return wrap(`Slopes (log cost against log ζ over α ∈ {1.25, 1.5, 2, 3}, n = 4096): sparsity-aware total ` +
    `${fix(f.zeta.totalSlope, 3)}, the products with V restricted to the support alone ` +
    `${fix(f.zeta.valuesSlope, 2)}; against the rows' softmax varentropy ${fix(f.varentropy.totalSlope, 3)}. ` +
    `The claims "∝ 1/ζ" and "∝ 1/varentropy" need ${f.zeta.claim}.`);
}

const NORMS = ['softmax', 'sparsemax', 'entmax15', 'learned', 'aes'];
const NORM_NAMES = ['softmax', 'sparsemax', 'entmax15', 'learned α', 'AES'];

function trainingTable(): string {
  const s = csv('experiments/results/training/summary.csv');
  const get = (data: string, norm: string) => s.find((r) => r.dataset === data && r.normaliser === norm)!;
  const best = (data: string, key: string, low: boolean) => {
    const xs = NORMS.map((n) => Number(get(data, n)[key]));
    return xs.indexOf(low ? Math.min(...xs) : Math.max(...xs));
  };
  const row = (label: string, data: string, key: string, show: (r: Record<string, string>) => string, low = true) => {
    const b = best(data, `${key}Mean`, low);
    return [label, ...NORMS.map((n, i) => (i === b ? `**${show(get(data, n))}**` : show(get(data, n))))];
  };
  const pm = (key: string, d: number, scale = 1) => (r: Record<string, string>) =>
    `${(scale * Number(r[`${key}Mean`])).toFixed(d)} ± ${(scale * Number(r[`${key}Std`])).toFixed(d)}`;
  const body = [
    row('sort: val loss (nats/token)', 'task:sort', 'valLoss', pm('valLoss', 3)),
    row('sort: exact match (%)', 'task:sort', 'accuracy', pm('accuracy', 1, 100), false),
    row('recall: val loss', 'task:recall:pairs=4', 'valLoss', pm('valLoss', 3)),
    row('recall: exact match (%)', 'task:recall:pairs=4', 'accuracy', pm('accuracy', 1, 100), false),
    row('text: bits/char', 'text', 'bitsPerChar', pm('bitsPerChar', 3)),
    ['support (fraction of visible keys), text', ...NORMS.map((n) => fix(get('text', n).supportFractionMean, 2))],
    row('training speed, text (tokens/s)', 'text', 'tokensPerSecond',
      (r) => Math.round(Number(r.tokensPerSecondMean)).toLocaleString('en-US'), false),
  ];
  const alpha = csv('experiments/results/training/alpha.csv').filter((r) => r.normaliser === 'learned');
  const per = (data: string) => ['layer 0', 'layer 1'].map((l) => {
    const xs = alpha.filter((r) => r.dataset === data && r.layer === l).map((r) => Number(r.alpha));
    return `${l} median ${fix(median(xs), 2)} (${fix(Math.min(...xs), 2)}–${fix(Math.max(...xs), 2)})`;
  }).join(', ');
  const names: Record<string, string> = { 'task:sort': 'sort', 'task:recall:pairs=4': 'recall', text: 'text' };
  return [
    `(${runOf('training')}.) Mean ± std over the seeds; best per row in bold:`,
    '',
    table(['dataset', ...NORM_NAMES], body),
    '',
    wrap(`Learned α after training (all heads and seeds; they start at 1.5): ` +
      Object.entries(names).map(([d, n]) => `${n} — ${per(d)}`).join('; ') + '.'),
  ].join('\n');
}

function samplingTable(): string {
  const rows = csv('experiments/results/sampling/metrics.csv');
  const body = rows.map((r) => [
    r.sampler, `${fix(r.distinct1, 2)} / ${fix(r.distinct2, 2)} / ${fix(r.distinct3, 2)}`, fix(r.repetition4, 3),
    fix(r.meanLogLik, 2), fix(r.meanEntropy, 2), fix(r.meanKept, 1),
    r.meanTemperature ? fix(r.meanTemperature, 2) : '–',
  ]);
  const br = csv('experiments/results/sampling/branches.csv');
  const total = br.reduce((a, r) => a + Number(r.count), 0);
  const fired = br.filter((r) => Number(r.count) > 0);
  const never = br.filter((r) => Number(r.count) === 0).map((r) => r.branch);
  const v = (r: Record<string, string>) => `${r.branch} ${pct(r.share)} (mean entropy ${fix(r.meanEntropyBits, 2)} ` +
    `bits, varentropy ${fix(r.meanVarentropyBits, 2)} bits²)`;
  return [
    `(${runOf('sampling')}.)`,
    '',
    table(['sampler', 'distinct-1 / 2 / 3', 'repeated 4-grams', 'mean ln p (nats/char)', 'entropy (nats)',
      'tokens kept', 'mean T'], body),
    '',
    wrap(`Entropix branches over ${total.toLocaleString('en-US')} decisions: ${fired.map(v).join(', ')}; never ` +
      `${never.join(', ')}.`),
  ].join('\n');
}

function freeEnergyTable(): string {
  const s = json('experiments/results/free_energy/summary.json');
  const c = json('experiments/results/free_energy/config.json').config;
  const e = (x: number, d = 1) => x.toExponential(d);
  const hc = s.heatCapacity;
  const by = s.solver.byTol as Array<{ tol: number; medianIterations: number; maxIterations: number }>;
  const body = [
    [`S = β(⟨E⟩ − F) over ${s.identity.points.toLocaleString('en-US')} (vector, β) points`,
      `max error ${e(s.identity.maxAbsError)} nats (float64 rounding)`],
    ['the seed note\'s printed form S = β⁻¹⟨E⟩ + F',
      `wrong at every point: off by ${fix(s.seedForm.minAbsDeviation, 2)}` +
      ` … ${fix(s.seedForm.maxAbsDeviation, 0)} nats (median ${fix(s.seedForm.medianAbsDeviation, 1)})`],
    ['dS/dT = V/T, V = Var(ln p) (heat capacity), central differences',
      `max relative error ${e(hc.maxRelError)} on ${hc.scored} of ${hc.points} points (the other ` +
      `${hc.points - hc.scored} have V < ${c.vFloor} nats², nearly one-hot rows where differences of S drown in ` +
      `rounding: ${fix(hc.maxRelErrorUnscored, 3)})`],
    [`target-entropy solve (Newton in ln T, bracket-safe), ${s.solver.solves.toLocaleString('en-US')} solves`,
      `${s.solver.convergedShare === 1 ? 'all' : pct(s.solver.convergedShare)} converged; iterations median ` +
      `${by.map((b) => b.medianIterations).join(' / ')} and max ${by.map((b) => b.maxIterations).join(' / ')} at ` +
      `tolerances ${by.map((b) => e(b.tol, 0)).join(' / ')} nats`],
  ];
  return [
    wrap(`(${runOf('free_energy')}; random logit vectors of n ∈ {${c.sizes.split(',').join(', ')}} at scales ` +
      `${c.scales.split(',').join(', ')}; β on a log grid in [${c.betaMin}, ${c.betaMax}].)`),
    '',
    table(['check', 'result'], body),
  ].join('\n');
}

/** The normalisers of the length grid, in its order (the tables' row order). */
const gridOrder = () => (readFileSync('experiments/grids/length.yaml', 'utf8')
  .match(/^\s*attention:\s*\[(.*)\]/m)?.[1] ?? '').split(',').map((x) => x.trim()).filter(Boolean);

function lengthTable(): string {
  const rows = csv('experiments/results/length/summary.csv');
  const tasks = [...new Set(rows.map((r) => `${r.data} ${r.pos}`))];
  const order = gridOrder();
  const c = json('experiments/results/length/config.json');
  const v = json('experiments/results/length/verdict.json');
  const seeds = (v.seeds ?? [c.config.seeds]).join(', ');
  // training steps per task and position encoding, from every run's cells (slices may differ)
  const cells = csv('experiments/results/length/cells.csv');
  const stepsOf = (task: string) =>
    [...new Set(cells.filter((r) => `${r.data} ${r.pos}` === task).map((r) => r.steps))].join('/');
  const out: string[] = [wrap(`(${runOf('length')}; seeds ${seeds}, ` +
    `${v.runs} runs, ${(v.seconds / 60).toFixed(0)} minutes of runs in all; the latest call ` +
    `${v.runsThisCall ?? v.runs} runs in ${((v.secondsThisCall ?? v.seconds) / 60).toFixed(0)} minutes on ` +
    `${c.config.workers} ` +
    `worker${c.config.workers === 1 ? '' : 's'}.) Exact match at each ` +
    'evaluation length (multiples of the training length); α and support fraction (heads averaged) at 1× and at the ' +
    'longest:')];
  for (const task of tasks) {
    const sub = rows.filter((r) => `${r.data} ${r.pos}` === task);
    const times = [...new Set(sub.map((r) => r.times))];
    // one row order for every task: the grid's (experiments/grids/length.yaml), then any other
    const norms = [...new Set([...order, ...sub.map((r) => r.attention)])]
      .filter((n) => sub.some((r) => r.attention === n));
    const at = (n: string, t: string) => sub.find((r) => r.attention === n && r.times === t)!;
    // answers of several tokens (copy, MQMTAR): the mean share of answer tokens right, after the exact match
    const several = sub.some((r) => r.tokenAccuracyMean !== r.exactMean);
    const cell = (r: Record<string, string>) =>
      (Number(r.seeds) > 1 ? `${pct(r.exactMean)} ± ${pct(r.exactStd)}` : pct(r.exactMean)) +
      (several ? ` (${pct(r.tokenAccuracyMean, 0)})` : '');
    const [first, last] = [times[0], times.at(-1)!];
    const body = norms.map((n) => [
      n, ...times.map((t) => cell(at(n, t))),
      `${fix(at(n, first).alpha, 2)} → ${fix(at(n, last).alpha, 2)}`,
      `${fix(at(n, first).support, 3)} → ${fix(at(n, last).support, 3)}`,
    ]);
    const tokens = times.map((t) => at(norms[0], t).length);
    const note = several ? '; in parentheses: answer tokens right' : '';
    out.push('', `**${task.replace(' ', '**, ')} (${stepsOf(task)} steps; lengths ${tokens.join(', ')}${note}):`, '',
      table(['normaliser', ...times.map((t) => `${t}×`), `α (${first}× → ${last}×)`, 'support fraction'], body));
  }
  return out.join('\n');
}

function complexityMeasured(exp = 'complexity_measured'): string {
  const dir = `experiments/results/${exp}`;
  const f = json(`${dir}/fits.json`);
  const heads = csv(`${dir}/heads.csv`);
  const models = Object.keys(f.work);
  const methods = Object.keys(f.time[models[0]]);
  const at = (m: string) => heads.filter((r) => r.model === m && Number(r.n) === f.n);
  const kept = f.oracleKept ? blocksKept(exp) : null;
  const body = models.map((m) => [
    m, fix(meanOf(at(m), 'alpha'), 2), fix(meanOf(at(m), 'entropy'), 2), fix(f.skipRate[m] ?? NaN, 3),
    ...(kept ? [`${fix(kept[m]?.plan ?? NaN, 3)} / ${fix(kept[m]?.oracle ?? NaN, 3)}`] : []),
    fix(f.work[m], 2),
    ...methods.map((k) => `${fix(f.time[m][k].fwd, 2)} / ${Number.isFinite(f.time[m][k].fwdBwd) ?
      fix(f.time[m][k].fwdBwd, 2) : '–'}`),
  ]);
  return [
    wrap(`(${runOf(exp)}.) Per model (all heads): mean α, normalised entropy S/ln n and skip rate ` +
      `of the heads with α > 1 at n = ${f.n} (the share of visible scores never computed)` + (f.oracleKept ?
      '; the share of their 64 × 64 block pairs the plan kept, and the share holding a nonzero probability: ' +
      'what an oracle that knew p would have to keep' : '') +
      '; fitted exponent γ of the scores the block-skipping plan computed ' +
      '(per head, ~ n^γ; dense causal attention: 2) and of measured time, forward / forward+backward, per method:'),
    '',
    table(['model', 'α', 'S/ln n', 'skip rate', ...(f.oracleKept ? ['block pairs kept: plan / oracle'] : []),
      'γ (computed scores)',
      ...methods.map((k) => `γ time: ${k}`)], body),
    '',
    ...timeRatioTable(exp),
    wrap(`Measured cost share (computed / visible scores) of the ${f.costVsZeta.heads} heads with α > 1 at n = ` +
      `${f.n}: slope ${fix(f.costVsZeta.slope, 2)} against ζ = α − 1 and ${fix(f.costVsVarentropy.slope, 2)} against ` +
      `their varentropy, in log–log (the seed's claims "∝ 1/ζ" and "∝ 1/varentropy" need −1).`),
  ].join('\n');
}

const MASK = 'exact-mask α-entmax';

/**
 * Per model with heads of α > 1, at the largest n the exact mask was timed: the forward and
 * forward+backward time of the bound-planned path and of the exact mask over dense α-entmax (layers
 * summed), from timing.csv; empty when the run predates the exact-mask method.
 */
function timeRatios(exp: string): { n: number; ratios: Record<string, Record<'bound' | 'mask', [number, number]>> } {
  const timing = csv(`experiments/results/${exp}/timing.csv`);
  const masked = timing.filter((r) => r.method === MASK);
  const n = masked.length ? Math.max(...masked.map((r) => Number(r.n))) : NaN;
  const sum = (m: string, method: string, key: string) => timing
    .filter((r) => r.model === m && r.method === method && Number(r.n) === n)
    .reduce((s, r) => s + Number(r[key]), 0);
  const over = (m: string, method: string, key: string) => sum(m, method, key) / sum(m, 'dense α-entmax', key);
  const ratio = (m: string, method: string): [number, number] =>
    [over(m, method, 'fwdMs'), over(m, method, 'fwdBwdMs')];
  const models = masked.length ? Object.keys(blocksKept(exp)) : [];
  return { n, ratios: Object.fromEntries(models.map((m) => [m, { bound: ratio(m, 'block-skipping α-entmax'),
    mask: ratio(m, MASK) }])) };
}

/** The table of `timeRatios` (nothing for a run without the exact mask). */
function timeRatioTable(exp: string): string[] {
  const { n, ratios } = timeRatios(exp);
  if (!Object.keys(ratios).length) return [];
  const pair = ([f, b]: [number, number]) => `${fix(f, 2)} / ${fix(b, 2)}`;
  return [
    wrap(`Time at n = ${n} relative to dense α-entmax (same run, layers summed, models with heads of α > 1), ` +
      'forward / forward+backward: the bound-planned path, and the exact mask (every score computed, then only ' +
      'the blocks holding a nonzero carried on):'),
    '',
    table(['model', 'block-skipping (bound plan)', 'exact mask (plan: scores)'],
      Object.entries(ratios).map(([m, r]) => [m, pair(r.bound), pair(r.mask)])),
    '',
  ];
}

/** The synthetic set: the fits as for trained heads, then every head at the largest n. */
function complexitySynthetic(): string {
  const exp = 'complexity_measured/synthetic';
  const f = json(`experiments/results/${exp}/fits.json`);
  const heads = csv(`experiments/results/${exp}/heads.csv`).filter((r) => Number(r.n) === f.n);
  const body = heads.map((r) => [r.model, r.head, fix(Number(r.alpha), 2), fix(Number(r.entropy), 2),
    fix(Number(r.varentropy), 2), fix(Number(r.skipRate), 3), fix(Number(r.computed) / Number(r.visible), 3), r.mode]);
  return [
    complexityMeasured(exp), '',
    `Every synthetic head at n = ${f.n}:`, '',
    table(['set', 'head', 'α', 'S/ln n', 'varentropy', 'skip rate', 'computed / visible', 'path'], body),
  ].join('\n');
}

/**
 * Per model with heads of α > 1, the mean share of 64 × 64 block pairs its plans kept and the mean
 * share holding a nonzero probability (what an oracle would keep), at the experiment's largest n.
 */
function blocksKept(exp: string): Record<string, { plan: number; oracle: number }> {
  const f = json(`experiments/results/${exp}/fits.json`);
  const sparse = csv(`experiments/results/${exp}/heads.csv`).filter((r) => Number(r.n) === f.n && Number(r.alpha) > 1);
  const models = [...new Set(sparse.map((r) => r.model))];
  return Object.fromEntries(models.map((m) => {
    const rs = sparse.filter((r) => r.model === m);
    return [m, { plan: meanOf(rs, 'keptBlocks'), oracle: meanOf(rs, 'oracleKept') }];
  }));
}

/** '; an oracle … could have skipped x–y% …, the plans u–v%' (means per model, block pairs). */
function skippedRange(exp: string): string {
  const kept = Object.values(blocksKept(exp));
  const range = (xs: number[]) => {
    const [lo, hi] = [fix(100 * (1 - Math.max(...xs)), 0), fix(100 * (1 - Math.min(...xs)), 0)];
    return lo === hi ? `${lo}%` : `${lo}–${hi}%`;
  };
  return `; an oracle that knew the probabilities could have skipped ${range(kept.map((k) => k.oracle))} of the ` +
    `64 × 64 block pairs (mean per model), the plans ${range(kept.map((k) => k.plan))}`;
}

/** One sentence for the README: the measured exponents of work, per trained model. */
function complexityHeadline(): string {
  const f = json('experiments/results/complexity_measured/fits.json');
  const models = Object.keys(f.work);
  const t = (m: string) => f.time[m]['block-skipping α-entmax'];
  return wrap(`Measured on the heads of trained flip-flop models (${runOf('complexity_measured')}), the scores ` +
    `that exact block skipping computes grow as n^γ with γ = ` +
    models.map((m) => `${fix(f.work[m], 2)} (${m})`).join(', ') + `, against 2 for dense attention; the time of ` +
    `the block-skipping path grows with forward exponents ${models.map((m) => fix(t(m).fwd, 2)).join(', ')} in ` +
    `the same order (docs/results.md §1e)` + (f.oracleKept ? skippedRange('complexity_measured') : '') + '.' +
    maskHeadline());
}

/** '; the exact mask …' for the headline: its forward+backward time over dense α-entmax, per model. */
function maskHeadline(): string {
  const { n, ratios } = timeRatios('complexity_measured');
  const both = Object.values(ratios).map((r) => r.mask[1]), fwd = Object.values(ratios).map((r) => r.mask[0]);
  if (!both.length) return '';
  const span = (xs: number[]) => `${fix(Math.min(...xs), 2)}–${fix(Math.max(...xs), 2)}×`;
  return ` The exact mask, which computes every score and then carries on only the blocks holding a nonzero, ` +
    `took ${span(both)} the forward+backward time of dense α-entmax at n = ${n} (forward alone ${span(fwd)}): ` +
    'an option of `attention()` while training (`maskAbove`), off by default (§1e).';
}

export const RESULT_SECTIONS: Record<string, () => string> = {
  'complexity-support': complexitySupport,
  'complexity-trained': complexityTrained,
  'complexity-work': complexityWork,
  'complexity-slopes': complexitySlopes,
  'training-table': trainingTable,
  'sampling-table': samplingTable,
  'free-energy-table': freeEnergyTable,
  'length-table': lengthTable,
  'complexity-measured': () => complexityMeasured(),
  'complexity-synthetic': complexitySynthetic,
  'complexity-nback': () => complexityMeasured('complexity_measured/nback'),
  'complexity-headline': complexityHeadline,
};
