import fs from 'node:fs';
import { bindLibc, cstr, errnoError, O_CLOEXEC } from './libc.js';

const EINTR = 4;

/**
 * Directory listing with getdents64(2) through koffi, into one reused 64 KiB buffer: one system
 * call per ~1,000 names and no object per entry, where fs.opendirSync makes a Dirent and a
 * Buffer for every name (measured on /usr, 180k entries: the walk's main-thread time halves).
 * The directory is opened O_DIRECTORY | O_NOFOLLOW, so a folder swapped for a symlink after its
 * parent was listed fails with ELOOP instead of being followed out of scope.
 *
 * `null` from direntReader() where koffi or the symbol is missing (the walk then uses
 * fs.opendirSync, with the same results).
 */

/** d_type values (dirent.h) */
export const DT_UNKNOWN = 0;
export const DT_DIR = 4;
export const DT_REG = 8;

interface Native {
  getdents64(fd: number, buf: Buffer, size: number): number;
  openat(dirfd: number, path: Buffer, flags: number): number;
  errno(): number;
}

let native: Native | null | undefined;
let forced: 'node' | null = null;

function load(): Native | null {
  if (forced === 'node') return null;
  if (native === undefined)
    native = bindLibc<Omit<Native, 'errno'>>({
      getdents64: 'long getdents64(int fd, void *buf, size_t count)',
      openat: 'int openat(int dirfd, const void *path, int flags)',
    });
  return native;
}

/** Tests: list with fs.opendirSync even where getdents64 is available (null: back to the default). */
export function forceDirReader(which: 'node' | null): void {
  forced = which;
}

const BUF_SIZE = 64 * 1024;
let buf: Buffer | null = null;

const C = fs.constants;
const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW | C.O_NONBLOCK;

/**
 * A directory's entries: called with each name as the bytes src[start, end) of a reused buffer
 * (copy them to keep them; no Buffer is made per name) and its d_type.
 */
export type DirentSink = (src: Buffer, start: number, end: number, type: number) => void;

export interface DirentReader {
  /** List `real` (never following a final symlink); throws an errno-coded Error like fs does. */
  list(real: Buffer, sink: DirentSink): void;
  /** Open a folder to list it: `real`, or the name `name` in the open folder `parent` (never following a symlink). */
  open(real: Buffer, parent?: { fd: number; name: Buffer }): number;
  /** List the open folder `fd` (from open(); the caller closes it). */
  listFd(fd: number, sink: DirentSink): void;
}

function makeReader(n: Native): DirentReader {
  const listFd = (fd: number, sink: DirentSink): void => {
    buf ??= Buffer.allocUnsafe(BUF_SIZE);
    for (;;) {
      const got = n.getdents64(fd, buf, BUF_SIZE);
      if (got === 0) return;
      if (got < 0) throw errnoError(n.errno(), 'getdents64');
      // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
      for (let off = 0; off < got; ) {
        const reclen = buf.readUInt16LE(off + 16);
        const type = buf[off + 18]!;
        const nameStart = off + 19;
        const nameEnd = buf.indexOf(0, nameStart);
        off += reclen;
        const len = nameEnd - nameStart;
        // "." and ".."
        if (buf[nameStart] === 0x2e && (len === 1 || (len === 2 && buf[nameStart + 1] === 0x2e))) continue;
        sink(buf, nameStart, nameEnd, type);
      }
    }
  };
  return {
    open(real, parent) {
      if (!parent) return fs.openSync(real, DIR_FLAGS);
      for (;;) {
        const fd = n.openat(parent.fd, cstr(parent.name), DIR_FLAGS | O_CLOEXEC);
        if (fd >= 0) return fd;
        const e = n.errno();
        if (e !== EINTR) throw errnoError(e, 'opendir', real.toString());
      }
    },
    listFd,
    list(real, sink) {
      const fd = fs.openSync(real, DIR_FLAGS);
      try {
        listFd(fd, sink);
      } finally {
        fs.closeSync(fd);
      }
    },
  };
}

let reader: DirentReader | null | undefined;

/** The getdents64 reader, or null where it cannot be used. */
export function direntReader(): DirentReader | null {
  if (forced === 'node') return null;
  if (reader === undefined) {
    const n = load();
    reader = n ? makeReader(n) : null;
  }
  return reader;
}
