import fs from 'node:fs';
import crypto from 'node:crypto';
import { createBlake3 } from './blake3.js';
import { Blake3Simd, simdSupported } from './blake3-simd.js';
import { type NativeBlake3, threadNativeBlake3 } from './blake3-native.js';
import type { EntryRecord, EntryType, ExtraAlgo, HashAlgo, Observed } from '../core/types.js';
import { adviseWillNeed, readFlags, readXattrs, readXattrsFd } from './fsmeta.js';
import {
  AT_FDCWD,
  atSupported,
  CHANGED,
  closeFile,
  errInfo,
  type FileStat,
  fstatFile,
  fstatSameFile,
  lstatFile,
  NOT_CACHED,
  OTHER,
  openFile,
  openForRead,
  readFile,
  readLink,
  readNoWait,
  SAME,
} from './fileio.js';
import { cstr } from './libc.js';
import { LANE_READ, threadLanes } from './md5-lanes.js';

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
  /**
   * MD5 too, in the same read, when this is a regular file small enough to fit one lane of
   * md5-lanes (LANE_READ): scanBatch hashes such files 8 or 32 at a time and puts the digest in
   * rec.extra.md5. A larger file comes back without it (the caller hashes those apart, where
   * the large files of the whole scan share the lanes; one alone would leave the others idle: deferred-md5.ts),
   * unless 'md5' is among `extra` too: then it gets it from node:crypto in its read, and a file
   * in a lane from the lane only.
   */
  md5Lanes?: boolean;
  /**
   * An open descriptor of the folder the walk listed this entry in, held until the result is
   * back (walk's DirHandle): the entry is then looked up by its name in that folder.
   */
  dirFd?: number;
}

/** Where a job's entry is looked up: a name in a folder the walk holds open, or the full path. */
interface Where {
  dirfd: number;
  /** NUL-terminated: the name (with dirfd) or the full path (AT_FDCWD) */
  cpath: Buffer;
}

function whereOf(job: ScanJob): Where {
  if (job.dirFd !== undefined && job.dirFd >= 0 && atSupported()) return { dirfd: job.dirFd, cpath: cstr(job.real, job.real.lastIndexOf(0x2f) + 1) };
  return { dirfd: AT_FDCWD, cpath: cstr(job.real) };
}

let procFd: boolean | undefined;

/**
 * The C path the path-based attribute calls (llistxattr, lgetxattr: symlinks, devices, FIFOs,
 * sockets, and files that could not be opened) take, or undefined for the job's full path. With a
 * folder the walk holds open it is `/proc/self/fd/N/NAME`: the kernel resolves that link to the
 * open folder itself, as statx and openat relative to it do, so a folder of the path swapped for a
 * symlink after the listing cannot make the attributes come from another entry than the one lstat
 * described. Without /proc (or without a held folder), the full path, as before.
 */
function attrPath(w: Where | null): Buffer | undefined {
  if (!w) return undefined;
  if (w.dirfd === AT_FDCWD) return w.cpath;
  procFd ??= fs.existsSync('/proc/self/fd');
  return procFd ? Buffer.concat([Buffer.from(`/proc/self/fd/${w.dirfd}/`), w.cpath]) : undefined;
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

/** The thread's SIMD hasher as an IncrementalHash (made once; reset it before each file). */
function simdHasher(h: Blake3Simd): IncrementalHash {
  if (simdWrap?.of !== h) simdWrap = { of: h, update: (b) => h.update(b), peek: () => h.peekHex(), digest: () => h.digestHex() };
  return simdWrap;
}
let simdWrap: (IncrementalHash & { of: Blake3Simd }) | undefined;

/** The thread's native hasher as an IncrementalHash (made once; reset it before each file). */
function nativeHasher(h: NativeBlake3): IncrementalHash {
  if (nativeWrap?.of !== h) nativeWrap = { of: h, update: (b) => void h.update(b), peek: () => h.digest('hex'), digest: () => h.digest('hex') };
  return nativeWrap;
}
let nativeWrap: (IncrementalHash & { of: NativeBlake3 }) | undefined;

/**
 * Files of at least this many bytes are hashed by the native BLAKE3 where it loads: below it the
 * N-API call costs more than the wasm hasher's whole work (measured here: 1 KiB 1.7 us native vs
 * 1.3 us wasm, 2 KiB 1.8 vs 2.7, 64 KiB 11 vs 34).
 */
export const NATIVE_MIN = 2048;

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
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

export function recordFromStat(path: Buffer, st: FileStat): EntryRecord {
  const mode = st.mode;
  return {
    path,
    type: typeOfMode(mode),
    mode: mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    inode: st.ino,
    nlink: st.nlink,
    target: null,
    blake3: null,
    sha256: null,
  };
}

const C = fs.constants;

/**
 * Scan one path: lstat; for a symlink read its target; for a regular file open it with
 * O_NOFOLLOW|O_NONBLOCK, stream it through the hashers and check with fstat that it is still
 * the file lstat saw, unchanged. FIFOs, sockets and devices are recorded by metadata and never
 * opened. Never throws: every failure becomes a result with an errno-style code.
 */
export function scanEntry(job: ScanJob, buf: Buffer): ScanResult {
  const w = whereOf(job);
  let st: FileStat;
  try {
    st = lstatFile(w.cpath, w.dirfd);
  } catch (e) {
    return { id: job.id, ok: false, ...errInfo(e), rec: null };
  }
  return scanStat(job, w, st, buf, null);
}

/**
 * How far ahead of the read a file is advised. WILLNEED walks the page cache over the whole
 * range even when it is all cached, so a long range costs on a warm run; the kernel's own
 * readahead follows a sequential read anyway once the first pages are in.
 */
const ADVISE_MAX = 512 * 1024;

/**
 * Scan a batch: first lstat every entry and open every regular file, advising the kernel to
 * read each one's start now (asynchronous readahead), then hash them one by one. On a warm
 * cache the advice is not given (see below); on a cold one the disk gets a whole batch of
 * requests instead of one synchronous read at a time. Each file is still checked (fstat on the
 * descriptor) to be the one lstat saw.
 */
export function scanBatch(jobs: readonly ScanJob[], buf: Buffer, carried: ReadStats | null = null): ScanResult[] {
  if (stopping()) return jobs.map((job) => ({ id: job.id, ok: false, ...errInfo(STOPPED), rec: null }));
  const advise = adviseBatches > 0;
  const pre: Pre[] = new Array(jobs.length);
  for (let i = 0; i < jobs.length; i++) {
    const job = jobs[i]!;
    try {
      const w = whereOf(job);
      const st = lstatFile(w.cpath, w.dirfd);
      let open: Opened | null = null;
      if ((st.mode & S_IFMT) === S_IFREG) {
        open = openRegular(w);
        if (advise && 'fd' in open) adviseWillNeed(open.fd, Math.min(Number(st.size), ADVISE_MAX));
      }
      pre[i] = { w, st, open };
    } catch (e) {
      pre[i] = { err: e };
    }
  }
  const out = new Array<ScanResult>(jobs.length);
  uncached = carried?.[0] ?? 0;
  timedFiles = carried?.[1] ?? 0;
  timedBytes = carried?.[2] ?? 0;
  readMs = carried?.[3] ?? 0;
  hashInLanes(jobs, pre, buf, out);
  for (let i = 0; i < jobs.length; i++) {
    if (out[i]) continue; // hashed in the lanes
    const job = jobs[i]!;
    const p = pre[i]!;
    if (stopping()) {
      if ('open' in p && p.open && 'fd' in p.open && !p.open.closed) closeFile(p.open.fd);
      out[i] = { id: job.id, ok: false, ...errInfo(STOPPED), rec: null };
      continue;
    }
    if ('err' in p) {
      out[i] = { id: job.id, ok: false, ...errInfo(p.err), rec: null };
      continue;
    }
    try {
      out[i] = scanStat(job, p.w, p.st, buf, p.open);
    } finally {
      // scanStat closes what it uses; a descriptor it never reached (a throw) is closed here.
      if (p.open && 'fd' in p.open && !p.open.closed) closeFile(p.open.fd);
    }
  }
  // The advice costs a call per file and only pays when reads would block: keep it on for a
  // while after a batch with a file whose start was not in the page cache (the kernel says so: the
  // first read of each file does not wait), off otherwise. Where the kernel cannot say, a batch
  // counts as uncached when its reads took much longer than copying cached data does (~5 us a file
  // + 0.5 ns a byte; an uncached read waits for the disk, ~100 us and more a file): a guess that a
  // busy machine can fool, which is why it is only the fallback.
  const slow = uncached > 0 || (timedFiles > 0 && readMs > 0.2 + timedFiles * 0.03 + timedBytes * 1.5e-6);
  adviseBatches = slow ? ADVISE_AFTER_SLOW : Math.max(0, adviseBatches - 1);
  return out;
}

type Pre = { w: Where; st: FileStat; open: Opened | null } | { err: unknown };
const LANE_READ_N = BigInt(LANE_READ);

/**
 * The batch's md5Lanes files that fit one lane, scanned into the lanes' own memory and hashed
 * there 8 (wasm) or 32 (native) at a time: BLAKE3 (and whatever else the job asks) as each file is read, exactly as
 * hashFile reads any file, then MD5 of all lanes side by side. A lane takes the next file when its
 * file's MD5 ends; largest first, so the lanes idle only over the last few small files. Fills
 * out[i] for each file it takes; a file whose scan failed, or that changed, gets no MD5.
 */
function hashInLanes(jobs: readonly ScanJob[], pre: readonly Pre[], buf: Buffer, out: ScanResult[]): void {
  const take: number[] = [];
  for (let i = 0; i < jobs.length; i++) {
    const j = jobs[i]!;
    const p = pre[i]!;
    if (j.md5Lanes && !j.growing && 'open' in p && p.open && 'fd' in p.open && p.st.size <= LANE_READ_N) take.push(i);
  }
  if (take.length === 0) return;
  const eng = threadLanes();
  if (!eng) return;
  take.sort((a, b) => Number((pre[b] as { st: FileStat }).st.size - (pre[a] as { st: FileStat }).st.size));
  const idx = new Array<number>(eng.lanes).fill(-1);
  let next = 0;
  for (;;) {
    let n = Infinity;
    for (let l = 0; l < eng.lanes; l++) {
      while (!eng.isBusy(l) && next < take.length && !stopping()) {
        const i = take[next++]!;
        const p = pre[i] as { w: Where; st: FileStat; open: Opened };
        const r = (out[i] = hashFile(jobs[i]!, p.st, recordFromStat(jobs[i]!.path, p.st), buf, p.open, p.w, eng.readBuffer(l)));
        // the whole file, unchanged while read, is in the lane: its MD5 can be trusted as its BLAKE3 is
        if (r.ok && r.rec.type === 'file') {
          eng.whole(l, Number(r.rec.size));
          idx[l] = i;
        }
      }
      if (eng.isBusy(l)) n = Math.min(n, eng.blocks(l));
    }
    if (n === Infinity) return;
    eng.step(n);
    for (let l = 0; l < eng.lanes; l++)
      if (eng.isBusy(l) && eng.done(l)) {
        const rec = (out[idx[l]!] as { rec: Observed }).rec;
        (rec.extra ??= {}).md5 = eng.digest(l);
      }
    if (stopping()) {
      for (let l = 0; l < eng.lanes; l++) if (eng.isBusy(l)) eng.drop(l);
      return;
    }
  }
}

/**
 * Set by the pool when the run is being abandoned (Ctrl-C, an error): a worker then stops within
 * one read of its current file instead of being terminated inside a native call, which can take
 * the whole process down.
 */
let stopFlag: Int32Array | null = null;
export function setStopFlag(flag: Int32Array): void {
  stopFlag = flag;
}
export const stopping = (): boolean => stopFlag !== null && Atomics.load(stopFlag, 0) !== 0;
/** The stop flag itself (the native scan reads it between files and reads), null outside a pool. */
export const stopFlagArray = (): Int32Array | null => stopFlag;
const STOPPED = Object.assign(new Error('the run was stopped'), { code: 'EINTR' });

/** How many more batches will be advised (tests; the native scan: advise now while it is above 0). */
export const advisedBatches = (): number => adviseBatches;

/**
 * What another scan of the same batch saw of its reads, for the cache heuristic below: files whose
 * first read found them uncached, files read with a clock, their bytes, the milliseconds.
 */
export type ReadStats = Float64Array;

/** Batches advised after one that looked uncached (and at the start: a cold run gains most there). */
const ADVISE_AFTER_SLOW = 16;
let adviseBatches = ADVISE_AFTER_SLOW;
/** In the current batch: files whose first read found no data in the page cache */
let uncached = 0;
/** In the current batch, for files the kernel could not tell about: their count, bytes and milliseconds of reads */
let timedFiles = 0;
let timedBytes = 0;
let readMs = 0;

/** A regular file opened ahead of its scan, or why it could not be. */
type Opened = { fd: number; closed: boolean } | { err: unknown };

function openRegular(w: Where): Opened {
  try {
    return { fd: openForRead(w.cpath, w.dirfd), closed: false };
  } catch (e) {
    return { err: e };
  }
}

function scanStat(job: ScanJob, w: Where, st: FileStat, buf: Buffer, opened: Opened | null): ScanResult {
  const rec: Observed = recordFromStat(job.path, st);
  if (rec.type === 'file') return hashFile(job, st, rec, buf, opened ?? openRegular(w), w);
  if (rec.type === 'dir' && (job.flags || job.xattrs)) dirMeta(job, w, st, rec);
  else if (job.xattrs) rec.xattrs = readXattrs(job.real, attrPath(w));
  if (rec.type === 'symlink') return readSymlink(job, rec, w);
  return { id: job.id, ok: true, rec };
}

/**
 * Read the target of a symlink that lstat described. If the path was replaced by something
 * else meanwhile, readlink fails with EINVAL: that is the documented ERACE, not an I/O error.
 * Exported for the race tests.
 */
export function readSymlink(job: ScanJob, rec: Observed, w: Where = whereOf(job)): ScanResult {
  try {
    rec.target = readLink(w.cpath, w.dirfd);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EINVAL')
      return { id: job.id, ok: false, code: 'ERACE', message: 'replaced between lstat and readlink; target not read', rec };
    return { id: job.id, ok: false, ...errInfo(e), rec };
  }
  return { id: job.id, ok: true, rec };
}

/**
 * Inode flags and extended attributes of a directory, read through one descriptor (opened
 * O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_DIRECTORY) that is still the directory lstat saw: no second
 * lookup by path. Where it cannot be opened or is not that directory any more, flags are not
 * known (null) and the attributes are read by path, as for other entries.
 */
function dirMeta(job: ScanJob, w: Where, st: FileStat, rec: Observed): void {
  let fd = -1;
  try {
    fd = openFile(w.cpath, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK | C.O_DIRECTORY, w.dirfd);
    const now = fstatFile(fd);
    if (now.ino === st.ino && now.dev === st.dev) {
      if (job.flags) rec.flags = readFlags(fd);
      if (job.xattrs) rec.xattrs = readXattrsFd(fd);
      return;
    }
  } catch {
    // not readable as a directory now: below
  } finally {
    if (fd >= 0) closeFile(fd);
  }
  if (job.flags) rec.flags = null;
  if (job.xattrs) rec.xattrs = readXattrs(job.real, attrPath(w));
}

/** The descriptor holds the regular file lstat described (same inode on the same device). */
function sameFile(now: FileStat, st: FileStat): boolean {
  return (now.mode & S_IFMT) === S_IFREG && now.ino === st.ino && now.dev === st.dev;
}

type Hashers<A extends string> = ReadonlyArray<readonly [A, IncrementalHash]>;
const NO_HASHERS: Hashers<never> = [];

/** The hashers for a file's algorithms: with only BLAKE3 (the default), one list per thread and hasher. */
function hashersFor(algos: readonly HashAlgo[], blake3: IncrementalHash | null): Hashers<HashAlgo> {
  if (blake3 && algos.length === 1 && algos[0] === 'blake3') {
    let l = onlyBlake3.get(blake3);
    if (!l) onlyBlake3.set(blake3, (l = [['blake3', blake3]]));
    return l;
  }
  return algos.map((a) => [a, a === 'blake3' && blake3 ? blake3 : createHasher(a)] as const);
}
const onlyBlake3 = new Map<IncrementalHash, Hashers<HashAlgo>>();

/**
 * Hashers for the digests asked in the same read that are not among the stored ones. `inLane`: the
 * file is read into an md5-lanes lane, which gives its MD5 (hashInLanes): no second MD5 for it.
 */
function extraHashers(job: ScanJob, inLane: boolean): Hashers<ExtraAlgo> {
  return (job.extra ?? []).filter((a) => !(job.algos as string[]).includes(a) && !(inLane && a === 'md5')).map((a) => [a, createHasher(a)] as const);
}

function takePrefix(rec: Observed, hashers: Hashers<HashAlgo>): void {
  for (const [a, h] of hashers) rec[a === 'blake3' ? 'prefixBlake3' : 'prefixSha256'] = h.peek();
}

/** Attributes of a file whose descriptor cannot be used for them: read by path. */
function pathXattrs(job: ScanJob, rec: Observed, w: Where | null): void {
  if (job.xattrs) rec.xattrs = readXattrs(job.real, attrPath(w));
}

function race(job: ScanJob, rec: Observed): ScanResult {
  return { id: job.id, ok: false, code: 'ERACE', message: 'replaced between lstat and open; not hashed', rec };
}

/** A record whose content could not be trusted keeps its metadata and no digest. */
function dropDigests(rec: Observed): void {
  rec.blake3 = null;
  rec.sha256 = null;
  delete rec.prefixBlake3;
  delete rec.prefixSha256;
  delete rec.extra;
}

/**
 * Hash a regular file that lstat `st` described; exported for the race tests. The descriptor is checked after the read: it must be the file lstat saw
 * (else ERACE, nothing kept) with the size and mtime lstat saw and as many bytes read (else
 * ECHANGED). Before that check, at most one buffer more than lstat's size is read, so a file
 * swapped for an endless device in between is not read for ever; flags and extended
 * attributes are read only from a descriptor that passed it. A `growing` file is checked
 * before the read too, and read to its end.
 */
export function hashFile(
  job: ScanJob,
  st: FileStat,
  rec: Observed,
  buf: Buffer,
  opened: Opened = openRegular(whereOf(job)),
  w: Where | null = null,
  into: Buffer | null = null,
): ScanResult {
  if ('err' in opened) {
    pathXattrs(job, rec, w);
    return { id: job.id, ok: false, ...errInfo(opened.err), rec };
  }
  const fd = opened.fd;
  try {
    let expected = Number(st.size);
    if (job.growing) {
      const before = fstatFile(fd);
      if (!sameFile(before, st)) return race(job, rec);
      expected = Number(before.size);
    }
    // Large files go to the native hasher (it reads from `buf` in place); smaller ones to the
    // wasm SIMD hasher, with file data read straight into its memory: no copy either way.
    const wantsBlake3 = job.algos.includes('blake3');
    const native = wantsBlake3 && expected >= NATIVE_MIN ? threadNativeBlake3() : null;
    const simd = wantsBlake3 && !native ? threadSimd() : null;
    // `into`: the whole file is kept there, read after read (a lane of md5-lanes hashes it next)
    const readBuf = into ?? (simd ? simd.inputBuffer() : buf);
    simd?.reset();
    native?.reset();
    const hashers = hashersFor(job.algos, native ? nativeHasher(native) : simd ? simdHasher(simd) : null);
    const extras: Hashers<ExtraAlgo> = job.extra?.length ? extraHashers(job, into !== null) : NO_HASHERS;
    const prefixLen = job.growing && job.prefixLen !== null ? job.prefixLen : -1;
    let pos = 0;
    if (prefixLen === 0) takePrefix(rec, hashers);
    // Syscalls are what small files cost (each one is dear in a VM): stop without the extra
    // read that would return 0 when a short read ends exactly at the expected size. A file
    // that grew meanwhile is caught by the fstat below (size or mtime changed).
    let t = -1;
    for (;;) {
      const at = into ? pos : 0;
      const want = prefixLen > pos ? Math.min(readBuf.length - at, prefixLen - pos) : readBuf.length - at;
      if (stopping()) throw STOPPED;
      let n = -1;
      if (pos === 0 && want > 0 && t < 0) {
        // the first read: is the file's start in the page cache? (see scanBatch)
        const r = readNoWait(fd, readBuf, want, st.dev);
        if (r === null) {
          t = performance.now();
          timedFiles++;
          timedBytes += expected;
        } else if (r !== NOT_CACHED) n = r;
        // Counted on every file, and the plain read below is the one every later read goes
        // through: a branch taken only by the odd uncached file of a warm run would have no type
        // feedback, and its first use would throw the optimised hashFile away (a recompile, ~60 ms).
        uncached += r === NOT_CACHED || (r !== null && r < want && r < expected) ? 1 : 0; // (none, or only part of it, was there)
      }
      if (n < 0) n = want > 0 ? readFile(fd, at ? readBuf.subarray(at) : readBuf, want) : 0;
      if (n === 0) break;
      if (simd && !into && hashers.length === 1 && extras.length === 0)
        simd.commit(n); // the data is in its memory already
      else {
        const chunk = readBuf.subarray(at, at + n);
        for (const [, h] of hashers) h.update(chunk);
        for (const [, h] of extras) h.update(chunk);
      }
      pos += n;
      if (pos === prefixLen) takePrefix(rec, hashers);
      if (!job.growing && (pos > expected || (n < want && pos === expected))) break;
    }
    if (t >= 0) readMs += performance.now() - t;
    // Growing files take the new size and times from the descriptor; the rest only compare.
    const after = job.growing ? fstatFile(fd) : null;
    const same = after ? (sameFile(after, st) ? SAME : OTHER) : fstatSameFile(fd, st);
    if (same === OTHER) {
      dropDigests(rec);
      pathXattrs(job, rec, w);
      return race(job, rec);
    }
    if (job.flags) rec.flags = readFlags(fd);
    if (job.xattrs) rec.xattrs = readXattrsFd(fd);
    for (const [a, h] of hashers) rec[a] = h.digest();
    if (job.extra?.length) {
      rec.extra = {};
      for (const [a, h] of extras) rec.extra[a] = h.digest();
      for (const a of job.extra) if (a === 'sha256' && rec.sha256) rec.extra.sha256 = rec.sha256;
    }
    if (after) {
      rec.size = BigInt(pos);
      rec.mtimeNs = after.mtimeNs;
      rec.ctimeNs = after.ctimeNs;
    } else if (same === CHANGED || pos !== expected) {
      dropDigests(rec);
      return { id: job.id, ok: false, code: 'ECHANGED', message: 'changed while being read; digest not trusted', rec };
    }
    return { id: job.id, ok: true, rec };
  } catch (e) {
    dropDigests(rec);
    pathXattrs(job, rec, w);
    // A read that failed on something other than the file lstat saw (a FIFO swapped in says
    // EAGAIN) is the race, not an I/O error of that file.
    try {
      if (!sameFile(fstatFile(fd), st)) return race(job, rec);
    } catch {
      // the error below stands
    }
    return { id: job.id, ok: false, ...errInfo(e), rec };
  } finally {
    opened.closed = true;
    closeFile(fd);
  }
}

/**
 * Read buffer per thread. 256 KiB keeps syscalls few while the buffer stays in the L2 cache,
 * so the copy out of the page cache and the hashing that follows both hit cache (measured
 * faster here than 1 MiB, which spills to memory).
 */
export const READ_SIZE = 256 * 1024;
