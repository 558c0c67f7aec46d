import { defineConfig } from 'vitest/config';

// Tests run on the TypeScript sources: the workspace packages' `aes-source` export condition
// points there (published packages resolve `import` to dist/). Two cores on the reference
// machines: at most two test files at a time.
const conditions = ['aes-source', 'module', 'node', 'development|production'];   // + Vite's server defaults
export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ['packages/*/test/**/*_test.ts', 'experiments/**/*_test.ts', 'scripts/**/*_test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default', './scripts/summary_reporter.ts'],
    setupFiles: ['./scripts/test_setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
