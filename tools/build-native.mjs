#!/usr/bin/env node
// Builds integ's optional native code into dist/native/, which the scan loads with koffi:
// - libinteg-md5x16.so from native/md5x16.c: MD5 of 32 files at a time in AVX-512 (src/scan/md5-native.ts);
// - libinteg-scan.so from native/scan.c and the official BLAKE3 C implementation, vendored in
//   native/blake3/ (its x86-64 assembly picks SSE2 to AVX-512 at run time): a batch of regular
//   files scanned in one call (src/scan/native-scan.ts).
//
// Optional on purpose: on a machine without a C compiler, or not x86-64, nothing is built and
// integ runs the same code in JavaScript and WebAssembly instead (same results, more CPU time).
// A compiler that is present but fails is an error: the build must not quietly lose the fast path.
// The libraries depend on libc only and are built once, here: `npm run package:deb` ships them,
// so monitored hosts need no compiler. Each exports only the integ_* functions its loader calls.
//
//   node tools/build-native.mjs [--out-dir DIR]   (part of npm run build; CC: the compiler, default cc)

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const NATIVE_DIR = 'dist/native';
const B3 = 'native/blake3/';
export const LIBS = [
  // -O3: the unrolled rounds keep the 16 message vectors in registers (-O2: ~20 % slower here)
  { name: 'libinteg-md5x16.so', srcs: ['native/md5x16.c'], deps: [], exports: 'integ_*', without: 'MD5 lanes in WebAssembly' },
  {
    name: 'libinteg-scan.so',
    // md5x16.c too: the scan's MD5 lanes (its functions stay inside this library)
    srcs: [
      'native/scan.c',
      'native/md5x16.c',
      ...['blake3.c', 'blake3_dispatch.c', 'blake3_portable.c'].map((f) => B3 + f),
      ...['sse2', 'sse41', 'avx2', 'avx512'].map((s) => `${B3}blake3_${s}_x86-64_unix.S`),
    ],
    deps: [`${B3}blake3.h`, `${B3}blake3_impl.h`],
    exports: 'integ_scan; integ_scan_lanes; integ_blake3_hex',
    without: 'files scanned in JavaScript',
  },
];

function main() {
  const at = process.argv.indexOf('--out-dir');
  const dir = at > 0 ? path.resolve(process.argv[at + 1] ?? '') : path.join(ROOT, NATIVE_DIR);
  const mtime = (f) => fs.statSync(f, { throwIfNoEntry: false })?.mtimeMs ?? -1;
  const self = fileURLToPath(import.meta.url);
  const stale = LIBS.filter((l) => {
    const out = mtime(path.join(dir, l.name));
    return [...l.srcs, ...l.deps].some((s) => mtime(path.join(ROOT, s)) >= out) || mtime(self) >= out;
  });
  if (stale.length === 0) return 0; // up to date
  for (const l of stale) fs.rmSync(path.join(dir, l.name), { force: true });
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    process.stdout.write(`build-native: skipped on ${process.platform}-${process.arch} (${LIBS.map((l) => l.without).join(', ')})\n`);
    return 0;
  }
  const cc = process.env.CC || 'cc';
  fs.mkdirSync(dir, { recursive: true });
  for (const l of stale) {
    const out = path.join(dir, l.name);
    const tmp = `${out}.${process.pid}.tmp`;
    const exports = `${tmp}.map`;
    fs.writeFileSync(exports, `{ global: ${l.exports}; local: *; };\n`);
    const r = spawnSync(
      cc,
      [
        '-O3',
        '-fPIC',
        '-shared',
        '-fvisibility=hidden',
        '-Wall',
        '-Wextra',
        `-Wl,--version-script=${exports}`,
        '-o',
        tmp,
        ...l.srcs.map((s) => path.join(ROOT, s)),
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    fs.rmSync(exports, { force: true });
    if (r.error && r.error.code === 'ENOENT') {
      process.stdout.write(`build-native: no C compiler (${cc}): ${path.relative(ROOT, dir)} not built (${LIBS.map((x) => x.without).join(', ')})\n`);
      return 0;
    }
    if (r.error || r.status !== 0) {
      fs.rmSync(tmp, { force: true });
      process.stderr.write(`build-native: ${cc} failed on ${l.srcs[0]}${r.error ? `: ${r.error.message}` : ''}\n`);
      return 1;
    }
    fs.renameSync(tmp, out);
    process.stdout.write(`build-native: ${path.relative(ROOT, out)} (${(fs.statSync(out).size / 1024).toFixed(0)} KiB)\n`);
  }
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main();
