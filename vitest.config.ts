import { defineConfig } from 'vitest/config';

// Two cores on the reference machines: at most two test files at a time.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*_test.ts', 'experiments/**/*_test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default', './scripts/summary_reporter.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
