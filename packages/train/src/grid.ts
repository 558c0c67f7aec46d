/**
 * Sweep grids: a file (JSON or YAML) of base `aes train` flags and axes to vary, expanded into runs,
 * each a normal training run in its own directory named after its settings.
 *
 *   name: length                  # default: the file's base name
 *   out: runs/sweeps/length       # default: runs/sweeps/<name>
 *   base: {data: task:copy, steps: 300}
 *   axes: {attention: [softmax, aes], seed: [0, 1, 2]}
 *
 * Everything is checked before a run starts: unknown flags (camelCase or kebab-case), empty or
 * non-list axes, a flag both in base and in axes, malformed files, and every run's full config.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { checkTrainConfig, TRAIN_DEFAULTS, type TrainConfig } from './config.js';

/** One run of a sweep. */
export interface SweepRun {
  /** Derived from the axis values, e.g. `attention=aes,seed=1`: also its directory's name. */
  name: string;
  /** The axis values of this run. */
  axes: Record<string, string | number | boolean>;
  config: TrainConfig;
}

export interface Sweep {
  name: string;
  /** Where the run directories go. */
  out: string;
  runs: SweepRun[];
}

type Scalar = string | number | boolean;
const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
/** Flags a grid may set: every `aes train` flag but the ones a sweep owns. */
const SETTABLE = Object.keys(TRAIN_DEFAULTS)
  .filter((k) => !['out', 'resume', 'overwrite'].includes(k))
  .concat('stopAt');

/** Reads and expands a grid file; throws with the file's name and the reason. */
export function loadGrid(path: string): Sweep {
  if (!existsSync(path)) throw new Error(`sweep grid ${path} does not exist`);
  const text = readFileSync(path, 'utf8');
  if (!text.trim()) throw new Error(`sweep grid ${path} is empty`);
  let raw: unknown;
  try {
    raw = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new Error(
      `sweep grid ${path} is not valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'}: ` +
      `${(e as Error).message.split('\n')[0]}`,
    );
  }
  return expandGrid(raw, basename(path).replace(/\.(json|ya?ml)$/i, ''), path);
}

/** Expands a parsed grid (see the file comment); `where` names it in errors. */
export function expandGrid(raw: unknown, defaultName: string, where = 'sweep grid'): Sweep {
  const fail = (msg: string): never => { throw new RangeError(`${where}: ${msg}`); };
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) fail('expected an object with base and axes');
  const g = raw as Record<string, unknown>;
  const extra = Object.keys(g).filter((k) => !['name', 'out', 'base', 'axes'].includes(k));
  if (extra.length) fail(`unknown key(s) ${extra.join(', ')}; a grid has name, out, base and axes`);
  const name = g.name === undefined ? defaultName : String(g.name);
  if (!/^[\w.-]+$/.test(name)) fail(`name '${name}' may hold letters, digits, '.', '_' and '-' only`);
  const flags = (obj: unknown, what: string): Record<string, unknown> => {
    if (obj === undefined) return {};
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) fail(`${what} must be a mapping of flags to values`);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj as object)) {
      const key = camel(k);
      if (!SETTABLE.includes(key)) fail(`unknown flag '${k}' in ${what}; valid: ${SETTABLE.join(', ')}`);
      out[key] = v;
    }
    return out;
  };
  const base = flags(g.base, 'base');
  const axes = flags(g.axes, 'axes') as Record<string, unknown>;
  if (!Object.keys(axes).length) fail('axes is empty: give at least one flag with a list of values');
  for (const [k, list] of Object.entries(axes)) {
    if (!Array.isArray(list)) fail(`axis ${k} must be a list of values`);
    const vs = list as unknown[];
    if (!vs.length) fail(`axis ${k} is empty`);
    if (k in base) fail(`${k} is both in base and in axes`);
    for (const v of vs)
      if (!['string', 'number', 'boolean'].includes(typeof v))
        fail(`axis ${k} holds ${JSON.stringify(v)}, not a value`);
  }
  const out = g.out === undefined ? join('runs', 'sweeps', name) : String(g.out);
  const combos = Object.entries(axes as Record<string, Scalar[]>).reduce<Array<Record<string, Scalar>>>(
    (acc, [k, vs]) => acc.flatMap((c) => vs.map((v) => ({ ...c, [k]: v }))), [{}]);
  const runs = combos.map((axisValues) => {
    const runName = Object.entries(axisValues).map(([k, v]) => `${k}=${String(v)}`).join(',');
    const dirName = runName.replace(/[^\w=,.+-]+/g, '_');
    const config = { ...TRAIN_DEFAULTS, ...base, ...axisValues, out: join(out, dirName) } as TrainConfig;
    for (const [k, v] of Object.entries(config)) {
      const want = typeof (TRAIN_DEFAULTS as unknown as Record<string, unknown>)[k];
      if (k !== 'stopAt' && want !== 'undefined' && typeof v !== want)
        fail(`run ${runName}: ${k} must be a ${want}, got ${JSON.stringify(v)}`);
    }
    try {
      checkTrainConfig(config);
    } catch (e) {
      fail(`run ${runName}: ${(e as Error).message}`);
    }
    return { name: dirName, axes: axisValues, config };
  });
  const names = new Set(runs.map((r) => r.name));
  if (names.size !== runs.length) fail('two runs get the same directory name; make the axis values distinct');
  return { name, out, runs };
}
