/**
 * Boundaries the packages keep, checked on every file: no relative import leaves its package; the
 * browser-safe packages (@aes/attention, @aes/models) import no Node built-in and no backend, and
 * read no process state; backend names are compared only in capabilities.ts; nothing points to files
 * outside the repository; lines are at most 120 characters.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const SKIP = new Set(['node_modules', 'dist', '.git', 'results', '.gpu', 'runs', '.cache']);

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (SKIP.has(name)) return [];
    return statSync(p).isDirectory() ? files(p, ext) : ext.test(name) ? [p] : [];
  });
}
const sources = files(ROOT, /\.(ts|mjs)$/);
const imports = (text: string) => [...text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]);
const packageOf = (p: string) => /^packages\/([^/]+)\//.exec(relative(ROOT, p))?.[1] ?? null;

describe('package boundaries', () => {
  it('relative imports in a package stay inside it', () => {
    const bad = sources.flatMap((f) => imports(readFileSync(f, 'utf8'))
      .filter((s) => s.startsWith('.') && packageOf(f) !== null && packageOf(resolve(dirname(f), s)) !== packageOf(f))
      .map((s) => `${relative(ROOT, f)} imports ${s}`));
    expect(bad).toEqual([]);
  });

  it('@aes/attention and @aes/models import no Node built-in or backend and read no process state', () => {
    const builtins = ['fs', 'path', 'os', 'url', 'child_process', 'worker_threads', 'webgpu'];
    const forbidden = new RegExp(`^(node:|${builtins.join('$|')}$|@tensorflow/tfjs-(backend|node))`);
    const lib = sources.filter((f) => /^packages\/(attention|models)\/src\//.test(relative(ROOT, f)));
    expect(lib.length).toBeGreaterThan(20);
    const bad = lib.flatMap((f) => {
      const text = readFileSync(f, 'utf8');
      const found = imports(text).filter((s) => forbidden.test(s));
      if (/\bprocess\.(env|argv|stdout|exit)/.test(text)) found.push('process.*');
      return found.map((s) => `${relative(ROOT, f)}: ${s}`);
    });
    expect(bad).toEqual([]);
  });

  it('library code compares backend names only in capabilities.ts', () => {
    const bad = sources
      .filter((f) => /^packages\/(attention|models)\/src\//.test(relative(ROOT, f)) && !f.endsWith('capabilities.ts'))
      .filter((f) => /getBackend\(\)\s*[!=]==|[!=]==\s*tf\.getBackend\(\)/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(ROOT, f));
    expect(bad).toEqual([]);
  });
});

describe('repository habits', () => {
  it('nothing points to files outside the repository', () => {
    const text = files(ROOT, /\.(ts|mjs|md|json|sh|yaml)$/).filter((f) => !f.endsWith('boundaries_test.ts'));
    const outside = /\.\.\/shared\/|\bSTYLE\.md\b|\bREFERENCES\.md\b|STYLE §/;
    const bad = text.filter((f) => outside.test(readFileSync(f, 'utf8')));
    expect(bad.map((f) => relative(ROOT, f))).toEqual([]);
  });

  it('source lines are at most 120 characters', () => {
    const long = sources.flatMap((f) => readFileSync(f, 'utf8').split('\n')
      .map((line, i) => ({ line, at: `${relative(ROOT, f)}:${i + 1}` }))
      .filter(({ line }) => [...line].length > 120).map(({ at }) => at));
    expect(long).toEqual([]);
  });
});
