/**
 * Multi-threaded wasm: the pool really has the threads asked for, bad counts are refused, the glue
 * leaves the process's error handlers alone, and a process that used the pool still exits by itself.
 * (That results equal the single-threaded build's: packages/attention/test/threads_test.ts.)
 */
import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultThreads, MAX_WASM_THREADS, selectBackend } from '../src/index.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');

describe('wasm threads', () => {
  afterAll(async () => { await selectBackend('cpu'); });

  it('the pool has the threads asked for; the default is one per core', async () => {
    const two = await selectBackend('wasm', { threads: 2 });
    expect([two.threads, two.detail]).toEqual([2, 'SIMD on, 2 threads']);
    const one = await selectBackend('wasm', { threads: 1 });
    expect([one.threads, one.detail]).toEqual([1, 'SIMD on, single thread']);
    expect(defaultThreads()).toBe(Math.min(MAX_WASM_THREADS, availableParallelism()));
    expect((await selectBackend('wasm')).threads).toBe(defaultThreads());
  });

  it('bad thread counts are refused with the valid range', async () => {
    for (const t of [0, -1, 1.5, MAX_WASM_THREADS + 1, Number.NaN]) {
      await expect(selectBackend('wasm', { threads: t })).rejects.toThrow(/threads must be an integer in 1 … 8/);
    }
  });

  it('the threaded glue leaves the process error handlers as they were', async () => {
    await selectBackend('wasm', { threads: 2 });
    const counts = () => [process.listenerCount('uncaughtException'), process.listenerCount('unhandledRejection')];
    const before = counts();
    await selectBackend('wasm', { threads: 3 });                  // a fresh glue (its own listeners taken off)
    expect(counts()).toEqual(before);
  });

  it('a process that used the pool exits by itself', async () => {
    const { stdout } = await promisify(execFile)(join(ROOT, 'node_modules', '.bin', 'tsx'),
      ['--conditions=aes-source', join(import.meta.dirname, 'fixtures', 'threads_done.ts')], { timeout: 60_000 });
    expect(stdout).toBe('threads 2\n');
  });
});
