import { bindLibc, EINVAL, ENODATA, ENOSYS, ENOTSUP, ENOTTY, ERANGE, FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, IOCTL_PROTO, cstr } from './libc.js';

/**
 * Extended attributes and inode flags on an open descriptor (the f* calls and FS_IOC_SETFLAGS),
 * for restore: it changes only the inode it holds open, never a path, so nothing is resolved
 * and no symlink can be followed. Called through koffi (src/scan/libc.ts) like src/scan/fsmeta.ts.
 */

interface NativeFd {
  flistxattr(fd: number, list: Buffer, size: number): number;
  fgetxattr(fd: number, name: Buffer, value: Buffer, size: number): number;
  fsetxattr(fd: number, name: Buffer, value: Buffer, size: number, flags: number): number;
  fremovexattr(fd: number, name: Buffer): number;
  ioctl(fd: number, req: number, arg: Buffer): number;
  errno(): number;
}

let native: NativeFd | null | undefined;

function load(): NativeFd | null {
  if (native === undefined)
    native = bindLibc<Omit<NativeFd, 'errno'>>({
      flistxattr: 'long flistxattr(int fd, void *list, size_t size)',
      fgetxattr: 'long fgetxattr(int fd, const void *name, void *value, size_t size)',
      fsetxattr: 'int fsetxattr(int fd, const void *name, const void *value, size_t size, int flags)',
      fremovexattr: 'int fremovexattr(int fd, const void *name)',
      ioctl: IOCTL_PROTO,
    });
  return native;
}

export { ENODATA, ENOTSUP };

/** An errno as a short text (`EPERM`), from Node's table. */
export function errnoName(e: number): string {
  const names: Record<number, string> = {
    1: 'EPERM (operation not permitted)',
    13: 'EACCES (permission denied)',
    22: 'EINVAL (invalid value)',
    28: 'ENOSPC (no space for the attribute)',
    30: 'EROFS (read-only file system)',
    61: 'ENODATA',
    95: 'EOPNOTSUPP (not supported by this file system or kernel)',
    7: 'E2BIG (value too large)',
  };
  return names[e] ?? `errno ${e}`;
}

export class FdMetaError extends Error {
  constructor(
    readonly errno: number,
    what: string,
  ) {
    super(`${what}: ${errnoName(errno)}`);
  }
}

export function fdMetaAvailable(): boolean {
  return load() !== null;
}

/** The names of the extended attributes on fd, as bytes; null when the file system has none. */
export function fdListXattrs(fd: number): Buffer[] | null {
  const n = load();
  if (!n) return null;
  let buf = Buffer.alloc(4096);
  let len = n.flistxattr(fd, buf, buf.length);
  if (len < 0 && n.errno() === ERANGE) {
    const need = n.flistxattr(fd, Buffer.alloc(0), 0);
    buf = Buffer.alloc(Math.max(need, 0) + 1024);
    len = n.flistxattr(fd, buf, buf.length);
  }
  if (len < 0) {
    const e = n.errno();
    if (e === ENOTSUP || e === ENOSYS) return null;
    throw new FdMetaError(e, 'listing extended attributes');
  }
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < len; i++) {
    if (buf[i] !== 0) continue;
    if (i > start) out.push(Buffer.from(buf.subarray(start, i)));
    start = i + 1;
  }
  return out;
}

/** One extended attribute's value on fd; null when it is not there. */
export function fdGetXattr(fd: number, name: Buffer): Buffer | null {
  const n = load();
  if (!n) return null;
  const val = Buffer.alloc(65536); // XATTR_SIZE_MAX
  const len = n.fgetxattr(fd, cstr(name), val, val.length);
  if (len < 0) {
    const e = n.errno();
    if (e === ENODATA) return null;
    throw new FdMetaError(e, `reading ${name.toString('utf8')}`);
  }
  return Buffer.from(val.subarray(0, len));
}

export function fdSetXattr(fd: number, name: Buffer, value: Buffer): void {
  const n = load();
  if (!n) throw new FdMetaError(ENOTSUP, `setting ${name.toString('utf8')}`);
  if (n.fsetxattr(fd, cstr(name), value, value.length, 0) < 0) throw new FdMetaError(n.errno(), `setting ${name.toString('utf8')}`);
}

export function fdRemoveXattr(fd: number, name: Buffer): void {
  const n = load();
  if (!n) throw new FdMetaError(ENOTSUP, `removing ${name.toString('utf8')}`);
  if (n.fremovexattr(fd, cstr(name)) < 0) {
    const e = n.errno();
    if (e !== ENODATA) throw new FdMetaError(e, `removing ${name.toString('utf8')}`);
  }
}

/** FS_IOC_GETFLAGS on fd; null when the file system has no flags. */
export function fdGetFlags(fd: number): number | null {
  const n = load();
  if (!n) return null;
  const b = Buffer.alloc(8);
  if (n.ioctl(fd, FS_IOC_GETFLAGS, b) < 0) {
    const e = n.errno();
    if (e === ENOTTY || e === ENOTSUP || e === EINVAL || e === ENOSYS) return null;
    throw new FdMetaError(e, 'reading inode flags');
  }
  return b.readInt32LE(0) >>> 0;
}

/** FS_IOC_SETFLAGS on fd (the whole value). */
export function fdSetFlags(fd: number, flags: number): void {
  const n = load();
  if (!n) throw new FdMetaError(ENOTSUP, 'setting inode flags');
  const b = Buffer.alloc(8);
  b.writeInt32LE(flags | 0, 0);
  if (n.ioctl(fd, FS_IOC_SETFLAGS, b) < 0) throw new FdMetaError(n.errno(), 'setting inode flags');
}
