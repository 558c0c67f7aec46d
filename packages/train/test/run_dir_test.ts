import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WRITE_PROBE } from '../src/run_dir.js';

const root = mkdtempSync(join(tmpdir(), 'aes-run-dir-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Runs the probe on `dir` in a child, after `before` (code run first in the same child). */
function probe(dir: string, before = '') {
  return spawnSync(process.execPath, ['-e', `${before}\n${WRITE_PROBE}`, dir], { encoding: 'utf8' });
}

// another process wins the race for every level: each mkdir finds its folder just made (two sweep
// workers creating sibling runs under a parent that did not exist)
const RACED = `{ const fs = require('node:fs'), mk = fs.mkdirSync;
  fs.mkdirSync = (d, ...a) => { mk(d); return mk(d, ...a); }; }`;

describe('the output-directory probe', () => {
  it('creates every missing level and writes there', () => {
    const dir = join(root, 'plain', 'a', 'b');
    expect(probe(dir).status).toBe(0);
    expect(existsSync(dir)).toBe(true);
  });

  it('takes a level that another process created meanwhile (it failed with EEXIST before)', () => {
    const dir = join(root, 'raced', 'a', 'b');
    const r = probe(dir, RACED);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(existsSync(dir)).toBe(true);
  });

  it('still fails where a level is a file', () => {
    const r = probe(join('/dev/null', 'x'));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/ENOTDIR|EEXIST/);
  });
});
