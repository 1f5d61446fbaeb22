import fs from 'node:fs';
import { bindLibc, cstr, errnoError, O_CLOEXEC } from '../../scan/libc.js';

/**
 * The fd links of one process, for the core bracket: /proc/PID/fd opened once, listed with
 * getdents64 into a reused buffer and each link read with readlinkat relative to that
 * descriptor (koffi), so no path is looked up from /proc again per fd and no array of names is
 * built. Where koffi or a symbol is missing, fs.readdirSync + fs.readlinkSync give the same
 * result. Both throw errno-coded errors like fs does when the folder cannot be opened.
 */

interface Native {
  openat(dirfd: number, path: Buffer, flags: number): number;
  readlinkat(dirfd: number, name: Buffer, buf: Buffer, size: number): number;
  getdents64(fd: number, buf: Buffer, size: number): number;
  close(fd: number): number;
  lseek(fd: number, offset: number, whence: number): number;
  errno(): number;
}

const AT_FDCWD = -100;
const C = fs.constants;
const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | O_CLOEXEC;

let native: Native | null | undefined;
let forced: 'node' | null = null;

/** Tests: read with fs even where koffi is available (null: back to the default). */
export function forceFdReader(which: 'node' | null): void {
  forced = which;
}

function load(): Native | null {
  if (forced === 'node') return null;
  if (native === undefined)
    native = bindLibc<Omit<Native, 'errno'>>({
      openat: 'int openat(int dirfd, const char *path, int flags)',
      readlinkat: 'long readlinkat(int dirfd, const char *path, void *buf, size_t size)',
      getdents64: 'long getdents64(int fd, void *buf, size_t count)',
      close: 'int close(int fd)',
      lseek: 'int64_t lseek(int fd, int64_t offset, int whence)',
    });
  return native;
}

/** Which reader readFdLinks uses here. */
export function fdReaderKind(): 'getdents64' | 'fs' {
  return load() ? 'getdents64' : 'fs';
}

const dents = Buffer.allocUnsafe(32 * 1024);
/** PATH_MAX and one more, to see a target that did not fit */
const LINK_MAX = 4097;
const link = Buffer.allocUnsafe(LINK_MAX);
const fdName = Buffer.alloc(16);

/**
 * Open /proc/PID/fd ahead of reading it (before the bracket: opening is most of the cost of a
 * /proc fd folder). The descriptor stays bound to that process: once it exits, reading through
 * it fails with ENOENT even if its pid was given to another process. null where koffi is
 * missing or the folder cannot be opened (readFdLinks by path then reports why).
 */
export function openFdDir(dir: string): number | null {
  const n = load();
  if (!n) return null;
  const fd = n.openat(AT_FDCWD, cstr(Buffer.from(dir)), DIR_FLAGS);
  return fd < 0 ? null : fd;
}

/**
 * Read a folder from openFdDir once and rewind it, before the bracket: the first listing of a
 * /proc fd folder makes the kernel build an entry (dentry and inode) per fd, which later
 * listings find made (measured here, 2,000 processes: 85 ms cold, 68 ms after). Returns false
 * when it cannot be rewound (the caller then reads it by path).
 */
export function warmFdDir(fd: number, dir: string, maxFds: number): boolean {
  const n = load();
  if (!n) return false;
  try {
    readFdLinksInto(dir, maxFds, { add: () => undefined }, fd);
  } catch {
    // gone or unreadable: the read in the bracket says which
  }
  return n.lseek(fd, 0, 0 /* SEEK_SET */) === 0;
}

/** Close what openFdDir returned. */
export function closeFdDir(fd: number): void {
  load()?.close(fd);
}

/** Where readFdLinksInto puts each link: its fd number and the target's bytes (valid during the call). */
export interface FdLinkSink {
  add(fd: number, target: Buffer, len: number): void;
}

/**
 * Push [fd, target] for the fd links of `dir` (at most maxFds of them) into `out`; returns how
 * many fds the folder lists. A link closed between listing and reading is left out. `opened`:
 * a descriptor from openFdDir, not yet read (the caller closes it), instead of opening by path.
 */
export function readFdLinks(dir: string, maxFds: number, out: Array<[number, string]>, opened: number | null = null): number {
  return readFdLinksInto(dir, maxFds, { add: (fd, t, len) => out.push([fd, t.toString('utf8', 0, len)]) }, opened);
}

/** readFdLinks into a sink (FdLinkArena in the bracket: bytes copied, decoded after it). */
export function readFdLinksInto(dir: string, maxFds: number, out: FdLinkSink, opened: number | null = null): number {
  const n = load();
  if (!n) return readFdLinksNode(dir, maxFds, out);
  const fd = opened ?? n.openat(AT_FDCWD, cstr(Buffer.from(dir)), DIR_FLAGS);
  if (fd < 0) throw errnoError(n.errno(), 'open', dir);
  let count = 0;
  try {
    for (;;) {
      const got = n.getdents64(fd, dents, dents.length);
      if (got === 0) break;
      if (got < 0) throw errnoError(n.errno(), 'getdents64', dir);
      // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
      for (let off = 0; off < got; ) {
        const reclen = dents.readUInt16LE(off + 16);
        const start = off + 19;
        off += reclen;
        if (dents[start] === 0x2e) continue; // "." and ".." (fd names are digits)
        count++;
        if (count > maxFds) continue;
        // the fd number, and its name copied with the NUL into a reused buffer (no view per fd)
        let num = 0;
        let i = start;
        for (; dents[i] !== 0 && i - start < 15; i++) {
          num = num * 10 + dents[i]! - 48;
          fdName[i - start] = dents[i]!;
        }
        fdName[i - start] = 0;
        const r = n.readlinkat(fd, fdName, link, LINK_MAX);
        if (r < 0) continue; // closed meanwhile
        out.add(num, link, Math.min(r, LINK_MAX - 1));
      }
      // The kernel fills the buffer as far as the listing goes: room left for more entries
      // means the listing is complete, and the call that would return 0 is saved.
      if (got < dents.length - 4096) break;
    }
  } finally {
    if (opened === null) n.close(fd);
  }
  return count;
}

function readFdLinksNode(dir: string, maxFds: number, out: FdLinkSink): number {
  const fds = fs.readdirSync(dir);
  const n = Math.min(fds.length, maxFds);
  for (let i = 0; i < n; i++) {
    let t: Buffer;
    try {
      t = fs.readlinkSync(`${dir}/${fds[i]}`, { encoding: 'buffer' });
    } catch {
      continue; // closed meanwhile
    }
    out.add(Number(fds[i]), t, t.length);
  }
  return fds.length;
}

/**
 * The fd links read inside the bracket, as bytes in one growing buffer: no string or array per
 * fd until the bracket is over (take() decodes a process's range after it).
 */
export class FdLinkArena implements FdLinkSink {
  private bytes = Buffer.allocUnsafe(256 * 1024);
  private used = 0;
  private readonly nums: number[] = [];
  /** end offset of each link's bytes; it starts where the previous one ends */
  private readonly ends: number[] = [];

  get size(): number {
    return this.nums.length;
  }

  add(fd: number, target: Buffer, len: number): void {
    if (this.used + len > this.bytes.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.used + len));
      this.bytes.copy(bigger, 0, 0, this.used);
      this.bytes = bigger;
    }
    const b = this.bytes;
    const at = this.used;
    // links are short ("socket:[N]", "/dev/null"): a loop beats a native copy call for these
    if (len <= 64) for (let i = 0; i < len; i++) b[at + i] = target[i]!;
    else target.copy(b, at, 0, len);
    this.used += len;
    this.nums.push(fd);
    this.ends.push(this.used);
  }

  /** Links [from, to) as [fd, target], and the socket inodes among them ("socket:[N]"). */
  take(from: number, to: number): { fdLinks: Array<[number, string]>; sockets: number[] } {
    const fdLinks: Array<[number, string]> = [];
    const sockets: number[] = [];
    for (let i = from; i < to; i++) {
      const start = i === 0 ? 0 : this.ends[i - 1]!;
      const target = this.bytes.toString('utf8', start, this.ends[i]);
      fdLinks.push([this.nums[i]!, target]);
      const m = SOCKET_RE.exec(target);
      if (m) sockets.push(Number(m[1]));
    }
    return { fdLinks, sockets };
  }
}

const SOCKET_RE = /^socket:\[(\d+)\]$/;

/**
 * How many /proc fd folders a snapshot may hold open at once: half of what the soft
 * RLIMIT_NOFILE leaves above 1,024, at most 65,536 (the rest of the run needs descriptors too).
 * 0 where the limit cannot be read or koffi is missing: each folder is then opened when read.
 */
export function fdHoldBudget(): number {
  if (!load()) return 0;
  try {
    const line = fs
      .readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line ? Number(line.slice('Max open files'.length).trim().split(/\s+/)[0]) : Number.NaN;
    if (!Number.isFinite(soft)) return line?.includes('unlimited') ? 65536 : 0;
    return Math.max(0, Math.min(65536, Math.floor((soft - 1024) / 2)));
  } catch {
    return 0;
  }
}
