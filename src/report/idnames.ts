import fs from 'node:fs';
import path from 'node:path';
import type { IdNames } from '../core/fsattrs.js';

function table(file: string): Map<number, string> {
  const m = new Map<number, string>();
  try {
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 3 && /^\d+$/.test(f[2]!) && !m.has(Number(f[2]))) m.set(Number(f[2]), f[0]!);
    }
  } catch {
    /* no such file: ids stay numeric */
  }
  return m;
}

const cache = new Map<string, IdNames>();

/** User and group names from ROOT/etc/passwd and ROOT/etc/group (numeric ids where unknown). */
export function idNames(root = '/'): IdNames {
  let n = cache.get(root);
  if (!n) {
    let users: Map<number, string> | null = null;
    let groups: Map<number, string> | null = null;
    n = {
      user: (id) => (users ??= table(path.join(root, 'etc/passwd'))).get(id),
      group: (id) => (groups ??= table(path.join(root, 'etc/group'))).get(id),
    };
    cache.set(root, n);
  }
  return n;
}
