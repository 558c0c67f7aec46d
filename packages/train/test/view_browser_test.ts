/**
 * `aes view` in a real browser: headless Chromium (Debian's `chromium`, driven by playwright-core)
 * opens the page of a small trained run served by the `aes` CLI, waits for the heatmaps, and the
 * numbers it shows (α and support of every head for the model and for softmax / sparsemax / AES,
 * the last query's weights, the tokens sampled with a seed) must equal the Node computation on cpu.
 * The static export is opened from file:// and shows the same. A screenshot is saved
 * (to $AES_VIEW_SCREENSHOT as well when set: that is how docs/view.png is made).
 * Without Chromium the test is skipped, except under CI (.ci/run installs it), where it fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { attentionMaps, generate, loadCheckpoint, plainSampler } from '@aes/models';
import { fileSystemIO, selectBackend } from '@aes/node';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRAIN_DEFAULTS, parseTask, train } from '../src/index.js';
import { exportView } from '../src/view/serve.js';

const CHROMIUM = [process.env.AES_CHROMIUM ?? '', '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (p) => p && existsSync(p),
);
if (!CHROMIUM && process.env.CI) throw new Error('Chromium is missing: .ci/run installs Debian\'s chromium package');
const DATA = 'task:copy:len=6';
const CLI = join(import.meta.dirname, '..', 'src', 'main.ts');
const TSX = join(import.meta.dirname, '..', '..', '..', 'node_modules', '.bin', 'tsx');

let root: string;
let run: string;
let server: ChildProcess | undefined;
let url = '';
let browser: Browser | undefined;

/** Starts `aes view` and resolves with the address it prints. */
function startView(args: string[]): Promise<string> {
  return new Promise((ok, fail) => {
    server = spawn(TSX, ['--conditions=aes-source', CLI, 'view', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    server.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /at (http:\/\/\S+) /.exec(out);
      if (m) ok(m[1]);
    });
    server.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
    server.on('exit', (code) => fail(new Error(`aes view exited with ${code}: ${out}`)));
  });
}

/** What the page shows: every head caption's numbers, the weights table, the input and the backend. */
async function shown(page: Page) {
  await page.waitForSelector('body[data-maps="ready"]', { timeout: 150_000 });
  return page.evaluate(() => ({
    backend: document.getElementById('backend')!.textContent,
    error: document.getElementById('error')!.textContent,
    notes: document.getElementById('notes')!.textContent,
    input: (document.getElementById('input') as HTMLTextAreaElement).value,
    prompt: (document.getElementById('prompt') as HTMLTextAreaElement).value,
    heads: Array.from(document.querySelectorAll<HTMLElement>('[data-testid="head"]')).map((e) => ({
      layer: Number(e.dataset.layer), head: Number(e.dataset.head), kind: e.dataset.kind!,
      alpha: Number(e.dataset.alpha), support: Number(e.dataset.support),
    })),
    weights: Array.from(document.querySelectorAll<HTMLElement>('#weights-table td')).map((e) => ({
      kind: e.dataset.kind!, key: Number(e.dataset.key), text: e.textContent!,
    })),
  }));
}

describe.skipIf(!CHROMIUM)('aes view in Chromium', () => {
  beforeAll(async () => {
    await selectBackend('wasm', { threads: 1 });
    root = mkdtempSync(join(tmpdir(), 'aes-view-browser-'));
    run = join(root, 'copy-run');
    await train({
      ...TRAIN_DEFAULTS, data: DATA, attention: 'sparsemax/aes,learned/softmax', steps: 80, layers: 2, heads: 2,
      embd: 16, batch: 8, lr: 0.01, evalEvery: 40, evalBatches: 1, ckptEvery: 80, logEvery: 10, warmup: 8, out: run,
    });
    const curvesOnly = join(root, 'curves-only');
    mkdirSync(curvesOnly);
    copyFileSync(join(run, 'metrics.jsonl'), join(curvesOnly, 'metrics.jsonl'));
    url = await startView([run, curvesOnly, '--port', '0']);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    server?.kill();
    rmSync(root, { recursive: true, force: true });
  });

  it('heatmaps, α, support, weights and a seeded sample equal the Node computation; static export too', async () => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    const s = await shown(page);
    expect(errors).toEqual([]);
    expect(s.error).toBe('');
    expect(['webgl', 'cpu']).toContain(s.backend);
    expect(s.notes).toMatch(/curves-only: no checkpoint at \S+ \(missing \S+model\.json\): curves only/);

    // the same maps in Node, on cpu, from the checkpoint on disk
    await selectBackend('cpu');
    const { model } = await loadCheckpoint(fileSystemIO(join(run, 'ckpt')));
    const names = parseTask(DATA).tokenNames();
    const ids = s.input.split(' ').map((n) => names.indexOf(n));
    expect(ids.length).toBeGreaterThan(4);
    expect(ids).not.toContain(-1);
    const { layers } = await attentionMaps(model, ids);
    const T = ids.length;
    const visible = (T * (T + 1)) / 2;
    expect(s.heads.length).toBe(2 * 2 * 4);                                      // layers × heads × kinds
    for (const h of s.heads) {
      const ref = h.kind === 'model' ? layers[h.layer].model[h.head] : layers[h.layer].compare[h.kind][h.head];
      expect(Math.abs(h.alpha - ref.alpha)).toBeLessThan(1e-4);
      expect(Math.abs(h.support - ref.support) * visible).toBeLessThanOrEqual(1);   // one weight at the edge
    }
    expect(s.heads.find((h) => h.kind === 'sparsemax')!.alpha).toBe(2);
    expect(s.heads.some((h) => h.support < 1)).toBe(true);                         // exact zeros are there
    expect(s.weights.length).toBe(4 * T);
    for (const w of s.weights) {
      const ref = w.kind === 'model' ? layers[0].model[0] : layers[0].compare[w.kind][0];
      expect(w.text).toMatch(/^\d\.\d{6}$/);                                       // no NaN, no −∞
      expect(Math.abs(Number(w.text) - ref.probs[T - 1][w.key])).toBeLessThan(1e-4);
    }

    // generation with a sampler and a seed
    await page.selectOption('#sampler', 'temperature');
    await page.fill('#seed', '3');
    await page.fill('#max', '8');
    await page.click('#go');
    await page.waitForSelector('body[data-generated="ready"]', { timeout: 60_000 });
    const tokens = JSON.parse((await page.getAttribute('#gen-text', 'data-tokens'))!);
    const prompt = s.prompt.split(' ').map((n) => names.indexOf(n));
    const node = await generate(model, prompt, { maxNewTokens: 8, sampler: plainSampler({ temperature: 1 }), seed: 3 });
    expect(tokens).toEqual(node.tokens);
    const trace = await page.$$eval('#trace-table tr', (rows) => rows.length);
    expect(trace).toBe(1 + 8);
    const shot = join(root, 'view.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(20_000);
    if (process.env.AES_VIEW_SCREENSHOT) copyFileSync(shot, process.env.AES_VIEW_SCREENSHOT);
    await page.close();

    // the static build, opened as files
    await exportView([run], join(root, 'site'));
    const local = await browser!.newPage();
    await local.goto(pathToFileURL(join(root, 'site', 'index.html')).href);
    const fromFiles = await shown(local);
    expect(fromFiles.heads.map((h) => h.alpha)).toEqual(s.heads.slice(0, 16).map((h) => h.alpha));
    expect(readFileSync(join(root, 'site', 'index.html'), 'utf8')).toMatch(/data\.js/);
    model.dispose();
  }, 300_000);
});
