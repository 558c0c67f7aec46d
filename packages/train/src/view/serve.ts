/**
 * `aes view`: a page for runs, served locally or written as static files.
 *
 * The page is three files: index.html, app.js (the browser bundle of page.ts, built with esbuild
 * from @aes/models, @aes/attention, tfjs and vega-lite) and data.js, which sets
 * `globalThis.AES_VIEW_DATA` to the runs: name, config, metrics.jsonl text and the checkpoint as
 * `fileSystemIO` loads it, with the model's weights (base64, optimizer slots left out). Data as a script, not fetched,
 * makes the static build work from file:// as well. The server rebuilds data.js on each request,
 * so a reload shows the curves of a run still training.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as tf from '@tensorflow/tfjs';
import { fileSystemIO } from '@aes/node';
import { build } from 'esbuild';

/** What the page gets of one run. */
export interface ViewRun {
  name: string;
  dir: string;
  /** Said on the page (e.g. why there is no explorer). */
  note: string;
  config: Record<string, unknown> | null;
  metrics: string;
  /** The checkpoint's artifacts without their weight bytes, and the model's weights (base64). */
  checkpoint: { artifacts: tf.io.ModelArtifacts; weights: string } | null;
}

/** Reads a run directory; rejects when `dir` is not a run (no metrics.jsonl, config.json or ckpt/). */
export async function readRun(dir: string): Promise<ViewRun> {
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
    checkpoint = modelWeights(await fileSystemIO(at('ckpt')).load());
  } catch (e) {
    notes.push(`${(e as Error).message}: curves only, no attention explorer or generation`);
  }
  const name = basename(resolve(dir));
  return { name, dir, note: notes.join('; '), config, metrics, checkpoint };
}

/** The model's part of a checkpoint: the `extra/` tensors (optimizer slots) left out. */
function modelWeights({ weightData, weightSpecs = [], ...artifacts }: tf.io.ModelArtifacts) {
  const data = new Uint8Array(weightData as ArrayBuffer); // fileSystemIO: float32, sizes checked
  const kept: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const w of weightSpecs) {
    const size = 4 * w.shape.reduce((a, b) => a * b, 1);
    if (!w.name.startsWith('extra/')) {
      kept.push(w);
      parts.push(data.subarray(offset, offset + size));
    }
    offset += size;
  }
  return { artifacts: { ...artifacts, weightSpecs: kept }, weights: Buffer.concat(parts).toString('base64') };
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
  const runs = await Promise.all(dirs.map(readRun));
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
  await Promise.all(dirs.map(readRun)); // bad directories fail before anything listens
  const app = await bundlePage();
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const send = (type: string, body: string) => {
      res.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' });
      res.end(body);
    };
    try {
      if (path === '/' || path === '/index.html') send('text/html', INDEX_HTML);
      else if (path === '/app.js') send('text/javascript', app);
      else if (path === '/data.js') send('text/javascript', dataScript(await Promise.all(dirs.map(readRun))));
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
