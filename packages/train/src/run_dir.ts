/**
 * The output directory of a run: a default name per run, a bounded check that it can be written
 * before any work starts, and protection of a run already there (nothing written is lost: an
 * existing run is continued with `resume`, moved aside with `overwrite`, or left alone with an error).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { basename, join } from 'node:path';

/** Files whose presence marks a directory as holding a run. */
const RUN_FILES = ['metrics.jsonl', 'config.json', 'ckpt'];

/** `20261201-204512` (local time) for names of runs and of moved-aside directories. */
export function timeStamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const date = `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}`;
  return `${date}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** `runs/<data>-<attention>-<time>`: `task:sort` → `task-sort`, a file or URL → its base name. */
export function defaultOutDir(data: string, attention: string, d = new Date()): string {
  const src = /^task:/.test(data) ? data : basename(data.replace(/[?#].*$/, '')).replace(/\.[a-z0-9]+$/i, '') || 'data';
  const clean = (s: string) => s.replace(/[^A-Za-z0-9.=+-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 48);
  return join('runs', `${clean(src)}-${clean(attention.replace(/\//g, '+').replace(/,/g, '_'))}-${timeStamp(d)}`);
}

/**
 * Makes `dir` ready for a run and says what happened to what was there. Throws, before anything is
 * written, when `dir` cannot be created or written (checked in a child process with a time limit:
 * some file systems, e.g. /proc, make a plain mkdir hang), or when it holds a run and neither
 * `resume` nor `overwrite` is set. With `overwrite` an existing run is renamed to `dir.bak-<time>`.
 */
export function prepareOutDir(
  dir: string,
  opts: { resume: boolean; overwrite: boolean },
  timeoutMs = 10_000,
): string | null {
  if (opts.resume && opts.overwrite)
    throw new RangeError('--resume and --overwrite exclude each other: continue the run, or move it aside');
  checkWritable(dir, timeoutMs);
  const held = RUN_FILES.filter((f) => existsSync(join(dir, f)));
  if (!held.length || opts.resume) return null;
  if (!opts.overwrite) {
    throw new Error(
      `${dir} already holds a run (${describeRun(dir, held)}); pass --resume to continue it, ` +
        '--overwrite to move it aside, or another --out',
    );
  }
  let aside = `${dir}.bak-${timeStamp()}`;
  for (let i = 2; existsSync(aside); i++) aside = `${dir}.bak-${timeStamp()}-${i}`;
  renameSync(dir, aside);
  checkWritable(dir, timeoutMs);
  return aside;
}

function describeRun(dir: string, held: string[]): string {
  const metrics = join(dir, 'metrics.jsonl');
  if (!existsSync(metrics)) return held.join(', ');
  const lines = readFileSync(metrics, 'utf8').split('\n').filter(Boolean);
  let step = 0;
  for (const l of lines) {
    try {
      step = Math.max(step, Number((JSON.parse(l) as { step?: number }).step) || 0);
    } catch {
      /* a torn last line */
    }
  }
  return `${lines.length} metric lines up to step ${step}`;
}

// One level at a time: a recursive mkdir loops forever below /proc (Node 20), a plain one fails. A
// level another process made meanwhile (two sweep workers creating sibling runs) is no error.
export const WRITE_PROBE = `
const fs = require('node:fs'), path = require('node:path');
const missing = [];
for (let d = path.resolve(process.argv[1]); !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
for (const d of missing) {
  try { fs.mkdirSync(d); } catch (e) { if (e.code !== 'EEXIST' || !fs.statSync(d).isDirectory()) throw e; }
}
const f = path.join(process.argv[1], '.aes-write-probe-' + process.pid);
fs.writeFileSync(f, 'ok'); fs.rmSync(f);`;

/** Creates `dir` and writes a probe file in a child process that must finish within `timeoutMs`. */
function checkWritable(dir: string, timeoutMs: number): void {
  const r = spawnSync(process.execPath, ['-e', WRITE_PROBE, dir], { timeout: timeoutMs, encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    const why = r.signal || (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT'
      ? `no answer within ${timeoutMs / 1000} s`
      : (r.stderr.match(/Error: ([^\n]+)/)?.[1] ?? r.stderr.trim().split('\n')[0] ?? 'unknown error');
    throw new Error(`cannot write the output directory ${dir}: ${why}`);
  }
}
