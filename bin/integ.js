#!/usr/bin/env node
// dist/bundle/cli.js: the CLI as tools/bundle.mjs bundles it from tsc's output (npm run build).
import('../dist/bundle/cli.js').then(
  (m) => m.main(process.argv),
  (e) => {
    const missing = e?.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('dist/bundle/cli.js');
    process.stderr.write(
      `integ: ${missing ? 'dist/bundle/cli.js is missing: run "npm run build"' : `cannot load integ: ${String(e?.message ?? e).split('\n')[0]}`}\n`,
    );
    process.exitCode = 70;
  },
);
