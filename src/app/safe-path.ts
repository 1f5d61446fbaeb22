import fs from 'node:fs';
import { pathToText } from '../core/pathenc.js';
import { DataError, NoInputError, UsageError, writeErrorFor } from '../util/errors.js';

/**
 * Path resolution that never follows a symlink, for writing into a suspect tree.
 *
 * Node has no openat(2). Linux's /proc/self/fd/N is a "magic link" to the very directory the
 * descriptor N holds, so `/proc/self/fd/N/name` opened with O_NOFOLLOW is openat(N, name,
 * O_NOFOLLOW): each component is opened relative to the directory opened before it, and a
 * component that is a symlink fails (ELOOP / ENOTDIR) instead of being followed. A symlink
 * swapped in after a component was opened changes nothing: the descriptor keeps the directory.
 */
const DIR_FLAGS = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW;

export function requireProcFd(): void {
  if (process.platform !== 'linux' || !fs.existsSync('/proc/self/fd'))
    throw new UsageError('restore needs Linux with /proc mounted (it writes through directory descriptors, never through symlinks)');
}

/** `/proc/self/fd/<fd>/<name>` as bytes (names are bytes). */
export function at(fd: number, name?: Buffer): Buffer {
  const base = Buffer.from(`/proc/self/fd/${fd}`);
  return name ? Buffer.concat([base, Buffer.from('/'), name]) : base;
}

/** Split an absolute path (bytes) into its components; "." and ".." are refused. */
export function components(p: Buffer): Buffer[] {
  if (p[0] !== 0x2f) throw new UsageError(`${pathToText(p)}: expected an absolute path`);
  const out: Buffer[] = [];
  let start = 1;
  for (let i = 1; i <= p.length; i++) {
    if (i === p.length || p[i] === 0x2f) {
      if (i > start) {
        const c = p.subarray(start, i);
        if ((c.length === 1 && c[0] === 0x2e) || (c.length === 2 && c[0] === 0x2e && c[1] === 0x2e))
          throw new UsageError(`${pathToText(p)}: "." and ".." are not allowed in a path to restore`);
        out.push(c);
      }
      start = i + 1;
    }
  }
  if (!out.length) throw new UsageError(`${pathToText(p)}: cannot restore the root directory itself`);
  return out;
}

export interface ParentDir {
  /** descriptor of the parent directory (close it) */
  fd: number;
  /** last component */
  name: Buffer;
}

/**
 * Open the parent directory of `p` under `root` ("" for /) without following any symlink on the
 * way. A missing component is created (mode from `mkdir`, which returns null when the caller has
 * no record of that directory: then it is an error) only when `create` is set.
 */
export function openParent(root: string, p: Buffer, opts: { create?: (dir: Buffer) => { mode: number; uid: number; gid: number } | null } = {}): ParentDir {
  const parts = components(p);
  const name = parts.pop()!;
  let fd: number;
  try {
    fd = fs.openSync(root || '/', fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch (e) {
    throw new NoInputError(`cannot open ${root || '/'}: ${(e as Error).message}`);
  }
  let sofar = Buffer.alloc(0);
  try {
    for (const c of parts) {
      sofar = Buffer.concat([sofar, Buffer.from('/'), c]);
      let next: number;
      try {
        next = fs.openSync(at(fd, c), DIR_FLAGS);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ELOOP' || code === 'ENOTDIR')
          throw new DataError(
            `refusing to restore ${pathToText(p)}: ${pathToText(sofar)}${root ? ` (under ${root})` : ''} is a symlink or not a directory; a restore never writes through a symlink`,
          );
        if (code !== 'ENOENT') throw writeErrorFor(e, `cannot open ${pathToText(sofar)}`);
        const rec = opts.create?.(sofar) ?? null;
        if (!rec)
          throw new NoInputError(
            `cannot restore ${pathToText(p)}: its directory ${pathToText(sofar)} does not exist${opts.create ? ' and the generation has no record of it' : ''}`,
          );
        try {
          fs.mkdirSync(at(fd, c), { mode: 0o700 });
          next = fs.openSync(at(fd, c), DIR_FLAGS);
          fs.fchownSync(next, rec.uid, rec.gid);
          fs.fchmodSync(next, rec.mode);
        } catch (e2) {
          throw writeErrorFor(e2, `cannot create directory ${pathToText(sofar)}`);
        }
      }
      fs.closeSync(fd);
      fd = next;
    }
    return { fd, name };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}
