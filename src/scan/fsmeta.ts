import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { isUtf8 } from 'node:buffer';
import { FLAGS_UNSUPPORTED, XATTRS_UNSUPPORTED, XATTR_INLINE_MAX } from '../core/fsattrs.js';

/**
 * Extended attributes and inode flags through libc, called with koffi (an FFI with prebuilt
 * binaries for Linux x64/arm64: no compiler at install time). Node has no API for either.
 *
 * Cost, per entry: one llistxattr (almost always returning 0 = none); one lgetxattr per name
 * only when names exist; for regular files one ioctl(FS_IOC_GETFLAGS) on the descriptor the
 * hash already opened; for directories open + ioctl + close. Symlinks are never followed
 * (the l* calls; flags are not read for symlinks, FIFOs, sockets or devices, which are never
 * opened). Where the platform or the file system has no support the result is "unsupported",
 * never an error.
 */

interface Native {
  llistxattr(path: Buffer, list: Buffer, size: number): number;
  lgetxattr(path: Buffer, name: Buffer, value: Buffer, size: number): number;
  ioctl(fd: number, req: number, arg: Buffer): number;
  errno(): number;
}

let native: Native | null | undefined;

function load(): Native | null {
  if (native !== undefined) return native;
  native = null;
  if (process.platform !== 'linux') return native;
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as typeof import('koffi');
    let lib: ReturnType<typeof koffi.load> | null = null;
    for (const name of ['libc.so.6', 'libc.musl-x86_64.so.1', 'libc.musl-aarch64.so.1', 'libc.so']) {
      try {
        lib = koffi.load(name);
        break;
      } catch {
        /* try the next name */
      }
    }
    if (!lib) return native;
    // ioctl is variadic in C; with one pointer argument the non-variadic call is the same on
    // x86_64 and aarch64 (the argument travels in the third integer register).
    native = {
      llistxattr: lib.func('long llistxattr(const void *path, void *list, size_t size)') as Native['llistxattr'],
      lgetxattr: lib.func('long lgetxattr(const void *path, const void *name, void *value, size_t size)') as Native['lgetxattr'],
      ioctl: lib.func('int ioctl(int fd, unsigned long request, void *arg)') as Native['ioctl'],
      errno: () => koffi.errno(),
    };
  } catch {
    native = null;
  }
  return native;
}

/** Whether extended attributes and flags can be read on this platform at all. */
export function fsmetaAvailable(): boolean {
  return load() !== null;
}

const ENOTSUP = 95;
const ENODATA = 61;
const ERANGE = 34;
const ENOTTY = 25;
const EINVAL = 22;
const ENOSYS = 38;
/** _IOR('f', 1, long) on 64-bit Linux (x86_64, aarch64). */
const FS_IOC_GETFLAGS = 0x80086601;

let listBuf = Buffer.allocUnsafe(4096);
const valBuf = Buffer.allocUnsafe(65536); // XATTR_SIZE_MAX
const flagBuf = Buffer.alloc(8);

const cstr = (b: Buffer): Buffer => {
  const out = Buffer.allocUnsafe(b.length + 1);
  b.copy(out);
  out[b.length] = 0;
  return out;
};

function nameText(b: Buffer): string {
  return isUtf8(b) ? b.toString('utf8') : `b64:${b.toString('base64')}`;
}

/**
 * Read every extended attribute of `real` (not following a symlink) in the stored encoding
 * (see core/fsattrs.ts): null when it cannot be read (the entry vanished, permission).
 */
export function readXattrs(real: Buffer): string | null {
  const n = load();
  if (!n) return null;
  const p = cstr(real);
  let len = n.llistxattr(p, listBuf, listBuf.length);
  if (len < 0 && n.errno() === ERANGE) {
    const need = n.llistxattr(p, Buffer.alloc(0), 0);
    if (need > 0) {
      listBuf = Buffer.allocUnsafe(need + 1024);
      len = n.llistxattr(p, listBuf, listBuf.length);
    }
  }
  if (len < 0) {
    const e = n.errno();
    return e === ENOTSUP || e === ENOSYS ? XATTRS_UNSUPPORTED : null;
  }
  if (len === 0) return '[]';
  const pairs: Array<[string, string]> = [];
  let start = 0;
  const list = Buffer.from(listBuf.subarray(0, len));
  for (let i = 0; i < len; i++) {
    if (list[i] !== 0) continue;
    const name = list.subarray(start, i);
    start = i + 1;
    if (name.length === 0) continue;
    const vlen = n.lgetxattr(p, cstr(name), valBuf, valBuf.length);
    if (vlen < 0) {
      const e = n.errno();
      if (e === ENODATA) continue; // removed between list and get
      pairs.push([nameText(name), `error:${e}`]);
      continue;
    }
    const v = valBuf.subarray(0, vlen);
    pairs.push([nameText(name), vlen > XATTR_INLINE_MAX ? `sha256:${crypto.createHash('sha256').update(v).digest('hex')}` : v.toString('base64')]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return JSON.stringify(pairs);
}

/**
 * FS_IOC_GETFLAGS on an open descriptor (a regular file or a directory opened O_RDONLY |
 * O_NOFOLLOW | O_NONBLOCK). -1 when the file system does not support flags, null when the
 * call fails otherwise.
 */
export function readFlags(fd: number): number | null {
  const n = load();
  if (!n) return null;
  flagBuf.fill(0);
  const r = n.ioctl(fd, FS_IOC_GETFLAGS, flagBuf);
  if (r < 0) {
    const e = n.errno();
    return e === ENOTTY || e === ENOTSUP || e === EINVAL || e === ENOSYS ? FLAGS_UNSUPPORTED : null;
  }
  return flagBuf.readInt32LE(0) >>> 0;
}
