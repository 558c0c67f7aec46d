/**
 * The README's performance tables, rendered from the committed bench/results.json (`pnpm bench`):
 * every ratio in them was measured against its baseline in the same process.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { table, wrap } from './render_results.js';

type Row = Record<string, number | string>;
type Results = {
  date: string;
  machine: { cpus: number; cpu: string };
  backend: { name: string; detail: string };
  versions: { tfjs: string; node: string };
  config: Record<'maps' | 'attention' | 'blockSparse', Record<string, number | string>>;
  maps: Row[];
  attention: Row[];
  blockSparse: Row[];
  sweep: Row[];
};

const bench = (): Results =>
  JSON.parse(readFileSync(join(import.meta.dirname, '..', 'bench', 'results.json'), 'utf8')) as Results;
const num = (x: number | string | undefined) => (typeof x === 'number' ? x : NaN);
const ms = (x: number | string | undefined) => {
  const v = num(x);
  return Number.isNaN(v) ? '–' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
};
const times = (x: number | string | undefined) => (Number.isNaN(num(x)) ? '–' : `${num(x).toFixed(2)}×`);

function benchRun(): string {
  const b = bench();
  return wrap(`Run of ${b.date.slice(0, 10)} (bench/results.json): ${b.backend.name} (${b.backend.detail}), ` +
    `tfjs ${b.versions.tfjs}, Node ${b.versions.node}, ${b.machine.cpus} × ${b.machine.cpu}.`);
}

function benchMaps(): string {
  const b = bench();
  const widths = [...new Set(b.maps.map((r) => r.width))];
  const at = (w: number | string, map: string) => b.maps.find((r) => r.width === w && r.map === map)!;
  const cell = (w: number | string, map: string) => {
    const r = at(w, map);
    return `${ms(r.fwdMs)} / ${ms(r.fwdBwdMs)} (${times(r.fwdBwdRatio)})`;
  };
  const body = widths.map((w) => [
    `${w} × ${at(w, 'softmax').rows}`,
    `${ms(at(w, 'softmax').fwdMs)} / ${ms(at(w, 'softmax').fwdBwdMs)}`,
    cell(w, 'sparsemax'), cell(w, 'entmax15'),
    cell(w, 'entmaxBisect(1.5) halley'), cell(w, 'entmaxBisect(1.5) bisect'),
    cell(w, 'entmaxBisect(1.3) halley'), cell(w, 'entmaxBisect(1.3) bisect'),
  ]);
  return table(['width × rows', 'softmax', 'sparsemax (sort)', 'entmax15 (sort)', 'α = 1.5 Halley',
    'α = 1.5 bisection', 'α = 1.3 Halley', 'α = 1.3 bisection'], body);
}

function benchAttention(): string {
  const b = bench();
  const Ts = [...new Set(b.attention.map((r) => r.T))];
  const names = [...new Set(b.attention.map((r) => String(r.normaliser)))];
  const at = (T: number | string, n: string) => b.attention.find((r) => r.T === T && r.normaliser === n);
  const body = names.map((n) => [
    n,
    ...Ts.map((T) => {
      const r = at(T, n);
      if (!r) return '–';
      return n === 'softmax'
        ? `${ms(r.fwdMs)} / ${ms(r.fwdBwdMs)} ms`
        : `${times(r.fwdRatio)} / ${times(r.fwdBwdRatio)}`;
    }),
    String(at(Ts.at(-1)!, n)?.alpha ?? '–'),
  ]);
  return table(['normaliser', ...Ts.map((T) => `T = ${T}: fwd / fwd+bwd`), `α per head (T = ${Ts.at(-1)})`], body);
}

function benchSparse(): string {
  const b = bench();
  const T = Math.max(...b.blockSparse.map((r) => num(r.T)));
  const body = b.blockSparse
    .filter((r) => r.T === T)
    .map((r) => [
      String(r.heads), String(r.case), `${ms(r.fwdMs)} / ${ms(r.fwdBwdMs)} ms`,
      `${times(r.fwdRatio)} / ${times(r.fwdBwdRatio)}`,
      Number.isNaN(num(r.skipRate)) ? '–' : num(r.skipRate).toFixed(3),
      String(r.case).includes('(auto)') ? 'its own plan' : String(r.mode),
    ]);
  return table(['heads', `case (T = ${T})`, 'fwd / fwd+bwd', 'vs softmax attention', 'skip rate', 'mode'], body);
}

function benchSweep(): string {
  const b = bench();
  const body = b.sweep.map((r) => [
    String(r.noise), num(r.entropy).toFixed(3), num(r.support).toFixed(3), num(r.keptBlocks).toFixed(3),
    num(r.skipRate).toFixed(3), times(r.fwdRatio),
  ]);
  return table(['keys\' noise', 'entropy / ln(visible)', 'support fraction', 'kept blocks', 'skip rate',
    'forward vs softmax'], body);
}

/** The H200 run of packages/attention/bench/gpu_check.ts (bench/gpu/, per-head and batched layouts). */
function benchGpu(): string {
  type Gpu = { checks: Array<{ name: string; maxRelErr: number }>; timings: Row[] };
  const read = (f: string) =>
    JSON.parse(readFileSync(join(import.meta.dirname, '..', 'bench', 'gpu', f), 'utf8')) as Gpu;
  const [perHead, batched] = [read('h200_gpu_check.json'), read('h200_gpu_check_batched.json')];
  const worst = Math.max(...perHead.checks.map((c) => c.maxRelErr));
  const n = Math.max(...perHead.timings.map((r) => num(r.n)));
  const soft = (g: Gpu) => ms(g.timings.find((r) => r.n === n && r.normaliser === 'softmax')!.fwdMs);
  const ratios = [...perHead.timings, ...batched.timings].filter((r) => r.n === n && r.normaliser !== 'softmax')
    .map((r) => num(r.fwdRatio));
  return wrap(`Measured earlier on an NVIDIA H200, before the fused kernels: every map, its gradients (scores and ` +
    `α), the losses, logitStats and attention with six non-AES normalisers equal the cpu backend within ` +
    `${worst.toExponential(1)} relative (${perHead.checks.length} checks, \`bench/gpu/h200_gpu_check.json\`), but ` +
    `softmax attention at n = ${n}, 8 heads, d = 64 took ${soft(perHead)} ms forward (per-head layout) / ` +
    `${soft(batched)} ms (batched), and the composite entmax paths ${Math.min(...ratios).toFixed(1)}–` +
    `${Math.max(...ratios).toFixed(1)}× that.`);
}

export const BENCH_SECTIONS: Record<string, () => string> = {
  'bench-run': benchRun,
  'bench-maps': benchMaps,
  'bench-attention': benchAttention,
  'bench-sparse': benchSparse,
  'bench-sweep': benchSweep,
  'bench-gpu': benchGpu,
};
