import type * as tf from '@tensorflow/tfjs';

/**
 * Shared by the bench and demo scripts. `--key=value` / `--key value` flags: typed defaults, and an error
 * listing the valid flags for anything unknown or malformed.
 */
export function parseFlags<T extends Record<string, string | number | boolean>>(argv: string[], defaults: T): T {
  const out: Record<string, string | number | boolean> = { ...defaults };
  const valid = () => Object.entries(defaults).map(([k, v]) => `--${k} (default ${v})`).join(', ');
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([\w-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m || !(m[1] in defaults)) throw new Error(`unknown argument '${argv[i]}'; valid flags: ${valid()}`);
    const key = m[1];
    const kind = typeof defaults[key];
    let raw = m[2];
    if (raw === undefined) raw = kind === 'boolean' ? 'true' : argv[++i];
    if (raw === undefined) throw new Error(`--${key} needs a value`);
    if (kind === 'number') {
      const v = Number(raw);
      if (!Number.isFinite(v)) throw new Error(`--${key} expects a number, got '${raw}'`);
      out[key] = v;
    } else if (kind === 'boolean') {
      if (raw !== 'true' && raw !== 'false') throw new Error(`--${key} expects true or false, got '${raw}'`);
      out[key] = raw === 'true';
    } else out[key] = raw;
  }
  return out as T;
}

/** Median and interquartile range of a list of timings. */
export function summary(ts: number[]): { median: number; iqr: number } {
  const s = [...ts].sort((a, b) => a - b);
  const q = (f: number) => s[Math.min(s.length - 1, Math.floor(f * (s.length - 1) + 0.5))];
  return { median: q(0.5), iqr: q(0.75) - q(0.25) };
}

/**
 * Times every function `repeats` times after `warmup` rounds, interleaved (one round runs each
 * function once), so drift in machine speed hits all of them alike. Milliseconds per function.
 */
export async function timeInterleaved(
  fns: Array<() => tf.Tensor>,
  repeats: number,
  warmup: number,
): Promise<number[][]> {
  const ts = fns.map(() => [] as number[]);
  for (let r = 0; r < warmup + repeats; r++) {
    for (let i = 0; i < fns.length; i++) {
      const t0 = performance.now();
      const y = fns[i]();
      await y.data(); // wait for the backend (async: webgpu has no sync read)
      if (r >= warmup) ts[i].push(performance.now() - t0);
      y.dispose();
    }
  }
  return ts;
}
