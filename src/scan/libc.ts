import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * libc through koffi (an FFI with prebuilt binaries for Linux x64/arm64: no compiler at install
 * time), loaded once per thread and shared by the path-based readers (fsmeta.ts, in the hash
 * workers) and the descriptor-based ones (fsmeta-fd.ts, for restore). null off Linux or where
 * neither glibc nor musl can be loaded: callers then record "unsupported".
 */
export interface Libc {
  koffi: typeof import('koffi');
  lib: ReturnType<typeof import('koffi').load>;
}

let libc: Libc | null | undefined;

export function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (process.platform !== 'linux') return libc;
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as typeof import('koffi');
    for (const name of ['libc.so.6', 'libc.musl-x86_64.so.1', 'libc.musl-aarch64.so.1', 'libc.so']) {
      try {
        libc = { koffi, lib: koffi.load(name) };
        break;
      } catch {
        /* try the next name */
      }
    }
  } catch {
    libc = null;
  }
  return libc;
}

/**
 * Where one of integ's native libraries (tools/build-native.mjs) is: dist/native beside dist/bundle
 * (the CLI), beside dist/src (tsc's output, the tests' workers), or under dist/ from src/scan (the
 * tests' own thread). null where it was not built.
 */
export function nativeLibPath(name: string): string | null {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['../native', '../../native', '../../dist/native']) {
    const p = path.join(here, up, name);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/**
 * One of integ's native libraries loaded with koffi, or why it cannot be: not built (no C compiler
 * at build time) or koffi missing. A library that is there but fails to load throws.
 */
export function loadNativeLib(name: string): { lib: Libc['lib']; path: string } | { why: string } {
  const p = nativeLibPath(name);
  const koffi = loadLibc()?.koffi;
  if (!p || !koffi) return { why: p ? 'koffi did not load' : `${name} was not built (no C compiler at build time)` };
  return { lib: koffi.load(p), path: p };
}

/** Declare libc functions (prototypes in C syntax), or null when libc or a symbol is missing. */
export function bindLibc<T extends object>(decls: Record<keyof T, string>): (T & { errno(): number }) | null {
  const c = loadLibc();
  if (!c) return null;
  try {
    const out: Record<string, unknown> = { errno: () => c.koffi.errno() };
    for (const [k, proto] of Object.entries(decls)) out[k] = c.lib.func(proto as string);
    return out as T & { errno(): number };
  } catch {
    return null;
  }
}

export const ENOTSUP = 95;
export const ENODATA = 61;
export const ERANGE = 34;
export const ENOTTY = 25;
export const ENOSYS = 38;
export const EINVAL = 22;
/** _IOR('f', 1, long) / _IOW('f', 2, long) on 64-bit Linux (x86_64, aarch64). */
export const FS_IOC_GETFLAGS = 0x80086601;
export const FS_IOC_SETFLAGS = 0x40086602;
/**
 * ioctl is variadic in C; with one pointer argument the non-variadic call is the same on x86_64
 * and aarch64 (the argument travels in the third integer register).
 */
export const IOCTL_PROTO = 'int ioctl(int fd, unsigned long request, void *arg)';

/**
 * src[from, to) into dst at `at`, byte by byte: names are short, and Buffer#copy of part of a
 * buffer makes a Uint8Array view on every call.
 */
export function copyBytes(src: Buffer, from: number, to: number, dst: Buffer, at: number): void {
  for (let i = from; i < to; i++) dst[at++] = src[i]!;
}

/** A NUL-terminated copy of b[from..] (the whole byte string by default), for a C `const char *` argument. */
export function cstr(b: Buffer, from = 0): Buffer {
  const out = Buffer.allocUnsafe(b.length - from + 1);
  copyBytes(b, from, b.length, out, 0);
  out[b.length - from] = 0;
  return out;
}

/** O_CLOEXEC (0o2000000 on Linux; not in fs.constants): no descriptor leaks into a child. */
export const O_CLOEXEC = 0o2000000;

const ERRNO_CODES = new Map<number, string>(Object.entries(os.constants.errno).map(([k, v]) => [v, k]));

/** A failed libc call as the Error fs would throw: `code` (ENOENT …), negative `errno`, `syscall`. */
export function errnoError(errno: number, syscall: string, path?: string): Error & { code: string } {
  const code = ERRNO_CODES.get(errno) ?? 'EIO';
  const where = path === undefined ? '' : ` '${path}'`;
  return Object.assign(new Error(`${code}: ${syscall}${where} failed (errno ${errno})`), {
    code,
    errno: -errno,
    syscall,
    ...(path === undefined ? {} : { path }),
  });
}
