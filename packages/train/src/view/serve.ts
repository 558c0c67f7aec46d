/**
 * `aes view`: a page for runs, served locally or written as static files.
 *
 * The page is three files: index.html, app.js (the browser bundle of page.ts, built with esbuild
 * from @aes/models, @aes/attention, tfjs and vega-lite) and data.js, which sets
 * `globalThis.AES_VIEW_DATA` to the runs: name, config, metrics.jsonl text and the checkpoint's
 * model.json with its weights (base64, optimizer slots left out). Data as a script, not fetched,
 * makes the static build work from file:// as well. The server rebuilds data.js on each request,
 * so a reload shows the curves of a run still training.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** What the page gets of one run. */
export interface ViewRun {
  name: string;
  dir: string;
  /** Said on the page (e.g. why there is no explorer). */
  note: string;
  config: Record<string, unknown> | null;
  metrics: string;
  checkpoint: { modelJson: Record<string, unknown>; weights: string } | null;
}

/** Reads a run directory; throws when `dir` is not a run (no metrics.jsonl, config.json or ckpt/). */
export function readRun(dir: string): ViewRun {
  if (!existsSync(dir)) throw new Error(`${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new Error(`${dir} is not a directory`);
  const at = (f: string) => join(dir, f);
  if (!['metrics.jsonl', 'config.json', 'ckpt'].some((f) => existsSync(at(f))))
    throw new Error(`${dir} is not a run: it has no metrics.jsonl, config.json or ckpt/ (aes train writes them)`);
  const notes: string[] = [];
  let config: Record<string, unknown> | null = null;
  if (existsSync(at('config.json'))) {
    try {
      config = JSON.parse(readFileSync(at('config.json'), 'utf8'));
    } catch (e) {
      notes.push(`config.json is not valid JSON (${(e as Error).message})`);
    }
  }
  const metrics = existsSync(at('metrics.jsonl')) ? readFileSync(at('metrics.jsonl'), 'utf8') : '';
  if (!metrics.trim()) notes.push('no metrics yet');
  let checkpoint: ViewRun['checkpoint'] = null;
  try {
    checkpoint = readCheckpoint(at('ckpt'));
  } catch (e) {
    notes.push(`${(e as Error).message}: curves only, no attention explorer or generation`);
  }
  const name = basename(resolve(dir));
  return { name, dir, note: notes.join('; '), config, metrics, checkpoint };
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/** model.json and the model's weights (base64) of a checkpoint directory, without the `extra/` tensors. */
function readCheckpoint(dir: string): NonNullable<ViewRun['checkpoint']> {
  const jsonPath = join(dir, 'model.json');
  if (!existsSync(jsonPath)) throw new Error('no checkpoint (ckpt/model.json)');
  let json: {
    weightsManifest?: Array<{ paths: string[]; weights: Array<{ name: string; shape: number[]; dtype: string }> }>;
  };
  try {
    json = JSON.parse(readFileSync(jsonPath, 'utf8'));
  } catch (e) {
    throw new Error(`ckpt/model.json is not valid JSON (${(e as Error).message})`);
  }
  const manifest = json.weightsManifest?.[0];
  if (!manifest || !Array.isArray(manifest.weights)) throw new Error('ckpt/model.json has no weightsManifest');
  const bin = join(dir, manifest.paths?.[0] ?? 'weights.bin');
  if (!existsSync(bin)) throw new Error(`the checkpoint lacks its weights file ${basename(bin)}`);
  const data = readFileSync(bin);
  const kept: typeof manifest.weights = [];
  const parts: Buffer[] = [];
  let offset = 0;
  for (const w of manifest.weights) {
    const size = w.shape.reduce((a, b) => a * b, 1) * (BYTES[w.dtype] ?? NaN);
    if (!Number.isFinite(size) || offset + size > data.length)
      throw new Error(`the checkpoint's weights file does not match its manifest (at '${w.name}')`);
    if (!w.name.startsWith('extra/')) {
      kept.push(w);
      parts.push(data.subarray(offset, offset + size));
    }
    offset += size;
  }
  const modelJson = { ...json, weightsManifest: [{ paths: ['weights.bin'], weights: kept }] };
  return { modelJson, weights: Buffer.concat(parts).toString('base64') };
}

const INDEX_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>aes view</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><div id="app">loading…</div>
<script src="data.js"></script><script src="app.js"></script></body></html>
`;

/** The browser bundle of page.ts (page.js in a built package). */
export async function bundlePage(): Promise<string> {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const entry = ['page.ts', 'page.js'].map((f) => join(here, f)).find((f) => existsSync(f));
  if (!entry) throw new Error(`the view page is missing from ${here}`);
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    write: false,
    minify: true,
    logLevel: 'silent',
    conditions: entry.endsWith('.ts') ? ['aes-source'] : [], // sources in the workspace, dist/ when installed

    define: { 'process.env.NODE_ENV': '"production"' },
  });
  return out.outputFiles[0].text;
}

const dataScript = (runs: ViewRun[]) =>
  `globalThis.AES_VIEW_DATA = ${JSON.stringify({ runs: runs.map(({ dir: _d, ...r }) => r) })};\n`;

/** Writes the static page (index.html, app.js, data.js) into `dir`, which must be new or empty. */
export async function exportView(dirs: string[], dir: string): Promise<string[]> {
  const runs = dirs.map(readRun);
  if (existsSync(dir) && (!statSync(dir).isDirectory() || readdirSync(dir).length))
    throw new Error(`${dir} exists and is not an empty directory; export into a new one (nothing is overwritten)`);
  const app = await bundlePage();
  mkdirSync(dir, { recursive: true });
  const files = { 'index.html': INDEX_HTML, 'app.js': app, 'data.js': dataScript(runs) };
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  return Object.keys(files).map((f) => join(dir, f));
}

export interface ViewServer {
  url: string;
  port: number;
  /** Said when the asked port was taken and another one is used. */
  moved?: string;
  close(): Promise<void>;
}

/**
 * Serves the page for `dirs` on `host:port`; a port in use moves to the next free one (up to 20
 * further), and the result says so. Port 0 takes any free port.
 */
export async function serveView(dirs: string[], opts: { port: number; host: string }): Promise<ViewServer> {
  dirs.forEach(readRun); // bad directories fail before anything listens
  const app = await bundlePage();
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const send = (type: string, body: string) => {
      res.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' });
      res.end(body);
    };
    try {
      if (path === '/' || path === '/index.html') send('text/html', INDEX_HTML);
      else if (path === '/app.js') send('text/javascript', app);
      else if (path === '/data.js') send('text/javascript', dataScript(dirs.map(readRun)));
      else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
      }
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`${(e as Error).message}\n`);
    }
  });
  const last = opts.port === 0 ? 0 : opts.port + 20;
  for (let port = opts.port; ; port++) {
    try {
      await listen(server, port, opts.host);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port >= last) {
        const why =
          (e as NodeJS.ErrnoException).code === 'EADDRINUSE'
            ? `ports ${opts.port} … ${last} are all in use`
            : (e as Error).message;
        throw new Error(`aes view cannot listen on ${opts.host}: ${why}`);
      }
      continue;
    }
    const actual = (server.address() as { port: number }).port;
    const shown = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    return {
      url: `http://${shown}:${actual}/`,
      port: actual,
      ...(port !== opts.port ? { moved: `port ${opts.port} is in use; using ${actual}` } : {}),
      close: () => new Promise<void>((ok) => server.close(() => ok())),
    };
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((ok, fail) => {
    const onError = (e: Error) => {
      server.off('listening', onListening);
      fail(e);
    };
    const onListening = () => {
      server.off('error', onError);
      ok();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}
