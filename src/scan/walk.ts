import fs from 'node:fs';
import type { Selector } from '../core/selector.js';
import type { Rule } from '../core/types.js';
import { DT_DIR, DT_REG, DT_UNKNOWN, direntReader } from './dirents.js';
import { copyBytes } from './libc.js';
import { RootResolver } from './root-path.js';

export type WalkEvent =
  | { kind: 'entry'; path: Buffer; real: Buffer; rule: Rule; dir: DirHandle | null }
  | { kind: 'error'; path: Buffer; code: string; message: string };

/**
 * An open descriptor of a listed folder, shared by the listing and the entries it yielded (walk
 * with `holdDirs`): the scan finds each entry by name in it (openat/statx), so a folder of the
 * path swapped for a symlink after the listing cannot redirect the read, and the kernel looks up
 * one name instead of the whole path. Counted: closed when the listing is done and every entry's
 * consumer has called release() (after that entry's scan result is back: a descriptor number
 * closed early could be reused by another folder).
 */
export class DirHandle {
  /** handles open now, all walks together */
  static open = 0;
  private refs = 1;
  constructor(readonly fd: number) {
    DirHandle.open++;
  }
  retain(): void {
    this.refs++;
  }
  release(): void {
    if (--this.refs === 0) {
      DirHandle.open--;
      fs.closeSync(this.fd);
    }
  }
}

/**
 * Folders held at most at once: a tree thousands of levels deep holds one per level, and the
 * descriptor limit may be as low as 1,024. Below this depth folders are listed and scanned by
 * path again (as without holdDirs).
 */
export const MAX_HELD_DIRS = 256;

const SLASH = Buffer.from('/');

/**
 * A pending step of the walk: yield one entry, or list one directory. `real` is the host path to
 * read; `parent` the held folder it was listed in (its name there is `key`), if any.
 */
type Item = {
  /** the sort key; for a subtree listed in a held folder, its name there (an entry's is unused) */
  key: Buffer;
  path: Buffer;
  real: Buffer;
  descend: boolean;
  parent?: DirHandle | null;
};

/**
 * Orders the items of one directory so that the walk yields paths in global byte order (the
 * order of SQLite's ORDER BY path): an entry sorts by its name, the subtree below a directory
 * by name + "/". A plain depth-first walk would not do: "a/x" must come after "a-b".
 */
function sortItems(items: Item[]): Item[] {
  return items.sort((x, y) => Buffer.compare(x.key, y.key));
}

/**
 * Walks the policy's roots, reading directories as bytes so that names that are not valid
 * UTF-8 (or contain newlines) are kept exactly. Symlinks are never followed (the walk descends
 * only into real directories, by d_type or lstat), so loops cannot occur and nothing outside
 * scope is read. Iterative, so trees hundreds of levels deep are fine. Paths come out in
 * global byte order, which lets `check` merge-join them with the stored generation.
 * Synchronous on purpose: the hash pool pulls from it lazily, and sync readdir is the fastest
 * way to list directories in Node.
 *
 * `root` is the --root prefix ("" for "/"); yielded paths are as the policy names them.
 */
export function* walk(selector: Selector, root: string, opts: { holdDirs?: boolean } = {}): Generator<WalkEvent> {
  const hold = opts.holdDirs === true;
  // Under --root, each walk root's folders are resolved inside the root (a symlink in them
  // never leads out of it); below a walk root the walk only descends into real directories,
  // so a child's host path is its parent's plus its name.
  const resolver = root.replace(/\/+$/, '') ? new RootResolver(root) : null;
  const top: Item[] = [];
  for (const r of selector.roots) {
    const p = Buffer.from(r, 'utf8');
    let st: fs.Stats;
    let real: Buffer;
    try {
      real = resolver ? resolver.real(p) : p;
      st = fs.lstatSync(real);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      // A policy path this host does not have is simply empty scope, not an error.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') yield { kind: 'error', path: p, code, message: (e as Error).message };
      continue;
    }
    top.push({ key: p, path: p, real, descend: false });
    if (st.isDirectory()) top.push({ key: Buffer.concat([p, SLASH]), path: p, real, descend: true });
  }
  const stack: Array<Item | Listing> = sortItems(top).reverse();
  // One generator, not one delegating to another: each entry then costs one iteration result.
  try {
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      let item: Item;
      if (top instanceof Listing) {
        const next = top.next();
        if (!next) {
          stack.pop();
          top.handle?.release();
          continue;
        }
        item = next;
      } else {
        stack.pop();
        item = top;
      }
      if (!item.descend) {
        const rule = selector.ruleFor(item.path.toString('utf8'));
        if (rule) {
          const dir = item.parent ?? null;
          dir?.retain();
          yield { kind: 'entry', path: item.path, real: item.real, rule, dir };
        }
        continue;
      }
      let listing: Listing;
      try {
        listing = Listing.read(item, (p) => selector.mayDescend(p.toString('utf8')), hold);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
        // vanished, or replaced (by a file, or by a symlink: never followed): its own entry shows that
        if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') continue;
        yield { kind: 'error', path: item.path, code, message: code === 'EACCES' ? 'permission denied (directory not listed)' : (e as Error).message };
        continue;
      }
      stack.push(listing);
    }
  } finally {
    // abandoned midway (an abort): the listings' own holds go; entries still out keep theirs
    for (const x of stack) if (x instanceof Listing) x.handle?.release();
  }
}

/** prefix + pool[start, start + len) as a new buffer (one allocation, where concat makes three). */
function joined(prefix: Buffer, pool: Buffer, start: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(prefix.length + len);
  prefix.copy(b, 0);
  copyBytes(pool, start, start + len, b, prefix.length);
  return b;
}

/**
 * One directory's entries, sorted, held compactly: every key (a name, or a name + "/" for the
 * subtree below a directory) packed into one buffer with offsets, instead of an object and
 * two buffers per entry. Entries are read with getdents64 into a reused buffer (dirents.ts;
 * opendir in batches where it is unavailable) rather than readdir's one array of Dirent objects, and paths are built only when the walk reaches them, so a
 * directory of 300,000 files costs a few bytes per name.
 */
class Listing {
  private constructor(
    /** the folder held open for the scan (walk with holdDirs), or null */
    readonly handle: DirHandle | null,
    private readonly prefix: Buffer,
    private readonly realPrefix: Buffer,
    private readonly pool: Buffer,
    private readonly start: Uint32Array,
    /** key length; the high bit marks a subtree (descend) key, whose last byte is the "/" */
    private readonly len: Uint32Array,
    private readonly order: Uint32Array,
    private pos = 0,
  ) {}

  static read(dir: Item, mayDescend: (p: Buffer) => boolean, hold: boolean): Listing {
    const prefix = dir.path.length === 1 ? dir.path : Buffer.concat([dir.path, SLASH]);
    const realPrefix = dir.real === dir.path ? prefix : dir.real.length === 1 ? dir.real : Buffer.concat([dir.real, SLASH]);
    let pool = Buffer.allocUnsafe(4096);
    let used = 0;
    let start = new Uint32Array(64);
    let len = new Uint32Array(64);
    let n = 0;
    const add = (src: Buffer, from: number, to: number, descend: boolean): void => {
      const need = to - from + (descend ? 1 : 0);
      if (used + need > pool.length) {
        const bigger = Buffer.allocUnsafe(Math.max(pool.length * 2, used + need));
        pool.copy(bigger, 0, 0, used);
        pool = bigger;
      }
      if (n === start.length) {
        const s2 = new Uint32Array(n * 2);
        s2.set(start);
        start = s2;
        const l2 = new Uint32Array(n * 2);
        l2.set(len);
        len = l2;
      }
      copyBytes(src, from, to, pool, used);
      if (descend) pool[used + to - from] = 0x2f;
      start[n] = used;
      len[n] = need | (descend ? 0x80000000 : 0);
      used += need;
      n++;
    };
    const entry = (src: Buffer, from: number, to: number, type: number): void => {
      add(src, from, to, false);
      let isDir = type === DT_DIR;
      if (type === DT_UNKNOWN) {
        // DT_UNKNOWN (some filesystems): ask lstat.
        try {
          isDir = fs.lstatSync(Buffer.concat([realPrefix, src.subarray(from, to)])).isDirectory();
        } catch {
          /* the scan of the entry itself reports it */
        }
      }
      if (isDir && mayDescend(Buffer.concat([prefix, src.subarray(from, to)]))) add(src, from, to, true);
    };
    const fast = direntReader();
    let handle: DirHandle | null = null;
    if (fast && hold && DirHandle.open < MAX_HELD_DIRS) {
      // opened by name in the held parent where there is one (not by path: see DirHandle)
      const fd = fast.open(dir.real, dir.parent ? { fd: dir.parent.fd, name: dir.key } : undefined);
      handle = new DirHandle(fd);
      try {
        fast.listFd(fd, entry);
      } catch (e) {
        handle.release();
        throw e;
      }
    } else if (fast) fast.list(dir.real, entry);
    else {
      const d = fs.opendirSync(dir.real, { encoding: 'buffer' as BufferEncoding, bufferSize: 128 });
      try {
        for (let e = d.readSync(); e !== null; e = d.readSync()) {
          const known = e.isFile() || e.isSymbolicLink() || e.isFIFO() || e.isSocket() || e.isCharacterDevice() || e.isBlockDevice();
          const name = e.name as unknown as Buffer;
          entry(name, 0, name.length, e.isDirectory() ? DT_DIR : known ? DT_REG : DT_UNKNOWN);
        }
      } finally {
        d.closeSync();
      }
    }
    const keyLen = (i: number): number => len[i]! & 0x7fffffff;
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    // Global byte order (see sortItems): compare the packed keys in place, no copies.
    order.sort((x, y) => pool.compare(pool, start[y]!, start[y]! + keyLen(y), start[x]!, start[x]! + keyLen(x)));
    return new Listing(handle, prefix, realPrefix, pool.subarray(0, used), start.subarray(0, n), len.subarray(0, n), order);
  }

  /** The next item in order, or null when the directory is done. */
  next(): Item | null {
    if (this.pos >= this.order.length) return null;
    const i = this.order[this.pos++]!;
    const descend = (this.len[i]! & 0x80000000) !== 0;
    const l = (this.len[i]! & 0x7fffffff) - (descend ? 1 : 0);
    const path = joined(this.prefix, this.pool, this.start[i]!, l);
    const real = this.realPrefix === this.prefix ? path : joined(this.realPrefix, this.pool, this.start[i]!, l);
    // the name is needed only to open a folder in its held parent; an entry's key is unused
    return { key: descend ? real.subarray(real.length - l) : path, path, real, descend, parent: this.handle };
  }
}
