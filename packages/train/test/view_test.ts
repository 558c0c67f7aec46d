/**
 * `aes view` without a browser: which directories are runs and what the page is told about each
 * (a run without checkpoint or with a garbled one: curves only, with a note), the checkpoint's weights
 * without the optimizer slots, a port in use (the next free one, said), and the static export.
 * view_browser_test.ts drives the page itself in Chromium.
 */
import { createServer } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '@aes/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRAIN_DEFAULTS, train } from '../src/index.js';
import { exportView, readRun, serveView } from '../src/view/serve.js';

let root: string;
let run: string;

beforeAll(async () => {
  await selectBackend('cpu');
  root = mkdtempSync(join(tmpdir(), 'aes-view-'));
  run = join(root, 'run');
  await train({
    ...TRAIN_DEFAULTS, data: 'task:copy:len=4', attention: 'learned', steps: 4, layers: 1, heads: 2, embd: 8,
    batch: 4, evalEvery: 4, evalBatches: 1, ckptEvery: 4, logEvery: 2, warmup: 1, out: run,
  });
}, 60_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('aes view: runs', () => {
  it('a run: config, metrics and the model weights without the optimizer slots', async () => {
    const r = await readRun(run);
    expect(r.note).toBe('');
    expect(r.config?.train).toMatchObject({ data: 'task:copy:len=4', attention: 'learned' });
    expect(r.metrics.split('\n').filter(Boolean).map((l) => JSON.parse(l).split)).toContain('val');
    const original = JSON.parse(readFileSync(join(run, 'ckpt', 'model.json'), 'utf8'));
    const all = original.weightsManifest[0].weights as Array<{ name: string; shape: number[] }>;
    expect(all.some((w) => w.name.startsWith('extra/'))).toBe(true);          // the trainer saved Adam's slots
    const kept = r.checkpoint!.artifacts.weightSpecs!;
    const names = kept.map((w) => w.name);
    expect(names).toEqual(all.filter((w) => !w.name.startsWith('extra/')).map((w) => w.name));
    // the bytes are the model's: 4 per float32, the same as the leading part of weights.bin
    const bytes = Buffer.from(r.checkpoint!.weights, 'base64');
    const size = kept.reduce((n, w) => n + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
    expect(bytes.length).toBe(size);
    const bin = readFileSync(join(run, 'ckpt', 'weights.bin'));
    expect(bytes.subarray(0, 64).equals(bin.subarray(0, 64))).toBe(true);     // 'wte' comes first in both
  });

  it('curves only, with a note: no checkpoint, a garbled model.json, a weights file too short', async () => {
    const cases: Array<[string, (d: string) => void, RegExp]> = [
      ['noCkpt', () => {}, /no checkpoint at \S+ckpt \(missing \S+model\.json\): curves only/],
      ['garbled', (d) => { mkdirSync(join(d, 'ckpt')); writeFileSync(join(d, 'ckpt', 'model.json'), '{'); },
        /ckpt\/model\.json is not valid JSON/],
      ['short', (d) => {
        mkdirSync(join(d, 'ckpt'));
        writeFileSync(join(d, 'ckpt', 'model.json'), readFileSync(join(run, 'ckpt', 'model.json')));
        writeFileSync(join(d, 'ckpt', 'weights.bin'), Buffer.alloc(8));
      }, /weights\.bin holds 8 bytes, its manifest expects \d+/],
    ];
    for (const [name, make, re] of cases) {
      const d = join(root, name);
      mkdirSync(d);
      writeFileSync(join(d, 'metrics.jsonl'), readFileSync(join(run, 'metrics.jsonl')));
      make(d);
      const r = await readRun(d);
      expect(r.checkpoint).toBeNull();
      expect(r.note).toMatch(re);
      expect(r.metrics.length).toBeGreaterThan(0);
    }
    const bad = join(root, 'badConfig');
    mkdirSync(bad);
    writeFileSync(join(bad, 'config.json'), 'not json');
    expect((await readRun(bad)).note).toMatch(/config\.json is not valid JSON.*no metrics yet/);
  });

  it('a port in use: the next free one, and the output says so; the page and data are served', async () => {
    const blocker = createServer();
    await new Promise<void>((ok) => blocker.listen(0, '127.0.0.1', () => ok()));
    const taken = (blocker.address() as { port: number }).port;
    const view = await serveView([run], { port: taken, host: '127.0.0.1' });
    try {
      expect(view.port).not.toBe(taken);
      expect(view.moved).toBe(`port ${taken} is in use; using ${view.port}`);
      const get = async (p: string) => (await fetch(new URL(p, view.url))).text();
      expect(await get('/')).toMatch(/<script src="data\.js"><\/script><script src="app\.js">/);
      const data = await get('/data.js');
      const runs = JSON.parse(data.replace(/^globalThis\.AES_VIEW_DATA = /, '').replace(/;\n$/, '')).runs;
      expect(runs.map((r: { name: string }) => r.name)).toEqual(['run']);
      expect((await get('/app.js')).length).toBeGreaterThan(100_000);         // tfjs and vega are inside
      expect((await fetch(new URL('/nothing', view.url))).status).toBe(404);
    } finally {
      await view.close();
      blocker.close();
    }
  }, 120_000);

  it('the static export: index.html, app.js and data.js in a new directory', async () => {
    const files = await exportView([run], join(root, 'site'));
    expect(files.map((f) => f.slice(root.length + 1))).toEqual(['site/index.html', 'site/app.js', 'site/data.js']);
    const data = readFileSync(join(root, 'site', 'data.js'), 'utf8');
    expect(data).toMatch(/^globalThis\.AES_VIEW_DATA = \{"runs":\[\{"name":"run"/);
  }, 120_000);
});
