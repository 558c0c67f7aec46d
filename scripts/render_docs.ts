/**
 * Renders the parts of the docs that quote results, from committed result files, so no number in
 * them is typed by hand: each `<!-- render:NAME -->` … `<!-- /render:NAME -->` block of a Markdown
 * file is replaced by section NAME's output. `pnpm render-docs` writes the files; docs_test.ts fails when a
 * committed file differs from what this renders.
 *
 *   main-job    README: what the main job printed (experiments/results/main_job/, scripts/main_job.sh)
 *   bad-inputs  docs/bad_inputs.md: the table of packages/train/test/bad_inputs.ts
 *   aes-*, positions   docs/math.md: experiments/results/aes/
 *   complexity-*, training-*, sampling-*, free-energy-*   docs/results.md (render_results.ts)
 *   bench-*     README's performance section: bench/results.json (render_bench.ts)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BAD_INPUTS } from '../packages/train/test/bad_inputs.js';
import { BENCH_SECTIONS } from './render_bench.js';
import { csv, RESULT_SECTIONS, wrap } from './render_results.js';

const ROOT = join(import.meta.dirname, '..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

/** The files with rendered blocks. */
export const RENDERED = ['README.md', 'docs/bad_inputs.md', 'docs/math.md', 'docs/results.md'];

const SECTIONS: Record<string, () => string> = {
  'main-job': mainJob,
  'bad-inputs': badInputs,
  'aes-length': aesLength,
  'aes-runs': aesRuns,
  positions,
  ...RESULT_SECTIONS,
  ...BENCH_SECTIONS,
};

function aesLength(): string {
  const rows = csv('experiments/results/aes/alpha_vs_n.csv');
  const ns = [...new Set(rows.map((r) => r.n))];
  const lines = [
    '| score std σ | scale | ' + ns.map((n) => `n = ${n}`).join(' | ') + ' |',
    `|---|---|${ns.map(() => '---|').join('')}`,
  ];
  for (const sigma of [...new Set(rows.map((r) => r.sigma))]) {
    for (const scale of ['support', 'log-n']) {
      const at = (n: string) => Number(rows.find((r) => r.sigma === sigma && r.n === n)![scale]).toFixed(3);
      lines.push(`| ${sigma} | ${scale} | ${ns.map(at).join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

function aesRuns(): string {
  type Run = {
    data: string;
    variant: string;
    steps: number;
    valLoss: number;
    valLossTrainRule: number;
    exactMatch: number | null;
    bitsPerChar: number | null;
    alpha: number[][];
    entropy: number[][];
    support: number[][];
  };
  const runs = JSON.parse(read('experiments/results/aes/runs.json')) as Run[];
  const f = (xs: number[][], d: number) => xs.map((l) => l.map((x) => x.toFixed(d)).join('/')).join(' · ');
  const lines = [
    '| data | AES | steps | val loss (eval rule / train rule) | exact match or bits/char | α per head | entropy | ' +
    'support |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of runs) {
    const score = r.exactMatch !== null ? `${(100 * r.exactMatch).toFixed(1)}%` : `${r.bitsPerChar!.toFixed(3)} b/c`;
    lines.push(
      `| ${r.data} | ${r.variant} | ${r.steps} | ${r.valLoss.toFixed(4)} / ${r.valLossTrainRule.toFixed(4)} | ` +
        `${score} | ` +
        `${f(r.alpha, 2)} | ${f(r.entropy, 2)} | ${f(r.support, 2)} |`,
    );
  }
  return lines.join('\n');
}

function positions(): string {
  const rows = csv('experiments/results/aes/positions.csv');
  const lines = ['| --pos | steps | val loss | exact match |', '|---|---|---|---|'];
  for (const r of rows)
    lines.push(
      `| ${r.pos} | ${r.steps} | ${Number(r.valLoss).toFixed(4)} | ${(100 * Number(r.exactMatch)).toFixed(1)}% |`,
    );
  return lines.join('\n');
}

function mainJob(): string {
  const run = JSON.parse(read('experiments/results/main_job/run.json')) as {
    command: string; seconds: number; cores: number; backend: string; node: string;
  };
  const out = read('experiments/results/main_job/stdout.txt');
  const final = out.slice(out.indexOf('final validation')).split('\n\nwrote')[0].trim();
  const steps = [...out.matchAll(/^step (\d+)\/(\d+) .* (\d+) tok\/s/gm)];
  const last = steps.at(-1)!;
  const evals = [...out.matchAll(/^eval @(\d+): .*exact match ([\d.]+)%/gm)];
  const solved = evals.find((m) => Number(m[2]) >= 99);
  const alphas = [...final.matchAll(/layer (\d+): α ([\d., ]+);/g)].map((m) => `layer ${m[1]} ${m[2]}`);
  const minutes = run.seconds / 60;
  const time = minutes < 1.5 ? `${Math.round(run.seconds)} s` : `${minutes.toFixed(1)} minutes`;
  const speed = Math.round(Number(last[3]) / 100) * 100;
  return [
    wrap(`The main job trains for ${last[2]} steps (\`task:sort\`: sort 8 digits; batch 32; AdamW 3e-3 with warmup ` +
      `and cosine decay, α at 3e-2) in ${time} on ${run.cores} cores (the ${run.backend.replace(' (', ' backend, ')
        .replace(/\)$/, '')}; ${speed} tokens/s at the end). What it printed (\`${run.command}\`; seed 0, the run is ` +
      'deterministic):'),
    '', '```', final, '```', '',
    wrap(`Exact match ${solved ? `first reaches ${solved[2]}% at step ${solved[1]}` : 'stays below 99%'}. ` +
      `The learned α, all 1.5 at the start, end at: ${alphas.join('; ')}.`),
  ].join('\n');
}

function badInputs(): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const rows = BAD_INPUTS.map(
    (c) => `| ${c.area} | ${esc(c.input)} | ${esc(c.gets)} | ${c.fixed ? 'this round' : 'before'} |`,
  );
  return ['| area | input | what it gets | behaves since |', '|---|---|---|---|', ...rows].join('\n');
}

/** `text` with every render block replaced by its section's output. */
export function render(text: string): string {
  return text.replace(/(<!-- render:([\w-]+) -->)[\s\S]*?(<!-- \/render:\2 -->)/g, (_, open, name, close) => {
    const section = SECTIONS[name as string];
    if (!section) throw new Error(`render_docs: unknown section '${name}'`);
    return `${open}\n${section()}\n${close}`;
  });
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const f of RENDERED) {
    const text = read(f);
    const next = render(text);
    if (next !== text) {
      writeFileSync(join(ROOT, f), next);
      console.log(`rendered ${f}`);
    } else console.log(`${f} is up to date`);
  }
}
