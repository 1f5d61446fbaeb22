#!/usr/bin/env node
// Micro-benchmark: blake3-wasm vs Blake3Simd vs node:crypto sha256, one thread.
//   npm run bench:blake3 -- [--reps N] [--mib N]   (builds, then node bench/blake3-simd.mjs)
// Throughput: 256 KiB pieces over 512 MiB (Blake3Simd both ways: commit() of data already in
// inputBuffer(), as when fs.readSync reads straight into it, and update() of a JS Buffer, which
// copies). Small files: files/s for 4 KiB and 45 KiB inputs, each a whole hash (new hasher or
// reset, update, hex digest), as integ does per file.
// Times are process CPU time (user + system), best and median of --reps runs: on a shared,
// loaded machine wall time mostly measures the neighbours.
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { Blake3Simd, simdSupported } = await import(pathToFileURL(path.join(root, 'dist/src/scan/blake3-simd.js')).href);
const blake3 = createRequire(path.join(root, 'package.json'))('blake3-wasm');

const { values } = parseArgs({ options: { reps: { type: 'string', default: '7' }, mib: { type: 'string', default: '512' } } });
const REPS = Number(values.reps);
const TOTAL = Number(values.mib) * 1024 * 1024;
const PIECE = 256 * 1024;

if (!simdSupported()) {
  console.error('this runtime has no WebAssembly SIMD: Blake3Simd cannot run');
  process.exit(1);
}

function cpuSeconds(fn) {
  const t = process.cpuUsage();
  fn();
  const u = process.cpuUsage(t);
  return (u.user + u.system) / 1e6;
}

/** run fn REPS times (after one warm-up); rate = units / cpu seconds; best and median */
function measure(units, fn) {
  fn();
  const rates = [];
  for (let i = 0; i < REPS; i++) rates.push(units / cpuSeconds(fn));
  rates.sort((a, b) => a - b);
  return { best: rates[rates.length - 1], median: rates[Math.floor(rates.length / 2)] };
}

const piece = crypto.randomBytes(PIECE);
const simd = new Blake3Simd();
const pieces = TOTAL / PIECE;

const rows = [];
function row(name, unit, r) {
  rows.push([name, unit, r.best, r.median]);
}

// --- throughput
row(
  'blake3-wasm, 256 KiB pieces',
  'MB/s',
  measure(TOTAL / 1e6, () => {
    const h = blake3.createHash();
    for (let i = 0; i < pieces; i++) h.update(piece);
    h.digest('hex');
  }),
);
simd.inputBuffer().set(piece);
row(
  'Blake3Simd commit(), 256 KiB pieces',
  'MB/s',
  measure(TOTAL / 1e6, () => {
    for (let i = 0; i < pieces; i++) simd.commit(PIECE);
    simd.digestHex();
  }),
);
row(
  'Blake3Simd update(), 256 KiB pieces',
  'MB/s',
  measure(TOTAL / 1e6, () => {
    for (let i = 0; i < pieces; i++) simd.update(piece);
    simd.digestHex();
  }),
);
row(
  'sha256 (node:crypto), 256 KiB pieces',
  'MB/s',
  measure(TOTAL / 1e6, () => {
    const h = crypto.createHash('sha256');
    for (let i = 0; i < pieces; i++) h.update(piece);
    h.digest('hex');
  }),
);

// --- small files
for (const size of [4 * 1024, 45 * 1024]) {
  const files = Array.from({ length: 64 }, () => crypto.randomBytes(size));
  const n = Math.max(2000, Math.floor((64 * 1024 * 1024) / size));
  const label = `${size / 1024} KiB files`;
  row(
    `blake3-wasm, ${label}`,
    'files/s',
    measure(n, () => {
      for (let i = 0; i < n; i++) {
        const h = blake3.createHash();
        h.update(files[i & 63]);
        h.digest({ dispose: true }).toString('hex');
      }
    }),
  );
  row(
    `Blake3Simd commit(), ${label}`,
    'files/s',
    measure(n, () => {
      const input = simd.inputBuffer();
      for (let i = 0; i < n; i++) {
        input.set(files[i & 63]); // stands for fs.readSync into inputBuffer()
        simd.commit(size);
        simd.digestHex();
      }
    }),
  );
  row(
    `sha256 (node:crypto), ${label}`,
    'files/s',
    measure(n, () => {
      for (let i = 0; i < n; i++)
        crypto
          .createHash('sha256')
          .update(files[i & 63])
          .digest('hex');
    }),
  );
}

const fmt = (x) => Math.round(x).toLocaleString('en-US');
const w = Math.max(...rows.map((r) => r[0].length));
console.log(`node ${process.version}, one thread, CPU time, ${REPS} runs: best / median`);
for (const [name, unit, best, median] of rows) console.log(`${name.padEnd(w)}  ${fmt(best).padStart(9)} / ${fmt(median).padStart(9)} ${unit}`);
