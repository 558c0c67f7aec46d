#!/usr/bin/env node
// The `aes` executable: the built CLI (`pnpm build` makes dist/; in this workspace `pnpm aes` runs
// the TypeScript sources through tsx instead).
await import('../dist/main.js');
