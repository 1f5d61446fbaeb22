import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // CLI and scan tests spawn processes and threads; two files at a time suits these 2-core machines.
    maxWorkers: 2,
  },
});
