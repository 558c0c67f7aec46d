/** The committed docs equal what scripts/render_docs.ts renders from the committed result files. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { render, RENDERED } from './render_docs.js';

describe('rendered docs', () => {
  for (const f of RENDERED) {
    it(`${f} is up to date (pnpm render-docs)`, () => {
      const text = readFileSync(join(import.meta.dirname, '..', f), 'utf8');
      expect(text).toMatch(/<!-- render:[\w-]+ -->/);
      expect(render(text)).toBe(text);
    });
  }
});
