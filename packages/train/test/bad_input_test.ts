/**
 * Every case of bad_inputs.ts (the table in docs/bad_inputs.md): a clear error, a warning or a
 * defined result, never a stack trace, a silent NaN or lost files. Each case runs in a fresh
 * temporary directory on the cpu backend.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '@aes/node';
import { beforeAll, describe, expect, it } from 'vitest';
import { BAD_INPUTS } from './bad_inputs.js';

describe('bad inputs', () => {
  beforeAll(async () => { await selectBackend('cpu'); });

  it('the list covers every area and has no duplicate', () => {
    expect(new Set(BAD_INPUTS.map((c) => c.area))).toEqual(
      new Set(['maps', 'attention', 'model', 'checkpoint', 'cli']),
    );
    expect(new Set(BAD_INPUTS.map((c) => c.input)).size).toBe(BAD_INPUTS.length);
  });

  for (const c of BAD_INPUTS) {
    it(`${c.area}: ${c.input}`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'aes-bad-'));
      try {
        await tf.setBackend('cpu');
        await c.check(dir);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
