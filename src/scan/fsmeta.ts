import crypto from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { FLAGS_UNSUPPORTED, XATTRS_UNSUPPORTED, XATTR_INLINE_MAX } from '../core/fsattrs.js';
import { bindLibc, EINVAL, ENODATA, ENOSYS, ENOTSUP, ENOTTY, ERANGE, FS_IOC_GETFLAGS, IOCTL_PROTO, cstr } from './libc.js';

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
  flistxattr(fd: number, list: Buffer, size: number): number;
  fgetxattr(fd: number, name: Buffer, value: Buffer, size: number): number;
  ioctl(fd: number, req: number, arg: Buffer): number;
  fadvise(fd: number, offset: number, len: number, advice: number): number;
  errno(): number;
}

let native: Native | null | undefined;

function load(): Native | null {
  if (native === undefined)
    native = bindLibc<Omit<Native, 'errno'>>({
      llistxattr: 'long llistxattr(const void *path, void *list, size_t size)',
      lgetxattr: 'long lgetxattr(const void *path, const void *name, void *value, size_t size)',
      flistxattr: 'long flistxattr(int fd, void *list, size_t size)',
      fgetxattr: 'long fgetxattr(int fd, const void *name, void *value, size_t size)',
      ioctl: IOCTL_PROTO,
      fadvise: 'int posix_fadvise(int fd, int64_t offset, int64_t len, int advice)',
    });
  return native;
}

/** Whether extended attributes and flags can be read on this platform at all. */
export function fsmetaAvailable(): boolean {
  return load() !== null;
}

let listBuf = Buffer.allocUnsafe(4096);
const valBuf = Buffer.allocUnsafe(65536); // XATTR_SIZE_MAX
const flagBuf = Buffer.alloc(8);

function nameText(b: Buffer): string {
  return isUtf8(b) ? b.toString('utf8') : `b64:${b.toString('base64')}`;
}

/**
 * Read every extended attribute of `real` (not following a symlink) in the stored encoding
 * (see core/fsattrs.ts): null when it cannot be read (the entry vanished, permission).
 * `cpath`: the same path NUL-terminated, where the caller has it already.
 */
export function readXattrs(real: Buffer, cpath?: Buffer): string | null {
  const n = load();
  if (!n) return null;
  const p = cpath ?? cstr(real);
  // nearly every entry has none: answered without the closures below
  const len = n.llistxattr(p, listBuf, listBuf.length);
  if (len === 0) return '[]';
  return xattrsVia(
    n,
    len,
    (list, size) => n.llistxattr(p, list, size),
    (name, value, size) => n.lgetxattr(p, name, value, size),
  );
}

/** readXattrs through an open descriptor (a regular file the scan has open: no path lookup). */
export function readXattrsFd(fd: number): string | null {
  const n = load();
  if (!n) return null;
  const len = n.flistxattr(fd, listBuf, listBuf.length);
  if (len === 0) return '[]';
  return xattrsVia(
    n,
    len,
    (list, size) => n.flistxattr(fd, list, size),
    (name, value, size) => n.fgetxattr(fd, name, value, size),
  );
}

/** `first`: what the caller's list call into listBuf answered (errno still that call's). */
function xattrsVia(
  n: Native,
  first: number,
  list: (buf: Buffer, size: number) => number,
  get: (name: Buffer, value: Buffer, size: number) => number,
): string | null {
  let len = first;
  if (len < 0 && n.errno() === ERANGE) {
    const need = list(Buffer.alloc(0), 0);
    if (need > 0) {
      listBuf = Buffer.allocUnsafe(need + 1024);
      len = list(listBuf, listBuf.length);
    }
  }
  if (len < 0) {
    const e = n.errno();
    return e === ENOTSUP || e === ENOSYS ? XATTRS_UNSUPPORTED : null;
  }
  if (len === 0) return '[]';
  const pairs: Array<[string, string]> = [];
  let start = 0;
  const names = Buffer.from(listBuf.subarray(0, len));
  for (let i = 0; i < len; i++) {
    if (names[i] !== 0) continue;
    const name = names.subarray(start, i);
    start = i + 1;
    if (name.length === 0) continue;
    const vlen = get(cstr(name), valBuf, valBuf.length);
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

const POSIX_FADV_WILLNEED = 3;

/**
 * Ask the kernel to start reading the first `len` bytes of an open file into the page cache
 * now (posix_fadvise WILLNEED: asynchronous readahead; returns at once when the pages are
 * cached already). Issued for a batch of files before the first is read, it keeps several
 * reads in flight on a cold cache, where one synchronous read at a time leaves the disk idle.
 * A hint only: failures are ignored.
 */
export function adviseWillNeed(fd: number, len: number): void {
  const n = load();
  if (n && len > 0) n.fadvise(fd, 0, len, POSIX_FADV_WILLNEED);
}
