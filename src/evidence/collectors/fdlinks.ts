import fs from 'node:fs';
import { bindLibc, cstr } from '../../scan/libc.js';

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
  errno(): number;
}

const AT_FDCWD = -100;
const C = fs.constants;
// O_CLOEXEC (0o2000000 on Linux) is not in fs.constants
const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | 0o2000000;
const ERRNO: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 3: 'ESRCH', 13: 'EACCES', 20: 'ENOTDIR', 24: 'EMFILE' };

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
    });
  return native;
}

/** Which reader readFdLinks uses here. */
export function fdReaderKind(): 'getdents64' | 'fs' {
  return load() ? 'getdents64' : 'fs';
}

function errnoError(e: number, what: string, path: string): Error {
  const code = ERRNO[e] ?? 'EIO';
  return Object.assign(new Error(`${code}: ${what} '${path}' failed (errno ${e})`), { code, errno: -e, path });
}

const dents = Buffer.allocUnsafe(32 * 1024);
/** PATH_MAX and one more, to see a target that did not fit */
const LINK_MAX = 4097;
const link = Buffer.allocUnsafe(LINK_MAX);

/**
 * Push [fd, target] for the fd links of `dir` (at most maxFds of them) into `out`; returns how
 * many fds the folder lists. A link closed between listing and reading is left out.
 */
export function readFdLinks(dir: string, maxFds: number, out: Array<[number, string]>): number {
  const n = load();
  if (!n) return readFdLinksNode(dir, maxFds, out);
  const fd = n.openat(AT_FDCWD, cstr(Buffer.from(dir)), DIR_FLAGS);
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
        let num = 0;
        let i = start;
        for (; dents[i] !== 0; i++) num = num * 10 + dents[i]! - 48;
        // d_name is NUL-terminated in the buffer: readlinkat takes it in place
        const r = n.readlinkat(fd, dents.subarray(start, i + 1), link, LINK_MAX);
        if (r < 0) continue; // closed meanwhile
        out.push([num, link.toString('utf8', 0, Math.min(r, LINK_MAX - 1))]);
      }
    }
  } finally {
    n.close(fd);
  }
  return count;
}

function readFdLinksNode(dir: string, maxFds: number, out: Array<[number, string]>): number {
  const fds = fs.readdirSync(dir);
  const n = Math.min(fds.length, maxFds);
  for (let i = 0; i < n; i++) {
    try {
      out.push([Number(fds[i]), fs.readlinkSync(`${dir}/${fds[i]}`)]);
    } catch {
      // closed meanwhile
    }
  }
  return fds.length;
}
