import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ExtraAlgo, PackageOwner } from '../core/types.js';

/** The digest a package manager recorded for a file. */
export type PackageDigestAlgo = ExtraAlgo;

/**
 * Package provenance from dpkg's own database, read as files (dpkg is never run, so this works
 * under --root on a mounted image too):
 * - `var/lib/dpkg/status`: installed packages, their versions and their conffiles with md5;
 * - `var/lib/dpkg/info/<pkg>[:<arch>].md5sums`: md5 of every regular file the package shipped;
 * - `var/lib/dpkg/info/<pkg>[:<arch>].list`: every path it owns (directories, symlinks too);
 * - `var/lib/dpkg/diversions`: files dpkg installs under another name than the package lists.
 * md5 is what dpkg records: it catches accidental and naive changes, not a crafted collision.
 * Debian's merged /usr is handled: /bin/ls and /usr/bin/ls are the same file when /bin is a
 * symlink, whichever name the package lists.
 */

interface Owned {
  pkg: string; // key name[:arch]
  digest: string | null;
  algo: PackageDigestAlgo;
  conffile: boolean;
}

/** A dpkg diversion of a path: where other packages' file of that name goes instead. */
interface Diversion {
  to: string;
  by: string | null; // the diverting package's name (its own file stays put); null: a local diversion, which exempts none
}

export interface DpkgPackage {
  name: string;
  arch: string;
  version: string;
}

/** Which installed package owns which path, and the digest it recorded (dpkg or rpm). */
export class PackageIndex {
  private readonly paths = new Map<string, Owned>();
  private readonly packages = new Map<string, DpkgPackage>();
  private readonly aliased: string[];
  private diversions: Map<string, Diversion> | null = null;

  constructor(
    readonly root: string,
    readonly manager: 'dpkg' | 'rpm' = 'dpkg',
  ) {
    // Merged /usr: these top-level names are symlinks into /usr on the scanned system.
    this.aliased = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'].filter((d) => {
      try {
        return fs.lstatSync(path.join(root || '/', d)).isSymbolicLink();
      } catch {
        return false;
      }
    });
  }

  get size(): number {
    return this.paths.size;
  }

  /** Add a package (from status). */
  addPackage(p: DpkgPackage): void {
    this.packages.set(`${p.name}:${p.arch}`, p);
    if (!this.packages.has(p.name)) this.packages.set(p.name, p);
  }

  /**
   * Divert `from` to `to` (dpkg-divert): a file `from` of any package but `by` (a name, without
   * :arch; null for none) is recorded, and looked up, at `to`. Call it before any addPath.
   */
  addDiversion(from: string, to: string, by: string | null): void {
    (this.diversions ??= new Map()).set(from, { to, by });
  }

  /** Each diversion as [from, to]. */
  *divertedPaths(): Iterable<[string, string]> {
    for (const [from, d] of this.diversions ?? []) yield [from, d.to];
  }

  /**
   * Record that `pkg` owns `p` (as the package lists it: a diversion moves it), with the digest
   * it shipped (null: not a regular file, or unknown).
   */
  addPath(p: string, pkg: string, digest: string | null, conffile = false, algo: PackageDigestAlgo = 'md5'): void {
    // one Map lookup, and only when there are diversions: this runs for every md5sums line
    if (this.diversions !== null) p = this.diverted(p, pkg);
    const cur = this.paths.get(p);
    if (!cur) this.paths.set(p, { pkg, digest, algo, conffile });
    else if (conffile) this.paths.set(p, { pkg, digest, algo, conffile: true });
    else if (cur.digest === null && digest !== null && cur.pkg === pkg) Object.assign(cur, { digest, algo });
  }

  /**
   * Where dpkg put `pkg`'s file `p`. The path is matched as dpkg does, literally (a diversion of
   * /bin/x does not divert a usr/bin/x); a `to` under an alias, /bin/x.y, is still found as
   * /usr/bin/x.y by candidates(). The diverter's own file keeps `from`, and as no other package's
   * entry lands there, it owns `from` whatever order the packages are read in.
   */
  private diverted(p: string, pkg: string): string {
    const d = this.diversions!.get(p);
    if (d === undefined) return p;
    const by = d.by;
    // pkg is name or name:arch (a status key, or an info file's name)
    if (by !== null && pkg.startsWith(by) && (pkg.length === by.length || pkg.charCodeAt(by.length) === 58)) return p;
    return d.to;
  }

  /** Every path lookup(p) tries: p, and its merged-/usr alias. */
  candidates(p: string): string[] {
    const out = [p];
    for (const d of this.aliased) {
      if (p.startsWith(`/usr/${d}/`)) out.push(p.slice(4));
      else if (p.startsWith(`/${d}/`)) out.push(`/usr${p}`);
    }
    return out;
  }

  /** Which package owns a path (as the policy names it), and what it shipped there. */
  lookup(p: string): { pkg: DpkgPackage; digest: string | null; algo: PackageDigestAlgo; conffile: boolean } | undefined {
    // the path as given first: nearly every hit, and no list of candidates to build
    const direct = this.owned(p);
    if (direct) return direct;
    for (const c of this.candidates(p)) {
      const o = c === p ? undefined : this.owned(c);
      if (o) return o;
    }
    return undefined;
  }

  private owned(c: string): { pkg: DpkgPackage; digest: string | null; algo: PackageDigestAlgo; conffile: boolean } | undefined {
    const o = this.paths.get(c);
    if (!o) return undefined;
    const pkg = this.packages.get(o.pkg) ?? this.packages.get(o.pkg.split(':')[0]!);
    if (!pkg) return undefined; // listed by a package that is no longer installed
    return { pkg, digest: o.digest, algo: o.algo, conffile: o.conffile };
  }

  /**
   * Provenance of a path: owner, version, and whether `digest` (of the content now, in the
   * algorithm lookup() names; null when there is none, e.g. removed) is what the package shipped.
   */
  owner(p: string, digest: string | null): PackageOwner | null {
    const o = this.lookup(p);
    if (!o) return null;
    return {
      manager: this.manager,
      name: o.pkg.name,
      version: o.pkg.version,
      digestMatches: digest === null || o.digest === null ? null : digest === o.digest,
      conffile: o.conffile,
    };
  }
}

const INSTALLED = new Set(['installed', 'half-configured', 'unpacked', 'half-installed', 'triggers-awaited', 'triggers-pending']);

/** Parse dpkg's status file into `idx`: installed packages and their conffiles. */
export function parseStatus(text: string, idx: PackageIndex): void {
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last = '';
    for (const line of stanza.split('\n')) {
      if (/^\s/.test(line) && last) fields.set(last, `${fields.get(last)}\n${line}`);
      else {
        const m = /^([A-Za-z0-9-]+):\s?(.*)$/.exec(line);
        if (m) {
          last = m[1]!;
          fields.set(last, m[2]!);
        }
      }
    }
    const name = fields.get('Package');
    const status = fields.get('Status')?.trim().split(/\s+/)[2];
    if (!name || !status || !INSTALLED.has(status)) continue;
    const arch = fields.get('Architecture') ?? 'all';
    const pkg = { name, arch, version: fields.get('Version') ?? '?' };
    idx.addPackage(pkg);
    for (const l of (fields.get('Conffiles') ?? '').split('\n')) {
      const m = /^\s+(\/\S+)\s+([0-9a-f]{32}|newconffile)(?:\s+\S+)*\s*$/.exec(l);
      if (m) idx.addPath(m[1]!, `${name}:${arch}`, m[2] === 'newconffile' ? null : m[2]!, true);
    }
  }
}

/** One line of an md5sums file: the digest, blanks, the path (relative, or with leading slashes). */
const MD5SUMS_LINE = /^([0-9a-f]{32})\s+(.+)$/;

/** A lowercase hex digit (what MD5SUMS_LINE takes) */
const isHex = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 97 && c <= 102);
const LS = Buffer.from('\u2028');
const PS = Buffer.from('\u2029');

/**
 * The lines of one package's md5sums (its bytes, UTF-8) into `idx`, exactly as MD5SUMS_LINE reads
 * each line of the decoded text (a property test holds the two together). The line dpkg writes,
 * 32 hex digits, two spaces and the path, is taken apart by hand: a regular expression, its match
 * array and a replace() for each of /usr's ~96,000 lines were most of the index's load time, which
 * a baseline waits for before it starts. Each path is decoded on its own, as one flat string: a
 * key made of pieces ('/' + a slice of the file's text) kept the whole text alive and cost every
 * lookup that compared with it a flattening (~150 ms of a baseline's main thread on /usr).
 * Any other line, or a file with characters `.` does not match, goes through the expression.
 * `buf` is changed (a '/' written before each path).
 */
export function parseMd5sums(buf: Buffer, pkgKey: string, idx: PackageIndex): void {
  const plain = buf.indexOf(13) < 0 && buf.indexOf(LS) < 0 && buf.indexOf(PS) < 0;
  for (let i = 0; i < buf.length; ) {
    let nl = buf.indexOf(10, i);
    if (nl < 0) nl = buf.length;
    // the path's first byte printable ASCII and not a blank (else the expression decides where it starts)
    let fast = plain && nl - i > 34 && buf[i + 32] === 32 && buf[i + 33] === 32 && buf[i + 34]! > 32 && buf[i + 34]! < 127;
    for (let k = i; fast && k < i + 32; k++) fast = isHex(buf[k]!);
    if (fast) {
      let j = i + 34;
      while (buf[j] === 47) j++; // the leading slashes go: a path is /-rooted once
      buf[j - 1] = 47; // the byte before the path (a blank or a slash) becomes that one '/'
      idx.addPath(buf.toString('utf8', j - 1, nl), pkgKey, buf.toString('latin1', i, i + 32));
    } else {
      const m = MD5SUMS_LINE.exec(buf.toString('utf8', i, nl));
      if (m) idx.addPath(`/${m[2]!.replace(/^\/+/, '')}`, pkgKey, m[1]!);
    }
    i = nl + 1;
  }
}

/**
 * The lines of one package's .list (its bytes, UTF-8) into `idx`: each absolute path but "/.",
 * without a digest. Each decoded on its own, a flat string, as parseMd5sums does (a line split out
 * of the decoded text would keep that text alive and be flattened by its first lookup).
 */
function parseList(buf: Buffer, pkgKey: string, idx: PackageIndex): void {
  for (let i = 0; i < buf.length; ) {
    let nl = buf.indexOf(10, i);
    if (nl < 0) nl = buf.length;
    if (buf[i] === 47 && !(nl - i === 2 && buf[i + 1] === 46)) idx.addPath(buf.toString('utf8', i, nl), pkgKey, null);
    i = nl + 1;
  }
}

/**
 * dpkg's diversions file (its bytes, UTF-8) into `idx`: groups of three lines, the diverted path,
 * where it goes instead, and the diverting package (":" for a local one, the admin's). A group that
 * is not two absolute paths and a name is skipped, and so is an incomplete one at the end: a
 * damaged file costs those diversions, not the index.
 */
export function parseDiversions(buf: Buffer, idx: PackageIndex): void {
  const lines = buf.toString('utf8').split('\n');
  for (let k = 0; k + 2 < lines.length; k += 3) {
    const [from, to, by] = [lines[k]!, lines[k + 1]!, lines[k + 2]!];
    if (from.startsWith('/') && to.startsWith('/') && by !== '') idx.addDiversion(from, to, by === ':' ? null : by);
  }
}

/** Above this many paths to look for, reading every file in full costs less than searching each for them. */
const MAX_NEEDLES = 16;

/**
 * What a package's md5sums or .list must contain to say anything about `paths`: each path every
 * way lookup() tries it (its merged-/usr alias), and the old name of a diversion whose target is
 * one of those (a package lists the diverted file under its old name). A file lists a path as a
 * line that ends with it, without its leading slash (md5sums: "DIGEST  usr/bin/x", .list:
 * "/usr/bin/x"); a file without any of those line ends cannot list one of those paths, so it need
 * not be parsed. The whole path, not its last name: a folder's finding such as /usr/local/bin would
 * otherwise make nearly every package's file look relevant ("bin"). null where this does not pay
 * (too many paths) or cannot be relied on (a path that is not valid UTF-8: the file's bytes would
 * not contain its decoded form).
 */
function pathsToFind(paths: readonly string[], idx: PackageIndex): Array<{ line: Buffer; rel: Buffer }> | null {
  const forms = new Set<string>();
  for (const p of paths) {
    if (!p.startsWith('/') || p.includes('\uFFFD')) return null;
    for (const c of idx.candidates(p)) forms.add(c);
  }
  for (const [from, to] of idx.divertedPaths()) if (forms.has(to)) forms.add(from);
  if (forms.size > MAX_NEEDLES) return null;
  return [...forms].map((f) => {
    const rel = Buffer.from(f.slice(1), 'utf8'); // as md5sums writes it; a .list line has the slash before it
    return { line: Buffer.concat([rel, Buffer.from('\n')]), rel };
  });
}

/** Whether a package file's bytes have a line that ends with one of the needles (the last line may lack its newline). */
function mentions(bytes: Buffer, needles: ReadonlyArray<{ line: Buffer; rel: Buffer }>): boolean {
  for (const n of needles) {
    if (bytes.includes(n.line)) return true;
    if (bytes.length >= n.rel.length && bytes.compare(n.rel, 0, n.rel.length, bytes.length - n.rel.length) === 0) return true;
  }
  return false;
}

/**
 * Load ROOT/var/lib/dpkg, or null when there is no dpkg database there. `digestsOnly`: skip the
 * .list files, which only add paths without a digest (directories, symlinks): what baseline's
 * comparison needs, in ~half the time (124,000 lines fewer on /usr).
 *
 * `only`: the index is asked about these paths and no others (check's findings): a package file
 * that cannot mention any of them (pathsToFind) is read but not parsed. What lookup() says of
 * those paths is what the full index says: the files that list them are parsed in the same order.
 * On /usr with a few findings: ~40 ms instead of ~240 ms, which a check paid after its scan.
 */
export function loadDpkg(root: string, digestsOnly = false, only?: readonly string[]): PackageIndex | null {
  const base = path.join(root || '/', 'var/lib/dpkg');
  let status: string;
  try {
    status = fs.readFileSync(path.join(base, 'status'), 'utf8');
  } catch {
    return null;
  }
  const idx = new PackageIndex(root, 'dpkg');
  // before any path is added: status's conffiles are diverted too
  try {
    parseDiversions(fs.readFileSync(path.join(base, 'diversions')), idx);
  } catch {
    // none (a system that never diverted anything has no such file)
  }
  parseStatus(status, idx);
  const needles = only ? pathsToFind(only, idx) : null;
  let names: string[] = [];
  try {
    names = fs.readdirSync(path.join(base, 'info'));
  } catch {
    return idx;
  }
  // md5sums first, so .list entries only add what they lack (directories, symlinks).
  for (const ext of digestsOnly ? (['.md5sums'] as const) : (['.md5sums', '.list'] as const)) {
    for (const n of names) {
      if (!n.endsWith(ext)) continue;
      const pkgKey = n.slice(0, -ext.length); // name or name:arch, as dpkg named the file
      let bytes: Buffer;
      try {
        bytes = fs.readFileSync(path.join(base, 'info', n));
      } catch {
        continue;
      }
      if (needles && !mentions(bytes, needles)) continue;
      if (ext === '.md5sums') parseMd5sums(bytes, pkgKey, idx);
      else parseList(bytes, pkgKey, idx);
    }
  }
  return idx;
}

/** A packaged file whose content is not what its package shipped (found by `baseline`). */
export interface PackageMismatch {
  path: Buffer;
  package: { manager: 'dpkg' | 'rpm'; name: string; version: string };
  algorithm: PackageDigestAlgo;
  expected: string;
  actual: string;
  conffile: boolean;
}

/** A digest of a regular file (opened without following symlinks), or null when it cannot be read. */
export function fileDigest(real: string | Buffer, algo: PackageDigestAlgo): string | null {
  let fd: number;
  try {
    fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    if (!fs.fstatSync(fd).isFile()) return null;
    const h = crypto.createHash(algo);
    const buf = Buffer.allocUnsafe(256 * 1024);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
    return h.digest('hex');
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}
