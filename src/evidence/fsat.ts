/**
 * File-system helpers for the evidence writer that work relative to directory file
 * descriptors, so that a local user who can rename entries in the output folder cannot
 * redirect what integ writes, chmods or removes.
 *
 * Node has no openat(2). `/proc/self/fd/N/NAME` is the next best thing: the kernel
 * resolves `/proc/self/fd/N` to the directory the descriptor holds (wherever it has been
 * moved since), then NAME inside it. Every final component is opened with O_NOFOLLOW,
 * folders with O_DIRECTORY, and modes are set with fchmod on the open descriptor, never by
 * path. This needs /proc (Linux), which `snapshot` needs anyway.
 */
import fsSync, { type Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { CantCreateError } from '../util/errors.js';

const C = fsSync.constants;
/** A folder, never through a symlink as the last component. */
export const O_DIR_NOFOLLOW = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
/** A new file: fails if anything (a symlink included) already has the name. */
const O_NEW_FILE = C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW;

/** The path through which the kernel resolves `rel` inside the folder open as `fd`. */
export function at(fd: number, rel = ''): string {
  return rel === '' ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${rel}`;
}

/** An entry the writer created and holds open; its dev/inode prove it is still the same one. */
export interface Held {
  /** Its name in the evidence folder. */
  name: string;
  handle: fs.FileHandle;
  stat: Stats;
}

export function sameFile(a: Pick<Stats, 'dev' | 'ino'>, b: Pick<Stats, 'dev' | 'ino'>): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/** lstat that returns undefined for a missing entry. */
export async function lstatOrNull(p: string): Promise<Stats | undefined> {
  try {
    return await fs.lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Create folder `name` inside the folder open as `dirFd` (0700), or open it when `mayExist`
 * and it is a folder of ours; returns it open, after fchmod 0700.
 */
export async function mkdirAt(dirFd: number, name: string, mayExist = false): Promise<fs.FileHandle> {
  try {
    await fs.mkdir(at(dirFd, name), { mode: 0o700 });
  } catch (err) {
    if (!mayExist || (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const h = await fs.open(at(dirFd, name), O_DIR_NOFOLLOW);
  try {
    const st = await h.stat();
    if (st.uid !== euid()) throw errno('EPERM', `${name} is owned by uid ${st.uid}, not by this user`);
    await h.chmod(0o700);
    return h;
  } catch (err) {
    await h.close();
    throw err;
  }
}

/** Create a new file (never over an existing name or through a symlink), 0600 whatever the umask. */
export async function createFileAt(dirFd: number, rel: string): Promise<fs.FileHandle> {
  const h = await fs.open(at(dirFd, rel), O_NEW_FILE, 0o600);
  try {
    await h.chmod(0o600);
    return h;
  } catch (err) {
    await h.close();
    throw err;
  }
}

/** Write a new file with `buf` (see createFileAt). */
export async function writeNewFileAt(dirFd: number, rel: string, buf: Buffer): Promise<void> {
  const h = await createFileAt(dirFd, rel);
  try {
    await h.writeFile(buf);
  } finally {
    await h.close();
  }
}

/**
 * The name under which the folder open as `dirFd` holds the object `target` (dev/inode),
 * trying `hint` first; undefined when it is not there (moved away or removed).
 */
async function findEntry(dirFd: number, target: Pick<Stats, 'dev' | 'ino'>, hint: string): Promise<string | undefined> {
  const first = await lstatOrNull(at(dirFd, hint)).catch(() => undefined);
  if (first && sameFile(first, target)) return hint;
  let names: string[];
  try {
    names = await fs.readdir(at(dirFd));
  } catch {
    return undefined;
  }
  for (const n of names) {
    const st = await lstatOrNull(at(dirFd, n)).catch(() => undefined);
    if (st && sameFile(st, target)) return n;
  }
  return undefined;
}

/**
 * Remove everything inside the private folder open as `dir` (never following symlinks: fs.rm
 * lstats each entry), then the folder itself from `parentFd`, found by its dev/inode
 * wherever a renaming user put it in that folder. Best effort; returns whether it is gone.
 */
export async function removeTreeAt(parentFd: number, dir: fs.FileHandle, dirStat: Stats, hint: string): Promise<boolean> {
  // fs.rm walks by name, which is safe only where no one else can rename: a private (0700-style)
  // folder of this user. Anything else is left alone.
  const now = await dir.stat().catch(() => undefined);
  if (!now || now.uid !== euid() || (now.mode & 0o077) !== 0) return false;
  try {
    for (const n of await fs.readdir(at(dir.fd))) await fs.rm(at(dir.fd, n), { recursive: true, force: true });
  } catch {
    // already gone, or not ours any more
  }
  const name = await findEntry(parentFd, dirStat, hint);
  if (name === undefined) return false;
  try {
    await fs.rmdir(at(parentFd, name));
    return true;
  } catch {
    return false;
  }
}

/** Unlink the file `target` (dev/inode) from the folder open as `dirFd`, wherever it was renamed to. */
export async function unlinkAt(dirFd: number, target: Pick<Stats, 'dev' | 'ino'>, hint: string): Promise<void> {
  const name = await findEntry(dirFd, target, hint);
  if (name !== undefined) await fs.unlink(at(dirFd, name)).catch(() => undefined);
}

/**
 * mkdir -p: every level created here is 0700, set with fchmod on a descriptor opened without
 * following a symlink (a renamed-in link cannot redirect the chmod). Existing levels are left as they are.
 */
export async function mkdirp(dir: string): Promise<void> {
  const missing: string[] = [];
  let cur = dir;
  for (;;) {
    try {
      const st = await fs.stat(cur);
      if (!st.isDirectory()) throw errno('ENOTDIR', `${cur} is not a directory`);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      missing.push(cur);
      const up = path.dirname(cur);
      if (up === cur) break;
      cur = up;
    }
  }
  for (const d of missing.reverse()) {
    try {
      await fs.mkdir(d, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      continue;
    }
    const h = await fs.open(d, O_DIR_NOFOLLOW);
    try {
      await h.chmod(0o700);
    } finally {
      await h.close();
    }
  }
}

/** Is `st` (a folder) writable by someone other than root and this user, without the sticky bit? */
function openToOthers(st: Stats): string | undefined {
  const me = euid();
  if (st.uid !== 0 && st.uid !== me) return `is owned by uid ${st.uid}, who can change its permissions at any time`;
  if (st.mode & 0o1000) return undefined; // sticky: others cannot rename or remove our entries
  const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
  if (st.mode & 0o002) return `is writable by every user and has no sticky bit (mode ${mode})`;
  const egid = process.getegid?.() ?? 0;
  if (st.mode & 0o020 && st.gid !== 0 && st.gid !== egid) return `is writable by group ${st.gid} and has no sticky bit (mode ${mode})`;
  return undefined;
}

/**
 * Refuse an output folder another local user could rename entries in (or rename away):
 * the folder itself and every folder above it must be owned by root or this user and not
 * writable by others, unless it has the sticky bit (like /tmp). Checked on the real path
 * of the open descriptor, whose identity must still match. Throws CantCreateError (73).
 */
export async function assertPrivateFolder(dirFd: number, shown: string): Promise<void> {
  const real = await fs.readlink(at(dirFd));
  const self = await fs.stat(at(dirFd));
  const refuse = (p: string, why: string): never => {
    throw new CantCreateError(
      `refusing to write evidence into ${shown}: ${p} ${why}; another local user could ` +
        'swap the bundle or its staging folder (use a folder only root or you can write, e.g. chmod go-w, or one with the sticky bit)',
    );
  };
  let cur = real;
  for (;;) {
    const st = await fs.lstat(cur);
    if (cur === real && !sameFile(st, self)) refuse(cur, 'was replaced while being checked');
    const why = openToOthers(st);
    if (why) refuse(cur, why);
    const up = path.dirname(cur);
    if (up === cur) break;
    cur = up;
  }
}

/** Close an entry we hold and remove it from the evidence folder, found by dev/inode wherever it was renamed to. */
export async function releaseHeld(outFd: number, held: Held, isDir: boolean): Promise<void> {
  if (isDir) await removeTreeAt(outFd, held.handle, held.stat, held.name);
  await held.handle.close().catch(() => undefined);
  if (!isDir && !held.name.endsWith('.tar.gz')) await unlinkAt(outFd, held.stat, held.name);
}

export async function writeAll(handle: fs.FileHandle, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await handle.write(buf, off, buf.length - off, position + off);
    off += bytesWritten;
  }
}

export function writeAllSync(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += fsSync.writeSync(fd, buf, off, buf.length - off);
}

export function euid(): number {
  return process.geteuid?.() ?? 0;
}

export function errno(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}
