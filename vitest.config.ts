import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds dist/ when a source is newer than its output; stages the runtime for the tests run as nobody.
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // CLI and scan tests spawn processes and threads; two files at a time suits these 2-core machines.
    maxWorkers: 2,
  },
});
