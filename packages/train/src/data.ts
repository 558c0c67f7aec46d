/**
 * Text data for language-model training: load a text (a file, or an http(s) URL downloaded once into
 * a cache directory), split its token ids into train/validation, and cut them into windows — random
 * ones for training (nanoGPT's `get_batch`) and fixed, non-overlapping ones for a stable validation loss.
 *
 * Everything here is plain TypeScript on `Int32Array`/`number[]`, independent of the tfjs backend.
 * Randomness comes only from the `Rng` passed in, so a batch stream is reproducible from its state.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Rng } from '@aes/models';

/** Options of `loadText`. */
export interface LoadTextArgs {
  /** Directory that keeps downloaded texts (created on first download). */
  cacheDir: string;
  /** Replaces the global `fetch` (tests, proxies). */
  fetchImpl?: typeof fetch;
}

/** A loaded text and where it came from (`path` is the file read or the cache file written). */
export interface LoadedText { text: string; origin: 'file' | 'cache' | 'download'; path: string }

/** Input/target windows: `y[b][t] = x[b][t + 1]` along the data. Shapes `[B, T]`. */
export interface Windows { x: number[][]; y: number[][] }

/**
 * Loads a UTF-8 text from a file path, a `file:` URL or an `http(s)` URL. A URL's text is downloaded
 * once to `<cacheDir>/<first 16 hex of sha256(url)>-<basename>.txt` (written atomically) and read
 * from there afterwards. Invalid UTF-8, a missing or empty file, a failed download and an unknown
 * scheme are errors that say what to do.
 *
 * @example
 * const { text, origin } = await loadText('https://example.org/input.txt', { cacheDir: '.cache' });
 */
export async function loadText(source: string, opts: LoadTextArgs): Promise<LoadedText> {
  const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(source)?.[1].toLowerCase();   // 2+ letters: 'C:\' is a path
  if (scheme === undefined) return { text: await readTextFile(source), origin: 'file', path: source };
  if (scheme === 'file') {
    const path = fileURLToPath(source);
    return { text: await readTextFile(path), origin: 'file', path };
  }
  if (scheme !== 'http' && scheme !== 'https') {
    throw new Error(
      `cannot load '${source}': unsupported scheme '${scheme}:' (use a file path, an http(s) URL or task:NAME)`,
    );
  }
  const path = cachePath(source, opts.cacheDir);
  if (await exists(path)) return { text: await readTextFile(path), origin: 'cache', path };
  const byHand = `download it by hand and save it as ${path}`;
  let res: Response, bytes: Uint8Array;
  try {
    res = await (opts.fetchImpl ?? fetch)(source);
    bytes = res.ok ? new Uint8Array(await res.arrayBuffer()) : new Uint8Array();
  } catch (e) {
    const why = [e, (e as Error).cause]
      .filter((c): c is Error => c instanceof Error)
      .map((c) => c.message)
      .join(': '); // fetch hides ECONNREFUSED in `cause`
    throw new Error(`could not download ${source} (${why}); if this machine is offline, ${byHand}`, { cause: e });
  }
  if (!res.ok)
    throw new Error(
      `could not download ${source}: HTTP ${res.status} ${res.statusText}`.trimEnd() + `; check the URL, or ${byHand}`,
    );
  const text = decodeUtf8(bytes, source);
  await mkdir(opts.cacheDir, { recursive: true });
  // Write then rename, so an interrupted download never leaves a truncated file that looks cached.
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
  return { text, origin: 'download', path };
}

/** The cache file of a URL: `<cacheDir>/<16 hex of sha256(url)>-<sanitised basename | 'data'>.txt`. */
export function cachePath(url: string, cacheDir: string): string {
  const hash = createHash('sha256').update(url).digest('hex').slice(0, 16);
  let base = '';
  try {
    base = decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '');
  } catch {
    /* malformed: no basename */
  }
  base = base.replace(/\.txt$/i, '').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(0, 64);
  return join(cacheDir, `${hash}-${base || 'data'}.txt`);
}

/**
 * Splits token ids contiguously: the first `1 − valFraction` for training, the rest for validation
 * (views, not copies). Each part must hold at least `minLength` ids (e.g. blockSize + 1 for a window).
 *
 * @example
 * const { train, val } = splitTrainVal(Int32Array.from(tok.encode(text)), 0.1, blockSize + 1);
 */
export function splitTrainVal(
  ids: Int32Array,
  valFraction = 0.1,
  minLength = 2,
): { train: Int32Array; val: Int32Array } {
  if (!(valFraction > 0 && valFraction < 1))
    throw new RangeError(`splitTrainVal: valFraction must be in (0, 1), got ${valFraction}`);
  const nVal = Math.round(ids.length * valFraction);
  const [train, val] = [ids.subarray(0, ids.length - nVal), ids.subarray(ids.length - nVal)];
  if (train.length < minLength || val.length < minLength) {
    throw new RangeError(
      `splitTrainVal: ${ids.length} tokens with valFraction ${valFraction} give ${train.length} train / ` +
        `${val.length} validation tokens, but each part needs at least ${minLength}; use a longer text, a smaller ` +
        `blockSize or another valFraction`,
    );
  }
  return { train, val };
}

/**
 * `batch` windows at uniformly random starts i ∈ [0, len − T − 1]: x = data[i, i+T), y = data[i+1, i+T+1).
 * Deterministic given the state of `rng` (which it advances by `batch` draws).
 *
 * @example
 * const { x, y } = randomWindows(train, 32, 64, new Rng(0));   // x, y: [32, 64]
 */
export function randomWindows(data: Int32Array, batch: number, blockSize: number, rng: Rng): Windows {
  checkWindowArgs(data, batch, blockSize, 'randomWindows');
  const x: number[][] = [], y: number[][] = [];
  for (let b = 0; b < batch; b++) {
    const i = rng.int(data.length - blockSize);
    x.push(Array.from(data.subarray(i, i + blockSize)));
    y.push(Array.from(data.subarray(i + 1, i + blockSize + 1)));
  }
  return { x, y };
}

/**
 * Fixed validation batches: consecutive, non-overlapping windows from the start of `data` (starts
 * 0, T, 2T, …), at most `maxBatches · batch` of them. All batches have `batch` windows, so the mean of
 * batch losses is the mean over windows; the partial tail is dropped, except when the data holds
 * fewer than `batch` windows, which then form one smaller batch.
 *
 * @example
 * const evals = evalWindows(val, 32, 64, 8);   // ≤ 8 batches of [32, 64]
 */
export function evalWindows(data: Int32Array, batch: number, blockSize: number, maxBatches: number): Windows[] {
  checkWindowArgs(data, batch, blockSize, 'evalWindows');
  if (!Number.isInteger(maxBatches) || maxBatches < 1)
    throw new RangeError(`evalWindows: maxBatches must be a positive integer, got ${maxBatches}`);
  const nWindows = Math.floor((data.length - 1) / blockSize);   // window k needs data[kT, (k+1)T]
  const nBatches = Math.min(maxBatches, Math.max(1, Math.floor(nWindows / batch)));
  const out: Windows[] = [];
  for (let k = 0; k < nBatches; k++) {
    const w = { x: [] as number[][], y: [] as number[][] };
    for (let j = k * batch; j < Math.min((k + 1) * batch, nWindows); j++) {
      w.x.push(Array.from(data.subarray(j * blockSize, (j + 1) * blockSize)));
      w.y.push(Array.from(data.subarray(j * blockSize + 1, (j + 1) * blockSize + 1)));
    }
    out.push(w);
  }
  return out;
}

function checkWindowArgs(data: Int32Array, batch: number, blockSize: number, fn: string): void {
  if (!Number.isInteger(batch) || batch < 1)
    throw new RangeError(`${fn}: batch must be a positive integer, got ${batch}`);
  if (!Number.isInteger(blockSize) || blockSize < 1)
    throw new RangeError(`${fn}: blockSize must be a positive integer, got ${blockSize}`);
  if (data.length < blockSize + 1) {
    throw new RangeError(
      `${fn}: ${data.length} tokens are too few for a window of blockSize ${blockSize} (needs ${blockSize + 1}); ` +
      `use more data or a smaller blockSize`,
    );
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

async function readTextFile(path: string): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new Error(`text file not found: ${path} (expected a file path, an http(s) URL or task:NAME)`, { cause: e });
    throw new Error(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  return decodeUtf8(bytes, path);
}

/** Strict UTF-8 decoding; the error names the source, the first bad byte's offset, and emptiness. */
function decodeUtf8(bytes: Uint8Array, name: string): string {
  if (bytes.length === 0) throw new Error(`${name} is empty: there is no text to train on`);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (e) {
    const at = firstInvalidByte(bytes);
    const where = at < 0 ? 'a truncated sequence at the end' : `byte offset ${at}`;
    throw new Error(`${name} is not valid UTF-8 (${where}); convert it to UTF-8 or use a plain-text file`, {
      cause: e,
    });
  }
}

/**
 * Offset of the first byte where strict decoding fails, by bisection on prefixes decoded in stream
 * mode (a prefix fails iff it contains an error; an incomplete trailing sequence is held back, not an
 * error). −1 when every prefix decodes, i.e. the only problem is an incomplete sequence at the end.
 */
function firstInvalidByte(bytes: Uint8Array): number {
  const fails = (k: number) => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, k), { stream: true });
      return false;
    } catch {
      return true;
    }
  };
  if (!fails(bytes.length)) return -1;
  let [lo, hi] = [0, bytes.length];   // fails(lo) = false, fails(hi) = true
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (fails(mid)) hi = mid; else lo = mid;
  }
  return hi - 1;
}
