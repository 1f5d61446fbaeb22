import fs from 'node:fs';
import type { Selector } from '../core/selector.js';
import type { Rule } from '../core/types.js';
import { RootResolver } from './root-path.js';

export type WalkEvent =
  | { kind: 'entry'; path: Buffer; real: Buffer; rule: Rule }
  | { kind: 'error'; path: Buffer; code: string; message: string };

const SLASH = Buffer.from('/');

/** A pending step of the walk: yield one entry, or list one directory. `real` is the host path to read. */
type Item = { key: Buffer; path: Buffer; real: Buffer; descend: boolean };

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
export function* walk(selector: Selector, root: string): Generator<WalkEvent> {
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
  const stack: Item[] = sortItems(top).reverse();
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (!item.descend) {
      const rule = selector.ruleFor(item.path.toString('utf8'));
      if (rule) yield { kind: 'entry', path: item.path, real: item.real, rule };
      continue;
    }
    const dir = item.path;
    let names: fs.Dirent[];
    try {
      names = fs.readdirSync(item.real, { withFileTypes: true, encoding: 'buffer' }) as unknown as fs.Dirent[];
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      if (code === 'ENOENT' || code === 'ENOTDIR') continue; // vanished or replaced: its own entry shows that
      yield { kind: 'error', path: dir, code, message: code === 'EACCES' ? 'permission denied (directory not listed)' : (e as Error).message };
      continue;
    }
    const prefix = dir.length === 1 ? dir : Buffer.concat([dir, SLASH]);
    const realPrefix = item.real === dir ? prefix : item.real.length === 1 ? item.real : Buffer.concat([item.real, SLASH]);
    const items: Item[] = [];
    for (const d of names) {
      const name = d.name as unknown as Buffer;
      const p = Buffer.concat([prefix, name]);
      const real = realPrefix === prefix ? p : Buffer.concat([realPrefix, name]);
      items.push({ key: name, path: p, real, descend: false });
      let isDir = d.isDirectory();
      if (!isDir && !d.isFile() && !d.isSymbolicLink() && !d.isFIFO() && !d.isSocket() && !d.isCharacterDevice() && !d.isBlockDevice()) {
        // DT_UNKNOWN (some filesystems): ask lstat.
        try {
          isDir = fs.lstatSync(real).isDirectory();
        } catch {
          /* the scan of the entry itself reports it */
        }
      }
      if (isDir && selector.mayDescend(p.toString('utf8'))) items.push({ key: Buffer.concat([name, SLASH]), path: p, real, descend: true });
    }
    const sorted = sortItems(items);
    for (let i = sorted.length - 1; i >= 0; i--) stack.push(sorted[i]!);
  }
}
