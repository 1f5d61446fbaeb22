#!/usr/bin/env node
// Bundles the built CLI (dist/src, tsc's output) into dist/bundle/: one file for the main thread and
// one per worker thread, which is what bin/integ.js runs.
//
// Why: node loads an ES module graph file by file (resolve, read, compile, link ~130 of integ's
// modules and ~150 of its dependencies'), in each of a check's four isolates, and the bundled
// program also runs a little faster once loaded (README, Performance, ninth round: check of /usr
// ~0.1 s and ~0.2 CPU s less, baseline ~0.3 s, check of /etc 0.33 -> 0.28 s). esbuild (well kept,
// the most used JavaScript bundler, one prebuilt binary, nothing of it at run time) does it in
// under a second. It bundles tsc's own output: the worker tests run that JavaScript under
// dist/src, and every CLI test runs the bundle through bin/integ.js.
//
//   node tools/bundle.mjs          write dist/bundle/{cli,hash.worker,generation-reader.worker}.js
//
// Packages with native code, or that read files beside their own code at run time, stay outside
// and are loaded from node_modules as before.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Output name -> tsc output it starts from. A worker's bundle keeps the file name its starter
 * resolves beside itself (hash-pool.ts, generation-stream.ts: path.join(dirname(here), NAME)).
 */
export const ENTRIES = {
  cli: 'dist/src/cli.js',
  'hash.worker': 'dist/src/scan/hash.worker.js',
  'generation-reader.worker': 'dist/src/store/generation-reader.worker.js',
};

export const EXTERNAL = ['better-sqlite3', 'koffi', '@napi-rs/blake-hash', 'blake3-wasm'];

export const OUT_DIR = 'dist/bundle';

// CommonJS dependencies inside an ES module bundle call require() for node's built-ins, and a few
// name __dirname/__filename on paths integ never takes (pino's transports): give them both.
const BANNER = [
  "import { createRequire as __integCreateRequire } from 'node:module';",
  "import { fileURLToPath as __integFileURLToPath } from 'node:url';",
  'const require = __integCreateRequire(import.meta.url);',
  'const __filename = __integFileURLToPath(import.meta.url);',
  "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
].join(' ');

export async function bundle(root = ROOT) {
  const { build } = await import('esbuild');
  for (const from of Object.values(ENTRIES)) if (!fs.existsSync(path.join(root, from))) throw new Error(`${from} is missing: run tsc -p tsconfig.json first`);
  const out = path.join(root, OUT_DIR);
  fs.rmSync(out, { recursive: true, force: true });
  const r = await build({
    absWorkingDir: root,
    entryPoints: Object.entries(ENTRIES).map(([o, i]) => ({ in: i, out: o })),
    outdir: out,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: EXTERNAL,
    banner: { js: BANNER },
    // Whitespace and syntax only (names stay, so errors and logs name the same functions): a
    // third less to parse at every start, and ~2-4 MB less peak RSS across the four isolates.
    // The source map beside each bundle leads back to src/*.ts through tsc's maps (for
    // node --enable-source-maps in a checkout; the deb ships no maps).
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: 'linked',
    logLevel: 'warning',
    metafile: true,
  });
  return Object.entries(r.metafile.outputs)
    .filter(([f]) => !f.endsWith('.map'))
    .map(([f, o]) => ({ file: f, bytes: o.bytes }));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    for (const o of await bundle()) process.stdout.write(`bundle: ${o.file} (${(o.bytes / 1024).toFixed(0)} KiB)\n`);
  } catch (e) {
    process.stderr.write(`bundle: ${e.message.split('\n')[0]}\n`);
    process.exitCode = 1;
  }
}
