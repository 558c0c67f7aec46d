/**
 * Experiment 4: the free-energy reading of a temperature-scaled softmax. Tests the seed note's
 * "Free energy" section, as corrected in docs/math.md §8, on random logit vectors z = scale·N(0, 1).
 *
 *   pnpm exp:free-energy            (quick: 200 vectors, n ∈ {10, 100, 1000}, 25 β in [0.05, 20])
 *   pnpm exp:free-energy --full     (1000 vectors, n up to 10000, 50 β, 200 solver vectors)
 *   (the same: npx tsx experiments/free_energy.ts [--full] [--key=value …])
 *
 * With energies E = −z, β = 1/T, p = e^{−βE}/Z, F = −β⁻¹ ln Z, everything in float64:
 * (a) identity S = β(⟨E⟩ − F) at every vector and β: `identity.maxAbsError` is rounding (≲ 1e-11
 *     nats) when it holds. The seed note printed S = β⁻¹⟨E⟩ + F; `seedForm` says how far that is
 *     from S (≈ T ln n at high T, far from 0 at every β: a wrong formula, not rounding).
 * (b) heat capacity dS/dT = V/T, V = Var(−ln p) in nats²: central differences of S(T) with step
 *     fdStep·T against V/T; `heatCapacity.maxRelError` is the finite-difference error (≲ 1e-6) when
 *     it holds. Points with V < vFloor (nats², p ≈ one-hot) are listed, not scored: there the
 *     rounding of S, ~1e-16 nats, over the step gives a relative error ~1e-16 / (fdStep·V).
 * (c) solveTemperature to targets fraction·ln n at each tolerance in `tols`: iterations (entropy
 *     evaluations) per tolerance, `solver.convergedShare` (1 when every solve converged) and
 *     `solver.maxResidualOverTol` (|S(T) − target| recomputed at the returned T, over tol; ≤ 1).
 * Writes experiments/results/free_energy/{config.json, identity.csv, heat_capacity.csv, solver.csv,
 * summary.json, identity|heat_capacity|solver .svg/.png}.
 */
import { pathToFileURL } from 'node:url';
import { freeEnergyStats, Rng, solveTemperature } from '@aes/models';
import { median, startRun, type Json, type Spec } from './common.js';

const QUICK = {
  vectors: 200, sizes: '10,100,1000', scales: '0.5,2,5', betas: 25, betaMin: 0.05, betaMax: 20,
  temps: 25, fdStep: 1e-4, vFloor: 1e-6, solveVectors: 40, fractions: '0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9',
  tols: '1e-2,1e-4,1e-6,1e-8', seed: 1,
};
const FULL = { vectors: 1000, sizes: '10,100,1000,10000', betas: 50, temps: 50, solveVectors: 200 };

type Row = Record<string, number | string | boolean>;
interface Vec { vector: number; n: number; scale: number; z: Float64Array }

const list = (s: string, what: string) => {
  const xs = s.split(',').map(Number);
  if (!xs.length || xs.some((x) => !(x > 0) || !Number.isFinite(x)))
    throw new RangeError(`free_energy: --${what} must be positive numbers separated by commas, got '${s}'`);
  return xs;
};
const logGrid = (lo: number, hi: number, k: number) =>
  Array.from({ length: k }, (_, i) => lo * (hi / lo) ** (k > 1 ? i / (k - 1) : 0));
const maxOf = (xs: number[]) => xs.reduce((a, b) => Math.max(a, b), -Infinity);
const minOf = (xs: number[]) => xs.reduce((a, b) => Math.min(a, b), Infinity);

/** `count` vectors cycling through the (n, scale) combinations. */
function vectors(count: number, combos: Array<{ n: number; scale: number }>, rng: Rng): Vec[] {
  return Array.from({ length: count }, (_, vector) => {
    const { n, scale } = combos[vector % combos.length];
    return { vector, n, scale, z: Float64Array.from({ length: n }, () => scale * rng.normal()) };
  });
}

/** A chart of `series` against a log x: lines with points unless `layer` is given; `extra` adds encodings. */
function chart(
  title: string,
  values: Row[],
  x: [string, string],
  y: [string, string, Json?],
  yScale: Json,
  extra: Json = {},
  layer?: Json[],
): Spec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 480,
    height: 300,
    title,
    data: { values },
    ...(layer ? { layer } : { mark: { type: 'line', point: true } }),
    encoding: {
      x: {
        field: x[0],
        type: 'quantitative',
        scale: { type: 'log', nice: false, reverse: x[0] === 'tol' },
        title: x[1],
        axis: x[0] === 'tol' ? { format: '.0e' } : {},
      },
      y: { field: y[0], type: 'quantitative', scale: yScale, title: y[1], axis: y[2] ?? {} },
      color: {
        field: 'series',
        type: 'nominal',
        title: null,
        legend: { orient: 'bottom', columns: layer ? 4 : 2, labelLimit: 400 },
      },
      ...extra,
    },
  } as Spec;
}

export async function run(argv: string[]): Promise<Json> {
  const { cfg, writeCsv, writeJson, plot } = await startRun('free_energy', QUICK, FULL, argv);
  for (const k of ['vectors', 'betas', 'temps', 'solveVectors'] as const) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1)
      throw new RangeError(`free_energy: --${k} must be an integer ≥ 1, got ${cfg[k]}`);
  }
  for (const k of ['betaMin', 'betaMax', 'fdStep', 'vFloor'] as const)
    if (!(cfg[k] > 0)) throw new RangeError(`free_energy: --${k} must be > 0, got ${cfg[k]}`);
  if (cfg.betaMin >= cfg.betaMax || cfg.fdStep >= 0.5)
    throw new RangeError('free_energy: need betaMin < betaMax and fdStep < 0.5');
  const sizes = list(cfg.sizes, 'sizes'), scales = list(cfg.scales, 'scales'), tols = list(cfg.tols, 'tols');
  const fractions = list(cfg.fractions, 'fractions');
  if (fractions.some((f) => f >= 1)) throw new RangeError('free_energy: --fractions must lie in (0, 1)');
  const combos = sizes.flatMap((n) => scales.map((scale) => ({ n, scale })));
  const label = (v: Vec) => `n = ${v.n}, scale = ${v.scale}`;

  // (a) S against β(⟨E⟩ − F) and the seed's printed β⁻¹⟨E⟩ + F
  const betas = logGrid(cfg.betaMin, cfg.betaMax, cfg.betas);
  const vecs = vectors(cfg.vectors, combos, new Rng(cfg.seed));
  const identity: Row[] = vecs.flatMap((v) => betas.map((beta) => {
    const s = freeEnergyStats(v.z, 1 / beta);
    const corrected = beta * (s.meanEnergy - s.F), seed = s.meanEnergy / beta + s.F;
    return {
      vector: v.vector,
      n: v.n,
      scale: v.scale,
      beta,
      S: s.entropy,
      meanEnergy: s.meanEnergy,
      F: s.F,
      corrected,
      seedForm: seed,
      identityErr: Math.abs(s.entropy - corrected),
      seedErr: Math.abs(seed - s.entropy),
    };
  }));
  writeCsv('identity.csv', identity);
  const shown = vecs[Math.floor(combos.length / 2) % vecs.length];
  const idPlot = identity.filter((r) => r.vector === shown.vector).flatMap((r) => [
    { beta: r.beta, nats: r.S, series: 'S = −Σ p ln p' },
    { beta: r.beta, nats: r.corrected, series: 'β(⟨E⟩ − F)  (corrected)' },
    { beta: r.beta, nats: r.seedForm, series: 'β⁻¹⟨E⟩ + F  (seed note)' },
  ]);
  const series = [...new Set(idPlot.map((r) => r.series))];
  await plot(
    'identity',
    chart(
      `Entropy identity on one vector (${label(shown)}), E = −z`,
      idPlot,
      ['beta', 'inverse temperature β = 1/T (log)'],
      ['nats', 'value (nats; symlog scale)', { values: [-100, -50, -20, -10, -5, -2, -1, 0, 1, 2, 5] }],
      { type: 'symlog' },
      {
        strokeDash: {
          field: 'series',
          type: 'nominal',
          title: null,
          scale: {
            domain: series,
            range: [
              [1, 0],
              [6, 4],
              [2, 2],
            ],
          },
        },
      },
      [
        {
          transform: [{ filter: { field: 'series', equal: series[0] } }],
          mark: { type: 'line', strokeWidth: 6, opacity: 0.6 },
        },
        {
          transform: [{ filter: { not: { field: 'series', equal: series[0] } } }],
          mark: { type: 'line', strokeWidth: 2 },
        },
      ],
    ),
  );

  // (b) dS/dT by central differences against V/T, one vector per (n, scale)
  const temps = logGrid(1 / cfg.betaMax, 1 / cfg.betaMin, cfg.temps);
  const heat: Row[] = vectors(combos.length, combos, new Rng(cfg.seed + 1)).flatMap((v) => temps.map((t) => {
    const h = cfg.fdStep * t, s = freeEnergyStats(v.z, t);
    const fd = (freeEnergyStats(v.z, t + h).entropy - freeEnergyStats(v.z, t - h).entropy) / (2 * h);
    const vt = s.varentropy / t;
    return {
      vector: v.vector,
      n: v.n,
      scale: v.scale,
      series: `n = ${v.n}`,
      logitScale: `scale ${v.scale}`,
      T: t,
      S: s.entropy,
      varentropy: s.varentropy,
      fdSlope: fd,
      VoverT: vt,
      relErr: Math.abs(fd - vt) / vt,
      scored: s.varentropy >= cfg.vFloor,
    };
  }));
  writeCsv('heat_capacity.csv', heat.map(({ series: _, logitScale: __, ...r }) => r));
  const hcPlot = heat.filter((r) => r.scored).flatMap((r) => [
    { ...r, slope: r.VoverT, kind: 'V/T' }, { ...r, slope: r.fdSlope, kind: 'FD' }]);
  await plot(
    'heat_capacity',
    chart(
      `dS/dT: central differences (points) vs V/T (lines), z = scale·N(0, 1); V < ${cfg.vFloor.toExponential()} ` +
      `nats² left out`,
      hcPlot,
      ['T', 'temperature T (log)'],
      ['slope', 'dS/dT (nats per unit of T; log)'],
      { type: 'log' },
      {
        strokeDash: { field: 'logitScale', type: 'nominal', legend: { orient: 'bottom', title: null } },
        shape: { field: 'logitScale', type: 'nominal', legend: { orient: 'bottom', title: null } },
      },
      [
        { transform: [{ filter: "datum.kind === 'V/T'" }], mark: { type: 'line', strokeWidth: 2 } },
        {
          transform: [{ filter: "datum.kind !== 'V/T'" }],
          mark: { type: 'point', filled: true, size: 30, opacity: 1 },
        },
      ],
    ),
  );

  // (c) solveTemperature: iterations and residuals against the tolerance
  const solver: Row[] = vectors(cfg.solveVectors, combos, new Rng(cfg.seed + 2)).flatMap((v) =>
    fractions.flatMap((fraction) =>
      tols.map((tol) => {
        const r = solveTemperature(v.z, { fraction }, { tol });
        const residual = Math.abs(freeEnergyStats(v.z, r.temperature).entropy - r.target);
        return {
          vector: v.vector,
          n: v.n,
          scale: v.scale,
          fraction,
          tol,
          target: r.target,
          temperature: r.temperature,
          iterations: r.iterations,
          converged: r.converged,
          clamped: r.clamped ?? '',
          residual,
        };
      }),
    ),
  );
  writeCsv('solver.csv', solver);
  const byTol = tols.map((tol) => {
    const rs = solver.filter((r) => r.tol === tol), its = rs.map((r) => r.iterations as number);
    return {
      tol,
      solves: rs.length,
      medianIterations: median(its),
      maxIterations: maxOf(its),
      convergedShare: rs.filter((r) => r.converged).length / rs.length,
      maxAbsResidual: maxOf(rs.map((r) => r.residual as number)),
    };
  });
  await plot(
    'solver',
    chart(
      `solveTemperature: iterations to |S − target| ≤ tol (${solver.length / tols.length} solves per tol)`,
      byTol.flatMap((b) => [
        { tol: b.tol, iterations: b.medianIterations, series: 'median' },
        { tol: b.tol, iterations: b.maxIterations, series: 'max' },
      ]),
      ['tol', 'tolerance tol on |S − target| (nats; log, tighter →)'],
      ['iterations', 'iterations (entropy evaluations) per solve'],
      { zero: true },
    ),
  );

  const scored = heat.filter((r) => r.scored), seedErrs = identity.map((r) => r.seedErr as number);
  const summary = {
    identity: { points: identity.length, maxAbsError: maxOf(identity.map((r) => r.identityErr as number)) },
    seedForm: {
      maxAbsDeviation: maxOf(seedErrs),
      medianAbsDeviation: median(seedErrs),
      minAbsDeviation: minOf(seedErrs),
      shareAbove1e3: seedErrs.filter((e) => e > 1e-3).length / seedErrs.length,
    },
    heatCapacity: {
      points: heat.length,
      scored: scored.length,
      maxRelError: maxOf(scored.map((r) => r.relErr as number)),
      medianRelError: median(scored.map((r) => r.relErr as number)),
      maxRelErrorUnscored: maxOf(heat.filter((r) => !r.scored).map((r) => r.relErr as number)),
    },
    solver: {
      solves: solver.length,
      convergedShare: solver.filter((r) => r.converged).length / solver.length,
      maxAbsResidual: maxOf(solver.map((r) => r.residual as number)),
      maxResidualOverTol: maxOf(solver.map((r) => (r.residual as number) / (r.tol as number))),
      byTol,
    },
  };
  writeJson('summary.json', summary);
  return summary;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const t0 = performance.now();
  run(process.argv.slice(2))
    .then((s) => console.log(JSON.stringify(s, null, 2), `\n${((performance.now() - t0) / 1000).toFixed(1)} s`))
    .catch((e) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    });
}
