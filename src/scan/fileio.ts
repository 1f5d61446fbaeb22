import fs from 'node:fs';
import { bindLibc, EINVAL, ENOSYS, ENOTSUP, errnoError, loadLibc, O_CLOEXEC } from './libc.js';

/**
 * The hash workers' per-file system calls (statx, open, read, close) through koffi, into
 * buffers reused file after file. Node's fs does the same calls with more around them: a
 * BigIntStats object of 18 BigInts and 4 Dates per stat, argument checks, a binding layer.
 * Measured on the 2-vCPU VM here, per call: lstat 4.3 -> 2.4 us, fstat 3.3 -> 1.9 us, open +
 * close 6.1 -> 4.6 us, a 4 KiB read 3.2 -> 2.3 us; with ~7 calls a file that is a tenth of a
 * hash worker's time on /usr. Where koffi or statx is missing, fs gives the same results.
 *
 * Errors are thrown like fs throws them (an Error with code, errno, syscall), so callers and
 * their messages do not change.
 */

/** What a scan keeps of a stat: numbers for the small fields, BigInt where 53 bits may not do. */
export interface FileStat {
  /** st_mode: type and permission bits */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  /** the device, encoded like glibc's makedev (what Node's st.dev holds) */
  dev: number;
  /**
   * ino, size and mtime again as plain numbers (seconds and nanoseconds for mtime), for
   * fstatSameFile's comparison, which then allocates nothing. Exact where ino and size are below
   * 2^53 (NaN otherwise, and the comparison uses the BigInts).
   */
  inoN: number;
  sizeN: number;
  mtimeSec: number;
  mtimeNsec: number;
}

const MAX_EXACT = Number.MAX_SAFE_INTEGER;
const exact = (v: bigint): number => (v >= 0n && v <= 9007199254740991n ? Number(v) : Number.NaN);
/** u64 at `off` of the statx buffer as a number where it is exact, else NaN */
function u64(off: number): number {
  const v = sx.readUInt32LE(off + 4) * 0x1_0000_0000 + sx.readUInt32LE(off);
  return v <= MAX_EXACT ? v : Number.NaN;
}

interface Native {
  statx(dirfd: number, path: Buffer, flags: number, mask: number, buf: Buffer): number;
  openat(dirfd: number, path: Buffer, flags: number): number;
  read(fd: number, buf: Buffer, count: number): number;
  readlinkat(dirfd: number, path: Buffer, buf: Buffer, size: number): number;
  close(fd: number): number;
  errno(): number;
}

let native: Native | null | undefined;
let forced: 'node' | null = null;

function load(): Native | null {
  if (forced === 'node') return null;
  if (native === undefined) {
    native = bindLibc<Omit<Native, 'errno'>>({
      statx: 'int statx(int dirfd, const void *path, int flags, unsigned int mask, void *buf)',
      openat: 'int openat(int dirfd, const void *path, int flags)',
      read: 'long read(int fd, void *buf, size_t count)',
      readlinkat: 'long readlinkat(int dirfd, const void *path, void *buf, size_t bufsiz)',
      close: 'int close(int fd)',
    });
    // statx needs Linux 4.11 and glibc 2.28: ask once, fall back to fs where it is refused
    if (native && native.statx(AT_FDCWD, Buffer.from('/\0'), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, sx) !== 0) native = null;
  }
  return native;
}

/** Tests: use fs even where koffi is available (null: back to the default). */
export function forceFileIo(which: 'node' | null): void {
  forced = which;
}

/** Which implementation the scan uses here. */
export function fileIoKind(): 'koffi' | 'fs' {
  return load() ? 'koffi' : 'fs';
}

/** "relative to the working directory": with an absolute path, plain path-based calls */
export const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_EMPTY_PATH = 0x1000;
const STATX_BASIC_STATS = 0x7ff;
const EINTR = 4;
const EMPTY = Buffer.from('\0');
/** struct statx is 256 bytes */
const sx = Buffer.alloc(256);

/** `cpath` as text for an error message (without its NUL) */
const pathOf = (cpath: Buffer): string => cpath.subarray(0, cpath.length - 1).toString();

/** glibc's makedev, as a number (what Node reports as st.dev) */
function makedev(major: number, minor: number): number {
  if (major < 0x1000 && minor < 0x100) return major * 256 + minor;
  return Number(((BigInt(major) & 0xfffff000n) << 32n) | ((BigInt(major) & 0xfffn) << 8n) | ((BigInt(minor) & 0xffffff00n) << 12n) | (BigInt(minor) & 0xffn));
}

/**
 * Nanoseconds since the epoch as a BigInt, with as few BigInts made as may be (a scan makes
 * two a file): `sec * 1e9` is exact as a double while |sec| < 2^53 / 1953125 (until 2116), and
 * many files share a timestamp (a package's files keep its build time), so the last value is reused.
 */
function nsOf(sec: number, nsec: number, last: { sec: number; nsec: number; ns: bigint }): bigint {
  if (sec === last.sec && nsec === last.nsec) return last.ns;
  let ns: bigint;
  if (Math.abs(sec) < 4_000_000_000) {
    ns = BigInt(sec * 1e9);
    if (nsec !== 0) ns += BigInt(nsec);
  } else ns = BigInt(sec) * 1_000_000_000n + BigInt(nsec);
  last.sec = sec;
  last.nsec = nsec;
  last.ns = ns;
  return ns;
}
const lastM = { sec: 0, nsec: 0, ns: 0n };
const lastC = { sec: 0, nsec: 0, ns: 0n };

function fromStatx(): FileStat {
  // struct statx: nlink @16, uid @20, gid @24, mode @28 (u16), ino @32, size @40,
  // ctime @96 and mtime @112 (i64 seconds, u32 nanoseconds), dev_major @136, dev_minor @140
  const inoN = u64(32);
  const sizeN = u64(40);
  const mtimeSec = sx.readInt32LE(116) * 0x1_0000_0000 + sx.readUInt32LE(112);
  const mtimeNsec = sx.readUInt32LE(120);
  return {
    mode: sx.readUInt16LE(28),
    uid: sx.readUInt32LE(20),
    gid: sx.readUInt32LE(24),
    nlink: sx.readUInt32LE(16),
    size: Number.isNaN(sizeN) ? sx.readBigUInt64LE(40) : BigInt(sizeN),
    mtimeNs: nsOf(mtimeSec, mtimeNsec, lastM),
    ctimeNs: nsOf(sx.readInt32LE(100) * 0x1_0000_0000 + sx.readUInt32LE(96), sx.readUInt32LE(104), lastC),
    ino: Number.isNaN(inoN) ? sx.readBigUInt64LE(32) : BigInt(inoN),
    dev: makedev(sx.readUInt32LE(136), sx.readUInt32LE(140)),
    inoN,
    sizeN,
    mtimeSec,
    mtimeNsec,
  };
}

/** A Node BigIntStats as a FileStat (the fs fallback, and tests that stat with fs). */
export function fileStatOf(st: fs.BigIntStats): FileStat {
  return {
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    nlink: Number(st.nlink),
    size: st.size,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    ino: st.ino,
    dev: Number(st.dev),
    inoN: exact(st.ino),
    sizeN: exact(st.size),
    mtimeSec: Number(st.mtimeNs / 1_000_000_000n - (st.mtimeNs % 1_000_000_000n < 0n ? 1n : 0n)),
    mtimeNsec: Number(((st.mtimeNs % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n),
  };
}

/**
 * lstat: never follows a final symlink. `cpath` is the path with a trailing NUL (libc.ts cstr);
 * with `dirfd`, a name relative to that open directory (koffi only: see atSupported).
 */
export function lstatFile(cpath: Buffer, dirfd = AT_FDCWD): FileStat {
  const n = load();
  if (!n) return fileStatOf(fs.lstatSync(cpath.subarray(0, cpath.length - 1), { bigint: true }));
  if (n.statx(dirfd, cpath, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, sx) !== 0) throw errnoError(n.errno(), 'lstat', pathOf(cpath));
  return fromStatx();
}

/**
 * Whether lstatFile and openFile take a directory descriptor here. Relative to a folder the walk
 * holds open, a file is found by one lookup instead of one per path component, and a folder of
 * its path swapped for a symlink meanwhile cannot redirect the read.
 */
export function atSupported(): boolean {
  return load() !== null;
}

/** fstat of an open descriptor. */
export function fstatFile(fd: number): FileStat {
  const n = load();
  if (!n) return fileStatOf(fs.fstatSync(fd, { bigint: true }));
  if (n.statx(fd, EMPTY, AT_EMPTY_PATH, STATX_BASIC_STATS, sx) !== 0) throw errnoError(n.errno(), 'fstat');
  return fromStatx();
}

/** fstatSameFile: still the regular file lstat saw, with its size and mtime */
export const SAME = 0;
/** fstatSameFile: the same file, but its size or mtime changed */
export const CHANGED = 1;
/** fstatSameFile: not that regular file any more (another inode or device, or not regular) */
export const OTHER = 2;

/**
 * The check after a read: fstat of the descriptor compared with the lstat `st` made before it
 * (regular file, inode and device; then size and mtime). The same answer as comparing two
 * FileStats, without building the second: with koffi the fields are compared where statx put
 * them, as numbers, and nothing is allocated (a BigInt comparison only for values from 2^53).
 */
export function fstatSameFile(fd: number, st: FileStat): number {
  const n = load();
  if (!n) {
    const now = fstatFile(fd);
    if ((now.mode & 0o170000) !== 0o100000 || now.ino !== st.ino || now.dev !== st.dev) return OTHER;
    return now.size === st.size && now.mtimeNs === st.mtimeNs ? SAME : CHANGED;
  }
  if (n.statx(fd, EMPTY, AT_EMPTY_PATH, STATX_BASIC_STATS, sx) !== 0) throw errnoError(n.errno(), 'fstat');
  if ((sx.readUInt16LE(28) & 0o170000) !== 0o100000) return OTHER;
  const ino = u64(32);
  if (Number.isNaN(ino) || Number.isNaN(st.inoN) ? sx.readBigUInt64LE(32) !== st.ino : ino !== st.inoN) return OTHER;
  if (makedev(sx.readUInt32LE(136), sx.readUInt32LE(140)) !== st.dev) return OTHER;
  const size = u64(40);
  if (Number.isNaN(size) || Number.isNaN(st.sizeN) ? sx.readBigUInt64LE(40) !== st.size : size !== st.sizeN) return CHANGED;
  const sec = sx.readInt32LE(116) * 0x1_0000_0000 + sx.readUInt32LE(112);
  return sec === st.mtimeSec && sx.readUInt32LE(120) === st.mtimeNsec ? SAME : CHANGED;
}

/** open(2) with these flags (no mode: never creates); with `dirfd`, openat(2) of a name in that folder. */
export function openFile(cpath: Buffer, flags: number, dirfd = AT_FDCWD): number {
  const n = load();
  if (!n) return fs.openSync(cpath.subarray(0, cpath.length - 1), flags);
  for (;;) {
    const fd = n.openat(dirfd, cpath, flags | O_CLOEXEC);
    if (fd >= 0) return fd;
    const e = n.errno();
    if (e !== EINTR) throw errnoError(e, 'open', pathOf(cpath));
  }
}

/** read(2) at the current offset into buf[0, len): the byte count, 0 at the end. */
export function readFile(fd: number, buf: Buffer, len: number): number {
  const n = load();
  if (!n) return fs.readSync(fd, buf, 0, len, null);
  for (;;) {
    const r = n.read(fd, buf, len);
    if (r >= 0) return r;
    const e = n.errno();
    if (e !== EINTR) throw errnoError(e, 'read');
  }
}

interface NoWait {
  preadv2(fd: number, iov: Buffer, iovcnt: number, offset: number, flags: number): number;
  errno(): number;
  address(b: Buffer): bigint;
}
let noWait: NoWait | null | undefined;
function loadNoWait(): NoWait | null {
  if (!load()) return null; // fs's reads (no koffi, or a test asked for them)
  if (noWait === undefined) {
    // preadv2 needs glibc 2.26; where it is missing, no read is ever asked not to wait
    const f = bindLibc<{ preadv2: NoWait['preadv2'] }>({ preadv2: 'long preadv2(int fd, void *iov, int iovcnt, int64_t offset, int flags)' });
    const koffi = loadLibc()?.koffi;
    noWait = f && koffi ? { ...f, address: (b) => koffi.address(b) as bigint } : null;
  }
  return noWait;
}
/** One struct iovec {base, len}, pointing into the buffer last read into (the address is taken once per buffer). */
const iov = Buffer.alloc(16);
let iovBuf: Buffer | null = null;
const RWF_NOWAIT = 8;
const EAGAIN = 11;
/** Devices whose file system refused RWF_NOWAIT: not asked again. */
const noWaitRefused = new Set<number>();

/** readNoWait: the data is not in the page cache (nothing was read). */
export const NOT_CACHED = -1;

/**
 * A read(2) at the current offset that does not wait for the disk (preadv2 with RWF_NOWAIT): the
 * byte count (fewer than asked when only the start is cached, 0 at the end), or NOT_CACHED. null
 * where that cannot be asked (no koffi or preadv2, or the file system of device `dev` refuses it):
 * nothing was read then. The scan's first read of each file, so that whether the cache is cold
 * is known from the kernel, not guessed from how long reads took.
 */
export function readNoWait(fd: number, buf: Buffer, len: number, dev: number): number | null {
  const n = loadNoWait();
  if (!n || noWaitRefused.has(dev)) return null;
  if (iovBuf !== buf) {
    iov.writeBigUInt64LE(n.address(buf), 0);
    iovBuf = buf;
  }
  iov.writeUInt32LE(len >>> 0, 8); // len < 2^32: the upper half stays 0
  for (;;) {
    const r = n.preadv2(fd, iov, 1, -1, RWF_NOWAIT);
    if (r >= 0) return r;
    const e = n.errno();
    if (e === EAGAIN) return NOT_CACHED;
    if (e === EINTR) continue;
    if (e === ENOTSUP || e === EINVAL || e === ENOSYS) {
      // the file system refuses it, unless this is not a regular file of that device at all (a
      // FIFO swapped in for the file says ENOTSUP too): the caller's plain read then tells the race
      try {
        const st = fstatFile(fd);
        if ((st.mode & 0o170000) === 0o100000 && st.dev === dev) noWaitRefused.add(dev);
      } catch {
        // not known: ask again next time
      }
      return null;
    }
    throw errnoError(e, 'read');
  }
}

const linkBuf = Buffer.alloc(4096);

/** readlink(2) of a symlink (readlinkat with `dirfd`): its target's bytes. */
export function readLink(cpath: Buffer, dirfd = AT_FDCWD): Buffer {
  const n = load();
  if (!n) return fs.readlinkSync(cpath.subarray(0, cpath.length - 1), { encoding: 'buffer' });
  for (let b = linkBuf; ; ) {
    const r = n.readlinkat(dirfd, cpath, b, b.length);
    if (r < 0) {
      const e = n.errno();
      if (e === EINTR) continue;
      throw errnoError(e, 'readlink', pathOf(cpath));
    }
    if (r < b.length) return Buffer.from(b.subarray(0, r));
    b = Buffer.alloc(b.length * 2); // the target may fill the buffer: ask again with room to spare
  }
}

export function closeFile(fd: number): void {
  const n = load();
  if (!n) fs.closeSync(fd);
  else n.close(fd);
}

const READ_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
// O_NOATIME keeps reads from disturbing access times (evidence); only the owner or root may use it.
let noatime: number = (fs.constants as Record<string, number>).O_NOATIME ?? 0;

/** The flags openForRead opens with now (O_NOATIME until this thread was refused it). */
export function readOpenFlags(): number {
  return READ_FLAGS | noatime;
}

/**
 * open(2) of a file to read its content: never through a symlink, never blocking (a FIFO swapped
 * in), and with O_NOATIME where this thread may use it. Throws what open throws.
 */
export function openForRead(cpath: Buffer, dirfd = AT_FDCWD): number {
  try {
    return openFile(cpath, READ_FLAGS | noatime, dirfd);
  } catch (e) {
    if (noatime && (e as NodeJS.ErrnoException).code === 'EPERM') {
      noatime = 0; // not the owner: fall back for the rest of this thread's life
      return openForRead(cpath, dirfd);
    }
    throw e;
  }
}

/** A failure as a result's code and one-line message (errno codes get plain words). */
export function errInfo(e: unknown): { code: string; message: string } {
  const err = e as NodeJS.ErrnoException;
  const code = err.code ?? 'EIO';
  const messages: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOENT: 'vanished while scanning',
    ELOOP: 'replaced by a symbolic link while scanning',
    EIO: 'I/O error',
    ENAMETOOLONG: 'path too long',
  };
  return { code, message: messages[code] ?? err.message ?? String(e) };
}
