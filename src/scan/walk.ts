import fs from 'node:fs';
import type { Selector } from '../core/selector.js';
import type { Rule } from '../core/types.js';

export type WalkEvent =
  | { kind: 'entry'; path: Buffer; real: Buffer; rule: Rule }
  | { kind: 'error'; path: Buffer; code: string; message: string };

const SLASH = Buffer.from('/');

/**
 * Walks the policy's roots depth-first, reading directories as bytes so that names that are
 * not valid UTF-8 (or contain newlines) are kept exactly. Symlinks are never followed (the
 * walk descends only into real directories, by d_type or lstat), so loops cannot occur and
 * nothing outside scope is read. Iterative, so trees hundreds of levels deep are fine.
 * Synchronous on purpose: the hash pool pulls from it lazily, and sync readdir is the
 * fastest way to list directories in Node.
 *
 * `root` is the --root prefix ("" for "/"); yielded paths are as the policy names them.
 */
export function* walk(selector: Selector, root: string): Generator<WalkEvent> {
  const rootBuf = Buffer.from(root.replace(/\/+$/, ''), 'utf8');
  const realOf = (p: Buffer): Buffer => (rootBuf.length ? Buffer.concat([rootBuf, p]) : p);
  for (const top of selector.roots) {
    const topBuf = Buffer.from(top, 'utf8');
    let st: fs.Stats;
    try {
      st = fs.lstatSync(realOf(topBuf));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      // A policy path this host does not have is simply empty scope, not an error.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') yield { kind: 'error', path: topBuf, code, message: (e as Error).message };
      continue;
    }
    const rule = selector.ruleFor(top);
    if (rule) yield { kind: 'entry', path: topBuf, real: realOf(topBuf), rule };
    if (!st.isDirectory()) continue;
    const stack: Buffer[] = [topBuf];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      const dirReal = realOf(dir);
      let names: fs.Dirent<Buffer>[];
      try {
        names = fs.readdirSync(dirReal, { withFileTypes: true, encoding: 'buffer' });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
        if (code === 'ENOENT') continue; // vanished: its own entry shows that
        yield { kind: 'error', path: dir, code, message: code === 'EACCES' ? 'permission denied (directory not listed)' : (e as Error).message };
        continue;
      }
      names.sort((a, b) => Buffer.compare(a.name, b.name));
      const prefix = dir.length === 1 ? dir : Buffer.concat([dir, SLASH]);
      const subdirs: Buffer[] = [];
      for (const d of names) {
        const p = Buffer.concat([prefix, d.name]);
        const ps = p.toString('utf8');
        let isDir = d.isDirectory();
        if (!isDir && !d.isFile() && !d.isSymbolicLink() && !d.isFIFO() && !d.isSocket() && !d.isCharacterDevice() && !d.isBlockDevice()) {
          // DT_UNKNOWN (some filesystems): ask lstat.
          try {
            isDir = fs.lstatSync(realOf(p)).isDirectory();
          } catch {
            /* the scan of the entry itself reports it */
          }
        }
        const r = selector.ruleFor(ps);
        if (r) yield { kind: 'entry', path: p, real: realOf(p), rule: r };
        if (isDir && selector.mayDescend(ps)) subdirs.push(p);
      }
      for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]!);
    }
  }
}
