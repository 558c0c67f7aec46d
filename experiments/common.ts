/**
 * Shared by the experiment scripts: `--key=value` overrides of a CONFIG (quick size by default,
 * `--full` for the size used in docs/results.md), the output folder
 * `experiments/results/<name>/` with config.json (configuration, backend, machine, versions, seed),
 * CSV/JSON results and SVG+PNG plots (Vega-Lite, see @aes/train's plot module).
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { selectBackend, silenceTfjs, type BackendName } from '@aes/node';
import { parseFlags, writeChart } from '@aes/train';

export type Json = Record<string, unknown>;
export type Spec = Parameters<typeof writeChart>[0];

export const RESULTS = join(import.meta.dirname, 'results');

/** An experiment run: its resolved config, output folder and writers. */
export interface Run<C> {
  cfg: C & { full: boolean; backend: string; out: string };
  dir: string;
  writeJson(file: string, data: unknown): string;
  writeCsv(file: string, rows: Json[]): string;
  plot(file: string, spec: Spec): Promise<string[]>;
}

/**
 * Parses flags (quick defaults, `--full` switches to `full` overrides), selects the backend and
 * writes config.json. `name` is the folder under experiments/results (or `--out`).
 */
export async function startRun<C extends Json>(
  name: string,
  quick: C,
  full: Partial<C>,
  argv: string[],
): Promise<Run<C>> {
  const flags = parseFlags(
    argv,
    { ...quick, full: false, backend: 'wasm', out: '' } as never,
    `experiment ${name}`,
  ) as C & { full: boolean; backend: string; out: string };
  const cfg = flags.full ? { ...flags, ...full, ...explicit(argv, flags) } : flags;
  silenceTfjs();
  const backend = await selectBackend(cfg.backend as BackendName);
  const dir = cfg.out || join(RESULTS, name);
  mkdirSync(dir, { recursive: true });
  const info = {
    experiment: name,
    config: cfg,
    backend: { name: backend.name, detail: backend.detail },
    machine: {
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      platform: `${process.platform}-${process.arch}`,
    },
    versions: { node: process.version, tfjs: tf.version.tfjs },
    date: new Date().toISOString(),
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(info, null, 2));
  return {
    cfg,
    dir,
    writeJson: (file, data) => {
      const p = join(dir, file);
      writeFileSync(p, JSON.stringify(data, null, 2));
      return p;
    },
    writeCsv: (file, rows) => {
      const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
      const cell = (v: unknown) =>
        typeof v === 'string' && /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : String(v ?? '');
      const p = join(dir, file);
      writeFileSync(p, [cols.join(','), ...rows.map((r) => cols.map((c) => cell(r[c])).join(','))].join('\n') + '\n');
      return p;
    },
    plot: (file, spec) => writeChart(spec, join(dir, file)),
  };
}

/** Flags given explicitly on the command line win over the --full preset. */
function explicit(argv: string[], flags: Json): Json {
  const given = new Set(
    argv
      .filter((a) => a.startsWith('--'))
      .map((a) =>
        a
          .slice(2)
          .split('=')[0]
          .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()),
      ),
  );
  return Object.fromEntries(Object.entries(flags).filter(([k]) => given.has(k)));
}

/** Rows of a CSV that `writeCsv` wrote, as objects of strings (quoted fields may hold commas and `""`). */
export function readCsv(file: string): Array<Record<string, string>> {
  const fields = (line: string) => {
    const out = [''];
    for (let i = 0, quoted = false; i < line.length; i++) {
      const ch = line[i];
      if (ch === '"' && quoted && line[i + 1] === '"') out[out.length - 1] += line[++i];
      else if (ch === '"') quoted = !quoted;
      else if (ch === ',' && !quoted) out.push('');
      else out[out.length - 1] += ch;
    }
    return out;
  };
  const [head, ...rows] = readFileSync(file, 'utf8').trim().split('\n');
  const cols = fields(head);
  return rows.map((line) => Object.fromEntries(fields(line).map((v, i) => [cols[i], v])));
}

/** Least-squares slope and intercept of y on x. */
export function fitLine(x: number[], y: number[]): { slope: number; intercept: number; r2: number } {
  const n = x.length;
  const mx = x.reduce((a, b) => a + b) / n, my = y.reduce((a, b) => a + b) / n;
  const sxy = x.reduce((a, xi, i) => a + (xi - mx) * (y[i] - my), 0), sxx = x.reduce((a, xi) => a + (xi - mx) ** 2, 0);
  const slope = sxy / sxx, intercept = my - slope * mx;
  const ssr = y.reduce((a, yi, i) => a + (yi - intercept - slope * x[i]) ** 2, 0),
    sst = y.reduce((a, yi) => a + (yi - my) ** 2, 0);
  return { slope, intercept, r2: sst > 0 ? 1 - ssr / sst : 1 };
}

/** Median wall time (ms) of `repeats` calls after one warm-up, each read back from the backend and disposed. */
export async function timeIt(fn: () => tf.Tensor | tf.Tensor[], repeats: number): Promise<number> {
  const ts: number[] = [];
  for (let r = 0; r <= repeats; r++) {
    const t0 = performance.now();
    const y = tf.tidy(fn);
    const ys = Array.isArray(y) ? y : [y];
    await Promise.all(ys.map((t) => t.data()));
    if (r > 0) ts.push(performance.now() - t0);
    tf.dispose(ys);
  }
  return median(ts);
}

/** Median of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * A real text that needs no download and does not change: a snapshot of this repository's
 * documentation and TypeScript sources (README, docs/*.md, packages/*\/src/*.ts of commit a7ac77f,
 * 2026-12-01), committed as experiments/data/corpus.txt; returns its path for `train({data})`.
 * About 380 kB of English prose, formulas and code.
 */
export function repoCorpus(): string {
  return join(import.meta.dirname, 'data', 'corpus.txt');
}
