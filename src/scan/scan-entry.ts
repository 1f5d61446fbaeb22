import fs from 'node:fs';
import crypto from 'node:crypto';
import { createBlake3 } from './blake3.js';
import { Blake3Simd, simdSupported } from './blake3-simd.js';
import { type NativeBlake3, threadNativeBlake3 } from './blake3-native.js';
import type { EntryRecord, EntryType, ExtraAlgo, HashAlgo, Observed } from '../core/types.js';
import { adviseWillNeed, readFlags, readXattrs } from './fsmeta.js';

/** Work for one in-scope path. Paths travel as bytes; the worker never sees a lossy string. */
export interface ScanJob {
  id: number;
  /** path as the policy names it */
  path: Buffer;
  /** path to read: --root prefix + path */
  real: Buffer;
  algos: HashAlgo[];
  /** `growing` rule: hash also the first `prefixLen` bytes (the baseline's size) and tolerate growth while reading */
  growing: boolean;
  prefixLen: number | null;
  /** read extended attributes (llistxattr, then lgetxattr only for names that exist) */
  xattrs?: boolean;
  /** read inode flags (FS_IOC_GETFLAGS) of regular files and directories */
  flags?: boolean;
  /** further digests to compute in the same read (IOC feeds, package digests); not stored */
  extra?: ExtraAlgo[];
}

export type ScanResult =
  | { id: number; ok: true; rec: Observed }
  /** rec carries what lstat told when only the content could not be read */
  | { id: number; ok: false; code: string; message: string; rec: Observed | null };

interface IncrementalHash {
  update(b: Buffer): void;
  /** digest so far, without ending the hash */
  peek(): string;
  digest(): string;
}

function createHasher(algo: HashAlgo | ExtraAlgo): IncrementalHash {
  if (algo !== 'blake3') {
    const h = crypto.createHash(algo);
    return { update: (b) => h.update(b), peek: () => h.copy().digest('hex'), digest: () => h.digest('hex') };
  }
  const h = createBlake3();
  return {
    update: (b) => void h.update(b),
    peek: () => h.digest({ dispose: false }).toString('hex'),
    digest: () => h.digest({ dispose: true }).toString('hex'),
  };
}

let simdInstance: Blake3Simd | null | undefined;
/** One SIMD hasher per thread, reused file after file (reset at the start of each). */
function threadSimd(): Blake3Simd | null {
  if (simdInstance === undefined) simdInstance = simdSupported() ? new Blake3Simd() : null;
  return simdInstance;
}

function simdHasher(h: Blake3Simd): IncrementalHash {
  return { update: (b) => h.update(b), peek: () => h.peekHex(), digest: () => h.digestHex() };
}

function nativeHasher(h: NativeBlake3): IncrementalHash {
  h.reset();
  return { update: (b) => void h.update(b), peek: () => h.digest('hex'), digest: () => h.digest('hex') };
}

/**
 * Files of at least this many bytes are hashed by the native BLAKE3 where it loads: below it the
 * N-API call costs more than the wasm hasher's whole work (measured here: 1 KiB 1.7 us native vs
 * 1.3 us wasm, 2 KiB 1.8 vs 2.7, 64 KiB 11 vs 34).
 */
export const NATIVE_MIN = 2048;

const S_IFMT = 0o170000;
function typeOfMode(mode: number): EntryType {
  switch (mode & S_IFMT) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'dir';
    case 0o120000:
      return 'symlink';
    case 0o010000:
      return 'fifo';
    case 0o140000:
      return 'socket';
    case 0o020000:
      return 'chardev';
    case 0o060000:
      return 'blockdev';
    default:
      return 'unknown';
  }
}

export function recordFromStat(path: Buffer, st: fs.BigIntStats): EntryRecord {
  const mode = Number(st.mode);
  return {
    path,
    type: typeOfMode(mode),
    mode: mode & 0o7777,
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: st.size,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    inode: st.ino,
    nlink: Number(st.nlink),
    target: null,
    blake3: null,
    sha256: null,
  };
}

const C = fs.constants;
const BASE_FLAGS = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;
// O_NOATIME keeps reads from disturbing access times (evidence); only the owner or root may use it.
let noatime: number = (C as Record<string, number>).O_NOATIME ?? 0;

function errInfo(e: unknown): { code: string; message: string } {
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

/**
 * Scan one path: lstat; for a symlink read its target; for a regular file open it with
 * O_NOFOLLOW|O_NONBLOCK, check with fstat that it is still the file lstat saw, and stream it
 * through the hashers. FIFOs, sockets and devices are recorded by metadata and never opened.
 * Never throws: every failure becomes a result with an errno-style code.
 */
export function scanEntry(job: ScanJob, buf: Buffer): ScanResult {
  let st: fs.BigIntStats;
  try {
    st = fs.lstatSync(job.real, { bigint: true });
  } catch (e) {
    return { id: job.id, ok: false, ...errInfo(e), rec: null };
  }
  return scanStat(job, st, buf, null);
}

/** How far ahead of the read a file is advised: the kernel's own readahead takes over after. */
const ADVISE_MAX = 4 * 1024 * 1024;

/**
 * Scan a batch: first lstat every entry and open every regular file, advising the kernel to
 * read each one's start now (asynchronous readahead), then hash them one by one. On a warm
 * cache the advice returns at once; on a cold one the disk gets a whole batch of requests
 * instead of one synchronous read at a time. Each file is still checked (fstat on the
 * descriptor) to be the one lstat saw before it is hashed.
 */
export function scanBatch(jobs: readonly ScanJob[], buf: Buffer): ScanResult[] {
  const t0 = process.hrtime.bigint();
  const advise = adviseBatches > 0;
  let files = 0;
  let bytes = 0;
  const pre: Array<{ st: fs.BigIntStats; open: Opened | null } | { err: unknown }> = new Array(jobs.length);
  for (let i = 0; i < jobs.length; i++) {
    const job = jobs[i]!;
    try {
      const st = fs.lstatSync(job.real, { bigint: true });
      let open: Opened | null = null;
      if ((Number(st.mode) & S_IFMT) === 0o100000) {
        open = openFile(job.real);
        const size = Number(st.size);
        files++;
        bytes += size;
        if (advise && 'fd' in open) adviseWillNeed(open.fd, Math.min(size, ADVISE_MAX));
      }
      pre[i] = { st, open };
    } catch (e) {
      pre[i] = { err: e };
    }
  }
  const out = new Array<ScanResult>(jobs.length);
  for (let i = 0; i < jobs.length; i++) {
    const job = jobs[i]!;
    const p = pre[i]!;
    if ('err' in p) {
      out[i] = { id: job.id, ok: false, ...errInfo(p.err), rec: null };
      continue;
    }
    try {
      out[i] = scanStat(job, p.st, buf, p.open);
    } finally {
      // scanStat closes what it uses; a descriptor it never reached (a throw) is closed here.
      if (p.open && 'fd' in p.open && !p.open.closed) fs.closeSync(p.open.fd);
    }
  }
  // The advice costs a call per file and only pays when reads would block: keep it on for a
  // while after a batch that took much longer than cached data takes (~1 ms + 20 us a file +
  // 1.5 ns a byte here, where cached batches take a third of that), off otherwise.
  const slow = Number(process.hrtime.bigint() - t0) > 1e6 + files * 2e4 + bytes * 1.5;
  adviseBatches = slow ? ADVISE_AFTER_SLOW : Math.max(0, adviseBatches - 1);
  return out;
}

/** Batches advised after one that looked uncached (and at the start: a cold run gains most there). */
const ADVISE_AFTER_SLOW = 16;
let adviseBatches = ADVISE_AFTER_SLOW;

/** A regular file opened ahead of its scan, or why it could not be. */
type Opened = { fd: number; closed: boolean } | { err: unknown };

function openFile(real: Buffer): Opened {
  try {
    return { fd: fs.openSync(real, BASE_FLAGS | noatime), closed: false };
  } catch (e) {
    if (noatime && (e as NodeJS.ErrnoException).code === 'EPERM') {
      noatime = 0; // not the owner: fall back for the rest of this thread's life
      return openFile(real);
    }
    return { err: e };
  }
}

function scanStat(job: ScanJob, st: fs.BigIntStats, buf: Buffer, opened: Opened | null): ScanResult {
  const rec: Observed = recordFromStat(job.path, st);
  if (job.xattrs) rec.xattrs = readXattrs(job.real);
  if (job.flags && rec.type === 'dir') rec.flags = dirFlags(job.real, st);
  if (rec.type === 'symlink') return readSymlink(job, rec);
  if (rec.type !== 'file') return { id: job.id, ok: true, rec };
  return hashFile(job, st, rec, buf, opened ?? openFile(job.real));
}

/**
 * Read the target of a symlink that lstat described. If the path was replaced by something
 * else meanwhile, readlink fails with EINVAL: that is the documented ERACE, not an I/O error.
 * Exported for the race tests.
 */
export function readSymlink(job: ScanJob, rec: Observed): ScanResult {
  try {
    rec.target = fs.readlinkSync(job.real, { encoding: 'buffer' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EINVAL')
      return { id: job.id, ok: false, code: 'ERACE', message: 'replaced between lstat and readlink; target not read', rec };
    return { id: job.id, ok: false, ...errInfo(e), rec };
  }
  return { id: job.id, ok: true, rec };
}

/** Inode flags of a directory: opened O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_DIRECTORY, only when it is still the one lstat saw. */
function dirFlags(real: Buffer, st: fs.BigIntStats): number | null {
  let fd: number;
  try {
    fd = fs.openSync(real, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK | C.O_DIRECTORY);
  } catch {
    return null;
  }
  try {
    const now = fs.fstatSync(fd, { bigint: true });
    return now.ino === st.ino && now.dev === st.dev ? readFlags(fd) : null;
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/** Hash a regular file that lstat `st` described; exported for the race tests. */
export function hashFile(job: ScanJob, st: fs.BigIntStats, rec: Observed, buf: Buffer, opened: Opened = openFile(job.real)): ScanResult {
  if ('err' in opened) return { id: job.id, ok: false, ...errInfo(opened.err), rec };
  const fd = opened.fd;
  try {
    const before = fs.fstatSync(fd, { bigint: true });
    if (typeOfMode(Number(before.mode)) !== 'file' || before.ino !== st.ino || before.dev !== st.dev)
      return { id: job.id, ok: false, code: 'ERACE', message: 'replaced between lstat and open; not hashed', rec };
    if (job.flags) rec.flags = readFlags(fd);
    // Large files go to the native hasher (it reads from `buf` in place); smaller ones to the
    // wasm SIMD hasher, with file data read straight into its memory: no copy either way.
    const expected = Number(before.size);
    const wantsBlake3 = job.algos.includes('blake3');
    const native = wantsBlake3 && expected >= NATIVE_MIN ? threadNativeBlake3() : null;
    const simd = wantsBlake3 && !native ? threadSimd() : null;
    const readBuf = simd ? simd.inputBuffer() : buf;
    simd?.reset();
    const blake3Hasher = native ? nativeHasher(native) : simd ? simdHasher(simd) : null;
    const hashers = job.algos.map((a) => [a, a === 'blake3' && blake3Hasher ? blake3Hasher : createHasher(a)] as const);
    const extras = (job.extra ?? []).filter((a) => !(job.algos as string[]).includes(a)).map((a) => [a, createHasher(a)] as const);
    const prefixLen = job.growing && job.prefixLen !== null ? job.prefixLen : -1;
    let pos = 0;
    const takePrefix = (): void => {
      for (const [a, h] of hashers) rec[a === 'blake3' ? 'prefixBlake3' : 'prefixSha256'] = h.peek();
    };
    if (prefixLen === 0) takePrefix();
    // Syscalls are what small files cost (each one is dear in a VM): stop without the extra
    // read that would return 0 when a short read ends exactly at the size fstat gave. A file
    // that grew meanwhile is caught by the fstat below (size or mtime changed).
    for (;;) {
      const want = prefixLen > pos ? Math.min(readBuf.length, prefixLen - pos) : readBuf.length;
      const n = fs.readSync(fd, readBuf, 0, want, null);
      if (n === 0) break;
      const chunk = readBuf.subarray(0, n);
      for (const [, h] of hashers) h.update(chunk);
      for (const [, h] of extras) h.update(chunk);
      pos += n;
      if (pos === prefixLen) takePrefix();
      if (n < want && pos === expected && !job.growing) break;
    }
    const after = fs.fstatSync(fd, { bigint: true });
    for (const [a, h] of hashers) rec[a] = h.digest();
    if (job.extra?.length) {
      rec.extra = {};
      for (const [a, h] of extras) rec.extra[a] = h.digest();
      for (const a of job.extra) if (a === 'sha256' && rec.sha256) rec.extra.sha256 = rec.sha256;
    }
    if (job.growing) {
      rec.size = BigInt(pos);
      rec.mtimeNs = after.mtimeNs;
      rec.ctimeNs = after.ctimeNs;
    } else if (after.size !== before.size || after.mtimeNs !== before.mtimeNs || BigInt(pos) !== before.size) {
      rec.blake3 = null;
      rec.sha256 = null;
      delete rec.extra;
      return { id: job.id, ok: false, code: 'ECHANGED', message: 'changed while being read; digest not trusted', rec };
    }
    return { id: job.id, ok: true, rec };
  } catch (e) {
    rec.blake3 = null;
    rec.sha256 = null;
    delete rec.extra;
    return { id: job.id, ok: false, ...errInfo(e), rec };
  } finally {
    opened.closed = true;
    fs.closeSync(fd);
  }
}

/**
 * Read buffer per thread. 256 KiB keeps syscalls few while the buffer stays in the L2 cache,
 * so the copy out of the page cache and the hashing that follows both hit cache (measured
 * faster here than 1 MiB, which spills to memory).
 */
export const READ_SIZE = 256 * 1024;
