import fs from 'node:fs';

const SL = 0x2f;
const SLASH = Buffer.from('/');
/** Linux's limit on symlinks followed in one lookup (MAXSYMLINKS). */
const MAX_LINKS = 40;

/** Path components, without empty ones and ".": "/a//./b" → [a, b]. */
function split(p: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i === p.length || p[i] === SL) {
      if (i > start && !(i - start === 1 && p[start] === 0x2e)) out.push(p.subarray(start, i));
      start = i + 1;
    }
  }
  return out;
}

const isDotDot = (c: Buffer): boolean => c.length === 2 && c[0] === 0x2e && c[1] === 0x2e;

/**
 * Resolves policy paths inside a --root folder as the system in that folder would see them,
 * as if the folder were "/" (chroot semantics), without ever letting the host's kernel follow
 * a symlink out of it: every directory component is lstat'ed under the root; a symlink is
 * read and its target resolved again under the root — an absolute target from the root
 * (`img/var/lib -> /usr/share/doc` is `img/usr/share/doc`), a relative one from the link's
 * folder, ".." stopping at the root. The last component of a path is never followed: the
 * scanner records a symlink as a symlink. Resolved folders are cached, so each is resolved
 * once per run.
 *
 * What it cannot do: a folder inside the image that another user swaps for a symlink
 * between this resolution (or the walk's listing) and the read is followed by the kernel;
 * scan images that nobody else can write while integ reads them.
 */
export class RootResolver {
  private readonly root: Buffer;
  private readonly cache = new Map<string, Buffer[]>();

  constructor(root: string) {
    this.root = Buffer.from(root.replace(/\/+$/, ''), 'utf8');
  }

  private join(comps: Buffer[]): Buffer {
    if (!comps.length) return this.root.length ? this.root : SLASH;
    const parts: Buffer[] = [this.root];
    for (const c of comps) parts.push(SLASH, c);
    return Buffer.concat(parts);
  }

  /** Resolve `rest` starting from the (already resolved) components `start`. */
  private resolve(start: Buffer[], rest: Buffer[]): Buffer[] {
    const cur = [...start];
    const queue = [...rest];
    let links = 0;
    while (queue.length) {
      const c = queue.shift()!;
      if (isDotDot(c)) {
        cur.pop(); // at the root already: stays at the root
        continue;
      }
      cur.push(c);
      const here = this.join(cur);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(here);
      } catch {
        continue; // missing: reading below it reports ENOENT
      }
      if (!st.isSymbolicLink()) continue;
      if (++links > MAX_LINKS) throw Object.assign(new Error(`too many levels of symbolic links inside the root (${here.toString()})`), { code: 'ELOOP' });
      const target = fs.readlinkSync(here, { encoding: 'buffer' });
      cur.pop();
      if (target[0] === SL) cur.length = 0;
      queue.unshift(...split(target));
    }
    return cur;
  }

  /** Components, inside the root, of folder `dir` (a policy path) with every symlink resolved there. */
  private dir(comps: Buffer[]): Buffer[] {
    if (!comps.length) return [];
    const key = Buffer.concat(comps.flatMap((c) => [SLASH, c])).toString('latin1');
    const hit = this.cache.get(key);
    if (hit) return hit;
    const parent = this.dir(comps.slice(0, -1));
    const r = this.resolve(parent, [comps[comps.length - 1]!]);
    this.cache.set(key, r);
    return r;
  }

  /**
   * The host path to read for policy path `p`: its folder resolved inside the root, its last
   * component as it is (not followed). Throws an error with code ELOOP for a symlink loop.
   */
  real(p: Buffer): Buffer {
    const comps = split(p);
    if (!comps.length) return this.join([]);
    if (isDotDot(comps[comps.length - 1]!)) return this.join(this.dir(comps));
    return this.join([...this.dir(comps.slice(0, -1)), comps[comps.length - 1]!]);
  }
}
