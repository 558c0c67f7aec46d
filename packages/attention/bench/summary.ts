/**
 * `pnpm bench`'s last step: merges bench/maps.json, bench/attention.json and bench/block_sparse.json
 * (written by the bench scripts in the same invocation) into bench/results.json — machine, backend,
 * versions, configs, medians and ratios — and prints a short table. bench/results.json is committed: the
 * README's performance tables are rendered from it (scripts/render_docs.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

type Bench = {
  backend: { name: string; detail: string };
  tfjs: string;
  node: string;
  config: Record<string, unknown>;
  rows: Array<Record<string, number | string>>;
  sweep?: Array<Record<string, number>>;
};
const read = (f: string) => JSON.parse(readFileSync(f, 'utf8')) as Bench;
const [maps, att, sparse] = [read('bench/maps.json'), read('bench/attention.json'), read('bench/block_sparse.json')];
const results = {
  date: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    platform: `${process.platform}-${process.arch}`,
  },
  backend: maps.backend,
  versions: { tfjs: maps.tfjs, node: maps.node },
  config: { maps: maps.config, attention: att.config, blockSparse: sparse.config },
  maps: maps.rows,
  attention: att.rows,
  blockSparse: sparse.rows,
  sweep: sparse.sweep ?? [],
};
writeFileSync('bench/results.json', JSON.stringify(results, null, 2));
const fmt = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(2) : '–');
console.log(
  `\nbench/results.json — ${maps.backend.name} (${maps.backend.detail}), tfjs ${maps.tfjs}, ${results.machine.cpus} ` +
  `cores`,
);
console.log('maps (width 1024): fwd+bwd ratio to softmax');
for (const r of maps.rows.filter((r) => r.width === 1024))
  console.log(`  ${String(r.map).padEnd(26)} ${fmt(r.fwdBwdMs)} ms  ${fmt(r.fwdBwdRatio)}×`);
const longest = Math.max(...att.rows.map((r) => r.T as number));
console.log(`attention (T = ${longest}): fwd ratio to softmax attention`);
for (const r of att.rows.filter((r) => r.T === longest))
  console.log(`  ${String(r.normaliser).padEnd(26)} ${fmt(r.fwdMs)} ms  ${fmt(r.fwdRatio)}×`);
const n = Math.max(...sparse.rows.map((r) => r.T as number));
console.log(`block-skipping attention (T = ${n}, causal): ratio to dense softmax attention, fwd / fwd+bwd, skip rate`);
for (const r of sparse.rows.filter((r) => r.T === n)) {
  console.log(
    `  ${String(r.heads).padEnd(10)} ${String(r.case).padEnd(28)} ${fmt(r.fwdRatio)}× / ${fmt(r.fwdBwdRatio)}×  ` +
    `${fmt(r.skipRate)}  ${r.mode}`,
  );
}
