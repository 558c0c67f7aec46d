/** Entry-point habits: an error nobody caught prints `error: <message>` (exit 1), also on wasm. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const run = (args: string[]) => promisify(execFile)(join(ROOT, 'node_modules', '.bin', 'tsx'),
  ['--conditions=aes-source', join(import.meta.dirname, 'fixtures', 'uncaught.ts'), ...args], { timeout: 60_000 })
  .then(() => ({ code: 0, err: '' }), (e: { code: number; stderr: string }) => ({ code: e.code, err: e.stderr }));

describe('exitOnUncaught', () => {
  it('an unhandled rejection after the wasm backend loaded prints one line and exits 1', async () => {
    const bare = await run([]);
    expect(bare.code).not.toBe(0);
    expect(bare.err.length).toBeGreaterThan(5000);                // without it: the minified glue source
    const handled = await run(['--handled']);
    expect(handled).toEqual({ code: 1, err: 'error: the model went away\n' });
  });

  it('the same on threaded wasm, whose glue is loaded by wasm_threads.ts', async () => {
    expect(await run(['--handled', '--threads', '2'])).toEqual({ code: 1, err: 'error: the model went away\n' });
  });
});
