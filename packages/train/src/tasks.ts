/**
 * Built-in synthetic sequence tasks whose right attention is sparse: each answer token depends on one
 * or a few input positions (copy, reverse, sort; associative recall as in Ba et al. 2016 and the
 * H3/Zoology "MQAR" line of work; needle-in-a-haystack retrieval). Each is selected by a spec string
 * `task:NAME` or `task:NAME:key=value,…`, e.g. `task:needle:len=64`.
 *
 * Token layout: a task's symbols are ids 0…vocab−1 and its special tokens (SEP, QUERY, KEY, FILL)
 * follow them; `vocabSize` counts both. An example is one sequence of `seqLen` tokens ending in its
 * answer. Training is next-token prediction on x = seq[0, seqLen−1), y = seq[1, seqLen), and the
 * loss and accuracy count only the answer positions of y (`mask`).
 *
 *   copy     x₁…x_len SEP x₁…x_len          reverse  x₁…x_len SEP x_len…x₁
 *   sort     x₁…x_len SEP sorted(x)          recall   k₁ v₁ … k_P v_P QUERY k_i v_i   (keys distinct)
 *   needle   FILL… KEY v FILL… QUERY v       (haystack of `len` tokens holding KEY v once)
 *
 * The length-generalisation suite of the ASEntmax paper (Vasylenko et al. 2026), in the same format:
 *
 *   mqmtar     a a : b b , … then 4 × (Q a a → b b)   multi-query multi-token associative recall:
 *              2-token keys and values over an alphabet of 256; ⌊len/6⌋ pairs
 *   flipflop   w b i b w b … r → b   (write with probability write/100, else ignore): the last written bit
 *   nback      x₁ … x_len → x_{t−n} at every t ≥ n (n = 2)                 (a label per position)
 *   localcount runs of 2…reps equal symbols → the 0-based index within the run   (a label per position)
 *
 * `vary` draws each training batch's length uniformly from len ± vary (the paper trains at 48 ± 16);
 * `sampleAt(batch, L)` makes examples of length L for evaluation at fixed lengths.
 */
import type { Rng } from '@aes/models';

/** One batch: x, y, mask all `[B, seqLen − 1]`; mask[b][t] = 1 where y[b][t] is an answer token. */
export interface TaskBatch { x: number[][]; y: number[][]; mask: number[][] }

/** A task with its parameters fixed (see `parseTask`). */
export interface Task {
  name: string;
  /** All parameters, defaults filled in. */
  params: Record<string, number>;
  /** Symbols plus special tokens. */
  vocabSize: number;
  /** Tokens per example; a model needs blockSize ≥ seqLen − 1. */
  seqLen: number;
  /** `batch` fresh examples (one length per batch, see `vary`); deterministic given the state of `rng`. */
  sample(batch: number, rng: Rng): TaskBatch;
  /** The parameter that sets a task's length ('len', or 'pairs' for recall). */
  lengthParam: string;
  /** `batch` examples with the length parameter set to `length` (evaluation at fixed lengths). */
  sampleAt(batch: number, length: number, rng: Rng): TaskBatch;
  /** A readable name per token id (`vocabSize` of them), e.g. '7', 'k3', '<sep>'. */
  tokenNames(): string[];
}

/** What `TASKS` says about a task: its description, default parameters and their inclusive ranges. */
export interface TaskInfo {
  description: string;
  defaults: Readonly<Record<string, number>>;
  ranges: Readonly<Record<string, readonly [number, number]>>;
}

/**
 * One example's layout: token names, its length, and how to make one. `example` gives a sequence
 * whose last `answerLen` tokens are the answer (next-token form); `labelled` gives x, y and the mask
 * directly (tasks with an answer at many positions).
 */
type Layout = { names: string[]; seqLen: number } & (
  | { answerLen: number; example(rng: Rng): number[] }
  | { labelled(rng: Rng): { x: number[]; y: number[]; mask: number[] } }
);

/** The built-in tasks (names → description, defaults, ranges). Defaults train in a few hundred steps. */
export const TASKS: Readonly<Record<string, TaskInfo>> = Object.freeze({
  copy: info(
    'x SEP x: repeat the input',
    { len: 8, vocab: 10, vary: 0 },
    { len: [1, 4096], vocab: [2, 1024], vary: [0, 4095] },
  ),
  reverse: info(
    'x SEP reverse(x): the input backwards',
    { len: 8, vocab: 10, vary: 0 },
    { len: [1, 4096], vocab: [2, 1024], vary: [0, 4095] },
  ),
  sort: info(
    'x SEP sorted(x): the input in ascending order',
    { len: 8, vocab: 10, vary: 0 },
    { len: [1, 4096], vocab: [2, 1024], vary: [0, 4095] },
  ),
  recall: info(
    'associative recall: k1 v1 … kP vP QUERY k_i → v_i; keys are the first ⌊vocab/2⌋ symbols, values the rest',
    { pairs: 6, vocab: 16 },
    { pairs: [1, 512], vocab: [2, 1024] },
  ),
  needle: info(
    'needle retrieval: a haystack of len tokens (FILL, or random symbols if noise=1) holding KEY v once, then QUERY ' +
      '→ v',
    { len: 32, vocab: 16, noise: 0 },
    { len: [2, 4096], vocab: [1, 1024], noise: [0, 1] },
  ),
  mqmtar: info(
    'multi-query multi-token associative recall: a a : b b , …, then 4 × (Q a a → b b); ⌊len/6⌋ pairs',
    { len: 48, vary: 0, alphabet: 256, queries: 4 },
    { len: [24, 16384], vary: [0, 8192], alphabet: [2, 1024], queries: [1, 64] },
  ),
  flipflop: info(
    'flip-flop: (w|i) bit pairs, then r → the last written bit; write with probability write/100',
    { len: 48, vary: 0, write: 80 },
    { len: [4, 16384], vary: [0, 8192], write: [1, 99] },
  ),
  nback: info(
    'n-back: at every position t ≥ n, the token n positions back',
    { len: 48, vary: 0, n: 2, vocab: 16 },
    { len: [3, 16384], vary: [0, 8192], n: [1, 64], vocab: [2, 1024] },
  ),
  localcount: info(
    'local count: runs of 2…reps equal symbols; at every position, its 0-based index in its run',
    { len: 48, vary: 0, reps: 4, vocab: 16 },
    { len: [4, 16384], vary: [0, 8192], reps: [2, 64], vocab: [3, 1024] },
  ),
});

/** The length parameter of each task. */
const LENGTH_PARAM: Record<string, string> = { recall: 'pairs' };

const LAYOUTS: Record<string, (p: Record<string, number>) => Layout> = {
  copy: (p) => sequenceToSequence(p, (x) => x),
  reverse: (p) => sequenceToSequence(p, (x) => [...x].reverse()),
  sort: (p) => sequenceToSequence(p, (x) => [...x].sort((a, b) => a - b)),
  recall: ({ pairs, vocab }) => {
    const nKeys = Math.floor(vocab / 2);
    if (pairs > nKeys)
      throw new RangeError(
        `task recall: pairs=${pairs} exceeds the ${nKeys} distinct keys of vocab=${vocab} (keys are ⌊vocab/2⌋ ` +
        `symbols); raise vocab to ≥ ${2 * pairs}`,
      );
    const QUERY = vocab;
    const names = [...range(nKeys).map((i) => `k${i}`), ...range(vocab - nKeys).map((i) => `v${i}`), '<query>'];
    return {
      names, seqLen: 2 * pairs + 3, answerLen: 1,
      example: (rng) => {
        const keys = range(nKeys);
        for (let i = 0; i < pairs; i++) {   // partial Fisher–Yates: `pairs` distinct keys
          const j = i + rng.int(nKeys - i);
          [keys[i], keys[j]] = [keys[j], keys[i]];
        }
        const values = range(pairs).map(() => nKeys + rng.int(vocab - nKeys));
        const q = rng.int(pairs);
        return [...range(pairs).flatMap((i) => [keys[i], values[i]]), QUERY, keys[q], values[q]];
      },
    };
  },
  needle: ({ len, vocab, noise }) => {
    const [QUERY, KEY, FILL] = [vocab, vocab + 1, vocab + 2];
    return {
      names: [...range(vocab).map(String), '<query>', '<key>', '<fill>'], seqLen: len + 2, answerLen: 1,
      example: (rng) => {
        // With noise, the haystack is made of value symbols, so only the KEY marker tells where v is.
        const hay = range(len).map(() => (noise ? rng.int(vocab) : FILL));
        const [at, value] = [rng.int(len - 1), rng.int(vocab)];
        hay[at] = KEY;
        hay[at + 1] = value;
        return [...hay, QUERY, value];
      },
    };
  },
  mqmtar: ({ len, alphabet, queries }: Record<string, number>): Layout => {
    const [COLON, COMMA, Q] = [alphabet, alphabet + 1, alphabet + 2];
    const pairs = Math.max(queries, Math.floor(len / 6));
    if (pairs > alphabet * alphabet)
      throw new RangeError(`task mqmtar: ${pairs} pairs need more than alphabet² distinct keys`);
    return {
      names: [...range(alphabet).map(String), ':', ',', '<q>'], seqLen: 6 * pairs + 5 * queries,
      labelled: (rng) => {
        const keys = new Set<number>();
        while (keys.size < pairs) keys.add(rng.int(alphabet * alphabet));
        const ks = [...keys].map((k) => [Math.floor(k / alphabet), k % alphabet]);
        const vs = ks.map(() => [rng.int(alphabet), rng.int(alphabet)]);
        const seq = ks.flatMap((k, i) => [...k, COLON, ...vs[i], COMMA]);
        const answer: number[] = [];
        for (let q = 0; q < queries; q++) {
          const i = rng.int(pairs);
          seq.push(Q, ...ks[i], ...vs[i]);
          answer.push(seq.length - 2, seq.length - 1);            // positions of the value tokens
        }
        const at = new Set(answer.map((p) => p - 1));             // y[t] = seq[t + 1]
        return { x: seq.slice(0, -1), y: seq.slice(1), mask: range(seq.length - 1).map((t) => (at.has(t) ? 1 : 0)) };
      },
    };
  },
  flipflop: ({ len, write }: Record<string, number>): Layout => {
    const [W, I, R, B0] = [0, 1, 2, 3];
    const pairs = Math.max(2, Math.floor(len / 2));
    return {
      names: ['w', 'i', 'r', '0', '1'], seqLen: 2 * pairs, answerLen: 1,
      example: (rng) => {
        const cmds = [W, ...range(pairs - 2).map(() => (rng.int(100) < write ? W : I)), R];
        const bits = range(pairs).map(() => rng.int(2));
        let last = 0;
        cmds.forEach((c, i) => { if (c === W) last = bits[i]; });
        return [...cmds.flatMap((c, i) => (c === R ? [R] : [c, B0 + bits[i]])), B0 + last];
      },
    };
  },
  nback: ({ len, n, vocab }: Record<string, number>): Layout => ({
    names: range(vocab).map(String), seqLen: len + 1,
    labelled: (rng) => {
      const x = range(len).map(() => rng.int(vocab));
      return { x, y: x.map((_, t) => (t >= n ? x[t - n] : 0)), mask: x.map((_, t) => (t >= n ? 1 : 0)) };
    },
  }),
  localcount: ({ len, reps, vocab }: Record<string, number>): Layout => ({
    names: [...range(vocab).map(String), ...range(reps).map((c) => `#${c}`)], seqLen: len + 1,
    labelled: (rng) => {
      const x: number[] = [], y: number[] = [];
      while (x.length < len) {
        let s = rng.int(vocab);
        if (s === x.at(-1)) s = (s + 1 + rng.int(vocab - 1)) % vocab;  // no two runs of the same symbol in a row
        const run = 2 + rng.int(reps - 1);
        for (let c = 0; c < run && x.length < len; c++) { x.push(s); y.push(vocab + c); }
      }
      return { x, y, mask: x.map(() => 1) };
    },
  }),
};

/** True for a `task:…` spec (as opposed to a file path or URL). */
export function isTaskSpec(spec: string): boolean {
  return spec.startsWith('task:');
}

/**
 * Parses `task:NAME` or `task:NAME:key=value,…` (integer values) into a `Task`. Unknown names and
 * keys, non-integers and out-of-range values are errors that list what is valid.
 *
 * @example
 * const task = parseTask('task:recall:pairs=4');
 * const { x, y, mask } = task.sample(32, new Rng(0));   // [32, task.seqLen − 1] each
 */
export function parseTask(spec: string): Task {
  if (!isTaskSpec(spec))
    throw new RangeError(`not a task spec: '${spec}' (expected task:NAME or task:NAME:key=value,…)`);
  const [name, ...rest] = spec.slice('task:'.length).split(':');
  taskInfo(name);   // an unknown name is reported before its parameters
  if (rest.length > 1)
    throw new RangeError(`task spec '${spec}': expected task:NAME:key=value,key=value (one ':' before the parameters)`);
  const params: Record<string, number> = {};
  for (const item of rest.length ? rest[0].split(',') : []) {
    const m = /^\s*([A-Za-z_]\w*)\s*=\s*(\S+)\s*$/.exec(item);
    if (!m) throw new RangeError(`task spec '${spec}': malformed parameter '${item}' (expected key=value)`);
    if (m[1] in params) throw new RangeError(`task spec '${spec}': parameter '${m[1]}' given twice`);
    if (!/^[+-]?\d+$/.test(m[2])) throw new RangeError(`task ${name}: ${m[1]} must be an integer, got '${m[2]}'`);
    params[m[1]] = Number(m[2]);
  }
  return makeTask(name, params);
}

/**
 * A task by name with some parameters overridden (the programmatic form of `parseTask`).
 *
 * @example
 * const needle = makeTask('needle', { len: 128 });   // seqLen 130
 */
export function makeTask(name: string, overrides: Record<string, number> = {}): Task {
  const inf = taskInfo(name);
  for (const [k, v] of Object.entries(overrides)) {
    const r = Object.hasOwn(inf.ranges, k) ? inf.ranges[k] : undefined;
    if (!r)
      throw new RangeError(`task ${name}: unknown parameter '${k}'; valid: ${Object.keys(inf.defaults).join(', ')}`);
    if (!Number.isInteger(v)) throw new RangeError(`task ${name}: ${k} must be an integer, got ${v}`);
    if (v < r[0] || v > r[1]) throw new RangeError(`task ${name}: ${k}=${v} is out of range [${r[0]}, ${r[1]}]`);
  }
  const params = { ...inf.defaults, ...overrides };
  const lengthParam = LENGTH_PARAM[name] ?? 'len';
  const vary = params.vary ?? 0;
  const lo = params[lengthParam] - vary, hi = params[lengthParam] + vary;
  const [min] = inf.ranges[lengthParam];
  if (lo < min)
    throw new RangeError(`task ${name}: ${lengthParam} − vary = ${lo} is below the smallest ${lengthParam}, ${min}`);
  const layouts = new Map<number, Layout>();
  const layoutAt = (length: number) => {
    if (!layouts.has(length)) layouts.set(length, LAYOUTS[name]({ ...params, [lengthParam]: length }));
    return layouts.get(length)!;
  };
  const layout = layoutAt(hi);
  return {
    name, params, vocabSize: layout.names.length, seqLen: layout.seqLen, lengthParam,
    sample: (batch, rng) => sampleBatch(layoutAt(vary ? lo + rng.int(hi - lo + 1) : hi), batch, rng),
    sampleAt: (batch, length, rng) => {
      const [rmin, rmax] = inf.ranges[lengthParam];
      if (!Number.isInteger(length) || length < rmin || length > rmax) {
        throw new RangeError(`task ${name}: length ${length} is out of range [${rmin}, ${rmax}]`);
      }
      return sampleBatch(layoutAt(length), batch, rng);
    },
    tokenNames: () => [...layout.names],
  };
}

/**
 * Exact-match and per-token accuracy of argmax predictions `pred` (`[B, seqLen − 1]`, aligned with
 * `batch.y`) over the answer positions: exactMatch is the fraction of sequences whose masked tokens
 * are all right, tokenAccuracy the fraction of masked tokens that are right.
 *
 * @example
 * taskAccuracy(batch.y, batch);   // { exactMatch: 1, tokenAccuracy: 1 }
 */
export function taskAccuracy(pred: number[][], batch: TaskBatch): { exactMatch: number; tokenAccuracy: number } {
  const { y, mask } = batch;
  if (pred.length !== y.length || y.length === 0)
    throw new RangeError(`taskAccuracy: ${pred.length} prediction rows for a batch of ${y.length}`);
  let exact = 0, right = 0, total = 0;
  for (let b = 0; b < y.length; b++) {
    if (pred[b].length !== y[b].length)
      throw new RangeError(`taskAccuracy: row ${b} has ${pred[b].length} predictions for ${y[b].length} targets`);
    let allRight = true;
    for (let t = 0; t < y[b].length; t++) {
      if (!mask[b][t]) continue;
      total++;
      if (pred[b][t] === y[b][t]) right++; else allRight = false;
    }
    if (allRight) exact++;
  }
  if (total === 0) throw new RangeError('taskAccuracy: the mask selects no answer positions');
  return { exactMatch: exact / y.length, tokenAccuracy: right / total };
}

/** copy / reverse / sort: `len` random symbols, SEP, then `answer(x)`. */
function sequenceToSequence({ len, vocab }: Record<string, number>, answer: (x: number[]) => number[]): Layout {
  const SEP = vocab;
  return {
    names: [...range(vocab).map(String), '<sep>'], seqLen: 2 * len + 1, answerLen: len,
    example: (rng) => {
      const x = range(len).map(() => rng.int(vocab));
      return [...x, SEP, ...answer(x)];
    },
  };
}

function sampleBatch(layout: Layout, batch: number, rng: Rng): TaskBatch {
  if (!Number.isInteger(batch) || batch < 1)
    throw new RangeError(`task sample: batch must be a positive integer, got ${batch}`);
  const out: TaskBatch = { x: [], y: [], mask: [] };
  for (let b = 0; b < batch; b++) {
    if ('labelled' in layout) {
      const e = layout.labelled(rng);
      out.x.push(e.x); out.y.push(e.y); out.mask.push(e.mask);
      continue;
    }
    const firstAnswer = layout.seqLen - 1 - layout.answerLen;   // y[t] = seq[t + 1]; the answer ends the sequence
    const seq = layout.example(rng);
    out.x.push(seq.slice(0, -1));
    out.y.push(seq.slice(1));
    out.mask.push(range(layout.seqLen - 1).map((t) => (t >= firstAnswer ? 1 : 0)));
  }
  return out;
}

function taskInfo(name: string): TaskInfo {
  if (!Object.hasOwn(TASKS, name))
    throw new RangeError(`unknown task '${name}'; available: ${Object.keys(TASKS).join(', ')}`);
  return TASKS[name];
}

function info(
  description: string,
  defaults: Record<string, number>,
  ranges: Record<string, [number, number]>,
): TaskInfo {
  return Object.freeze({ description, defaults: Object.freeze(defaults), ranges: Object.freeze(ranges) });
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
