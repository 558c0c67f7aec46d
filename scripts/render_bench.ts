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

const benchFile = <T>(name: string): T =>
  JSON.parse(readFileSync(join(import.meta.dirname, '..', 'bench', name), 'utf8')) as T;
const bench = (): Results => benchFile<Results>('results.json');
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
  const at = (w: number | string, map: string) => b.maps.find((r) => r.width === w && r.map === map);
  const cell = (w: number | string, map: string) => {
    const r = at(w, map);
    if (!r) return '–';                                  // a row the run did not have
    return `${ms(r.fwdMs)} / ${ms(r.fwdBwdMs)} (${times(r.fwdBwdRatio)})`;
  };
  const body = widths.map((w) => [
    `${w} × ${at(w, 'softmax')!.rows}`,
    `${ms(at(w, 'softmax')!.fwdMs)} / ${ms(at(w, 'softmax')!.fwdBwdMs)}`,
    cell(w, 'sparsemax'), cell(w, 'entmax15'),
    cell(w, 'entmaxBisect(1.5) halley'), cell(w, 'entmaxBisect(1.5) bisect'),
    cell(w, 'entmaxBisect(1.3) halley'), cell(w, 'entmaxBisect(1.3) bisect'),
    cell(w, 'hostEntmax(1.5)'), cell(w, 'hostEntmax(1.3)'),
  ]);
  return table(['width × rows', 'softmax', 'sparsemax (sort)', 'entmax15 (sort)', 'α = 1.5 Halley',
    'α = 1.5 bisection', 'α = 1.3 Halley', 'α = 1.3 bisection', 'α = 1.5 row kernel', 'α = 1.3 row kernel'], body);
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

/** `pnpm bench:train --json bench/train.json`: tokens/s per normaliser and size, ratio to softmax. */
function benchTrain(): string {
  const t = benchFile<{ backend: { detail: string }; steps: number; rows: Row[] }>('train.json');
  const sizes = [...new Set(t.rows.map((r) => String(r.size)))];
  const names = [...new Set(t.rows.map((r) => String(r.normaliser)))];
  const at = (size: string, n: string) => t.rows.find((r) => r.size === size && r.normaliser === n);
  const body = names.map((n) => [n, ...sizes.map((size) => {
    const r = at(size, n);
    return r ? `${num(r.tokensPerSecond).toFixed(0)} (${times(r.ratio)})` : '–';
  })]);
  return wrap(`bench/train.json: wasm (${t.backend.detail}), ${t.steps} steps per run; tokens/s, median of ` +
    `interleaved rounds, and the ratio to softmax in the same round.`) + '\n\n' +
    table(['normaliser', ...sizes.map((s) => `${s}: tokens/s (× softmax)`)], body);
}

/** `pnpm bench:threads --json bench/threads.json`: speeds on 1 thread and on N, ratio in the same round. */
function benchThreads(): string {
  const t = benchFile<{ date: string; threads: number; rounds: number; rows: Row[] }>('threads.json');
  const body = t.rows.map((r) => [String(r.measure), num(r.oneThread).toFixed(1), num(r.threads).toFixed(1),
    times(r.ratio)]);
  return wrap(`bench/threads.json (${t.date.slice(0, 10)}): median of ${t.rounds} interleaved rounds, each ` +
    `thread count in its own process; ratio = ${t.threads}-thread speed over 1-thread speed in the same round.`) +
    '\n\n' + table(['measure (higher is faster)', '1 thread', `${t.threads} threads`, 'ratio'], body);
}

/** `pnpm bench:profile --json bench/profile.json`: where a training step's time goes. */
function benchProfile(): string {
  const p = benchFile<{ date: string; steps: number; rows: Row[] }>('profile.json');
  const pct = (x: number | string | undefined) => `${(100 * num(x)).toFixed(0)}%`;
  const body = p.rows.map((r) => [String(r.size), String(r.attention), String(r.threads),
    (num(r.wallMs) / num(r.steps)).toFixed(0), num(r.kernels).toFixed(0), pct(r.matMulShare), pct(r.customShare)]);
  return wrap(`bench/profile.json (${p.date}): tf.profile around ${p.steps} training steps after a warm-up ` +
    `(profiling itself slows a step); shares of the wall time. "custom ops" are customGrad ops (the entmax ` +
    `row kernel among them), with the kernels they call.`) + '\n\n' +
    table(['size', 'normaliser', 'threads', 'ms / step', 'kernels / step', 'in matMul', 'in custom ops'], body);
}

/** The H200 run of packages/attention/bench/gpu_check.ts (bench/gpu/, per-head and batched layouts). */
function benchGpu(): string {
  type Gpu = { checks: Array<{ name: string; maxRelErr: number }>; timings: Row[] };
  const read = (f: string) => benchFile<Gpu>(join('gpu', f));
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
  'bench-train': benchTrain,
  'bench-threads': benchThreads,
  'bench-profile': benchProfile,
};
