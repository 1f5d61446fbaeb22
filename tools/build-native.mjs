#!/usr/bin/env node
// Builds integ's optional native code: native/md5x16.c (MD5 of 32 files at a time in AVX-512) into
// dist/native/libinteg-md5x16.so, which src/scan/md5-native.ts loads with koffi.
//
// Optional on purpose: on a machine without a C compiler, or not x86-64, nothing is built and
// integ hashes dpkg's MD5s with its WebAssembly lanes instead (same digests, ~2.6x the CPU time).
// A compiler that is present but fails is an error: the build must not quietly lose the fast path.
// The .so has no dependency beyond libc and is built once, here: `npm run package:deb` ships it,
// so monitored hosts need no compiler.
//
//   node tools/build-native.mjs [--out FILE]   (part of npm run build; CC: the compiler, default cc)

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const NATIVE_OUT = 'dist/native/libinteg-md5x16.so';
const SRC = 'native/md5x16.c';

function main() {
  const at = process.argv.indexOf('--out');
  const out = at > 0 ? path.resolve(process.argv[at + 1] ?? '') : path.join(ROOT, NATIVE_OUT);
  const mtime = (f) => fs.statSync(f, { throwIfNoEntry: false })?.mtimeMs ?? -1;
  if (mtime(out) > mtime(path.join(ROOT, SRC)) && mtime(out) > mtime(fileURLToPath(import.meta.url))) return 0; // up to date
  fs.rmSync(out, { force: true });
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    process.stdout.write(`build-native: skipped on ${process.platform}-${process.arch} (MD5 lanes in WebAssembly)\n`);
    return 0;
  }
  const cc = process.env.CC || 'cc';
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  // -O3: the unrolled rounds keep the 16 message vectors in registers (-O2: ~20 % slower here)
  const r = spawnSync(cc, ['-O3', '-fPIC', '-shared', '-fvisibility=hidden', '-Wall', '-Wextra', '-o', tmp, path.join(ROOT, SRC)], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.error && r.error.code === 'ENOENT') {
    process.stdout.write(`build-native: no C compiler (${cc}): ${path.relative(ROOT, out)} not built, MD5 lanes in WebAssembly\n`);
    return 0;
  }
  if (r.error || r.status !== 0) {
    fs.rmSync(tmp, { force: true });
    process.stderr.write(`build-native: ${cc} failed on ${SRC}${r.error ? `: ${r.error.message}` : ''}\n`);
    return 1;
  }
  fs.renameSync(tmp, out);
  process.stdout.write(`build-native: ${path.relative(ROOT, out)} (${(fs.statSync(out).size / 1024).toFixed(0)} KiB)\n`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main();
