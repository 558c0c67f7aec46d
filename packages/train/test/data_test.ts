/**
 * Text data: loading files (UTF-8, invalid bytes, missing, empty), URLs through a local HTTP server
 * (download, cache hit without a request, 404, closed port, throwing fetch), unknown schemes; the
 * train/validation split; random windows (shapes, shift, bounds, determinism) and fixed eval windows.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '@aes/models';
import { cachePath, evalWindows, loadText, randomWindows, splitTrainVal } from '../src/data.js';

const dir = mkdtempSync(join(tmpdir(), 'aes-data-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const iota = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

describe('loadText from files', () => {
  it('decodes UTF-8 with non-ASCII characters', async () => {
    const path = join(dir, 'ok.txt');
    writeFileSync(path, 'héllo wörld — ✓ 𝄞\n', 'utf8');
    expect(await loadText(path, { cacheDir: dir })).toEqual({ text: 'héllo wörld — ✓ 𝄞\n', origin: 'file', path });
    expect((await loadText(pathToFileURL(path).href, { cacheDir: dir })).text).toBe('héllo wörld — ✓ 𝄞\n');
  });

  it('rejects invalid UTF-8 naming the file and the byte offset', async () => {
    const path = join(dir, 'bad.txt');
    writeFileSync(path, Uint8Array.from([0x61, 0x62, 0xc3, 0xa9, 0x63, 0xff, 0x64]));   // 'abéc' then 0xff at offset 5
    await expect(loadText(path, { cacheDir: dir })).rejects.toThrow(
      new RegExp(`${path}.*not valid UTF-8.*byte offset 5`),
    );
    writeFileSync(path, Uint8Array.from([0x61, 0xe2, 0x82]));   // truncated '€'
    await expect(loadText(path, { cacheDir: dir })).rejects.toThrow(
      /not valid UTF-8 \(a truncated sequence at the end\)/,
    );
  });

  it('names a missing file and rejects an empty one', async () => {
    const missing = join(dir, 'nope', 'missing.txt');
    await expect(loadText(missing, { cacheDir: dir })).rejects.toThrow(`text file not found: ${missing}`);
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, '');
    await expect(loadText(empty, { cacheDir: dir })).rejects.toThrow(`${empty} is empty`);
  });

  it('rejects unknown schemes', async () => {
    await expect(loadText('ftp://example.org/x.txt', { cacheDir: dir })).rejects.toThrow(/unsupported scheme 'ftp:'/);
    await expect(loadText('task:copy', { cacheDir: dir })).rejects.toThrow(/unsupported scheme 'task:'/);
  });
});

describe('loadText from URLs', () => {
  let server: Server;
  let base = '';
  const requests: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push(req.url!);
      if (req.url === '/shakespeare/input.txt')
        res.writeHead(200, { 'content-type': 'text/plain' }).end('To be, or not to be — ça va\n');
      else res.writeHead(404).end('not here');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('downloads once into the cache, then reads the cache without a request', async () => {
    const cacheDir = join(dir, 'cache', 'nested');
    const url = `${base}/shakespeare/input.txt`;
    const first = await loadText(url, { cacheDir });
    expect(first.origin).toBe('download');
    expect(first.text).toBe('To be, or not to be — ça va\n');
    expect(first.path).toBe(cachePath(url, cacheDir));
    expect(first.path).toMatch(/[/\\][0-9a-f]{16}-input\.txt$/);
    expect(readFileSync(first.path, 'utf8')).toBe(first.text);
    expect(readdirSync(cacheDir)).toEqual([first.path.split(/[/\\]/).pop()]);   // no temporary file left
    expect(requests).toEqual(['/shakespeare/input.txt']);
    const second = await loadText(url, { cacheDir });
    expect(second).toEqual({ text: first.text, origin: 'cache', path: first.path });
    expect(requests.length).toBe(1);
  });

  it('reports HTTP errors with the status, the URL and the cache path', async () => {
    const cacheDir = join(dir, 'cache404');
    const url = `${base}/missing.txt`;
    const err = await loadText(url, { cacheDir }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain('HTTP 404');
    expect((err as Error).message).toContain(url);
    expect((err as Error).message).toContain(cachePath(url, cacheDir));
    expect(existsSync(cacheDir)).toBe(false);
  });

  it('says how to download by hand when offline (closed port, throwing fetch)', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const cacheDir = join(dir, 'offline');
    for (const [url, fetchImpl] of [
      [`http://127.0.0.1:${port}/data`, undefined],
      [
        'https://example.invalid/corpus/tiny.txt',
        (async () => {
          throw new TypeError('fetch failed');
        }) as typeof fetch,
      ],
    ] as const) {
      const err = (await loadText(url, { cacheDir, fetchImpl }).catch((e: Error) => e)) as Error;
      expect(err.message).toContain(url);
      expect(err.message).toContain(cachePath(url, cacheDir));
      expect(err.message).toMatch(/offline, download it by hand and save it as/);
    }
  });

  it('names cache files by URL hash and a sanitised basename', () => {
    expect(cachePath('https://x.org/', '/c')).toMatch(/^[/\\]c[/\\][0-9a-f]{16}-data\.txt$/);
    expect(cachePath('https://x.org/a/we%20ird*name.md?q=1', '/c')).toMatch(/-we_ird_name\.md\.txt$/);
    expect(cachePath('https://x.org/a.txt', '/c')).not.toBe(cachePath('https://y.org/a.txt', '/c'));
  });
});

describe('splitTrainVal', () => {
  it('splits contiguously with the last fraction as validation', () => {
    const { train, val } = splitTrainVal(iota(100), 0.1);
    expect(Array.from(train)).toEqual(Array.from(iota(90)));
    expect(Array.from(val)).toEqual(Array.from(iota(100)).slice(90));
  });

  it('errors when a part is too short for a window, or valFraction is out of (0, 1)', () => {
    expect(() => splitTrainVal(iota(100), 0.1, 11)).toThrow(/90 train \/ 10 validation tokens.*at least 11/);
    expect(() => splitTrainVal(iota(100), 0.1, 10)).not.toThrow();
    expect(() => splitTrainVal(iota(3), 0.1)).toThrow(/at least 2/);
    expect(() => splitTrainVal(iota(100), 0)).toThrow(/valFraction/);
    expect(() => splitTrainVal(iota(100), 1)).toThrow(/valFraction/);
  });
});

describe('randomWindows', () => {
  const data = Int32Array.from({ length: 50 }, (_, i) => 1000 + i);   // value = 1000 + position

  it('gives [B, T] windows shifted by one', () => {
    const { x, y } = randomWindows(data, 6, 8, new Rng(1));
    expect(x.length).toBe(6);
    for (let b = 0; b < 6; b++) {
      expect(x[b].length).toBe(8);
      expect(y[b]).toEqual([...x[b].slice(1), x[b][7] + 1]);
      expect(x[b]).toEqual(Array.from({ length: 8 }, (_, t) => x[b][0] + t));   // contiguous
    }
  });

  it('is deterministic by seed and state, and differs with another seed', () => {
    expect(randomWindows(data, 8, 4, new Rng(7))).toEqual(randomWindows(data, 8, 4, new Rng(7)));
    expect(randomWindows(data, 8, 4, new Rng(7))).not.toEqual(randomWindows(data, 8, 4, new Rng(8)));
    const r = new Rng(3);
    randomWindows(data, 2, 4, r);
    expect(randomWindows(data, 3, 4, Rng.fromState(r.state()))).toEqual(randomWindows(data, 3, 4, r));
  });

  it('covers every start and never reads past the data', () => {
    const short = Int32Array.from([10, 11, 12, 13, 14, 15]); // T = 3: starts 0, 1, 2
    const starts = new Set<number>();
    const rng = new Rng(0);
    for (let k = 0; k < 50; k++) {
      const { x, y } = randomWindows(short, 4, 3, rng);
      for (let b = 0; b < 4; b++) {
        starts.add(x[b][0] - 10);
        expect(y[b][2]).toBeLessThanOrEqual(15);
      }
    }
    expect([...starts].sort()).toEqual([0, 1, 2]);
    expect(randomWindows(Int32Array.from([5, 6]), 2, 1, rng)).toEqual({ x: [[5], [5]], y: [[6], [6]] }); // len = T + 1
  });

  it('errors on data too short or bad sizes', () => {
    expect(() => randomWindows(iota(8), 2, 8, new Rng(0))).toThrow(/8 tokens are too few for a window of blockSize 8/);
    expect(() => randomWindows(iota(8), 0, 2, new Rng(0))).toThrow(/batch/);
    expect(() => randomWindows(iota(8), 2, 1.5, new Rng(0))).toThrow(/blockSize/);
  });
});

describe('evalWindows', () => {
  it('gives fixed, consecutive, non-overlapping full batches', () => {
    const data = iota(101);   // 25 windows of 4 (the last needs data[100])
    const batches = evalWindows(data, 4, 4, 100);
    expect(batches.length).toBe(6);   // 24 windows in full batches; the 25th is dropped
    expect(batches).toEqual(evalWindows(data, 4, 4, 100));
    const xs = batches.flatMap((b) => b.x);
    expect(xs.map((r) => r[0])).toEqual(Array.from({ length: 24 }, (_, j) => 4 * j));
    for (const b of batches) {
      expect(b.x.length).toBe(4);
      b.x.forEach((r, i) => expect(b.y[i]).toEqual(r.map((v) => v + 1)));
    }
    expect(evalWindows(data, 4, 4, 2).length).toBe(2);
    expect(evalWindows(data, 4, 4, 2)).toEqual(batches.slice(0, 2));
  });

  it('forms one smaller batch from short data, errors on too-short data', () => {
    const b = evalWindows(iota(10), 8, 4, 3);   // windows at 0 and 4
    expect(b).toEqual([{ x: [[0, 1, 2, 3], [4, 5, 6, 7]], y: [[1, 2, 3, 4], [5, 6, 7, 8]] }]);
    expect(() => evalWindows(iota(4), 2, 4, 1)).toThrow(/too few/);
    expect(() => evalWindows(iota(40), 2, 4, 0)).toThrow(/maxBatches/);
  });
});
