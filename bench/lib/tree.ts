import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Bump when the layout or content generator changes, so stale caches are not reused. */
export const TREE_CACHE_DIR = path.join(os.tmpdir(), 'integ-bench-tree-v1');

export interface SyntheticSpec {
  /** number of small files */
  files: number;
  /** smallest and largest small-file size, bytes (inclusive) */
  minSize: number;
  maxSize: number;
  /** number of big files and the size of each, bytes */
  big: number;
  bigSize: number;
  /** small files per leaf directory, leaf directories per middle directory */
  perDir: number;
  dirsPerDir: number;
}

export interface TreeStats {
  /** regular files */
  files: number;
  /** bytes in regular files */
  bytes: number;
  dirs: number;
  symlinks: number;
  /** everything else (devices, fifos, sockets) */
  other: number;
  /** entries that could not be listed or read */
  unreadable: number;
}

/** Seeded PRNG (mulberry32): the same seed gives the same tree on every machine. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const POOL_SIZE = 32 * 1024 * 1024;

/** A pool of pseudo-random bytes; files are slices of it at pseudo-random offsets with a unique header. */
function makePool(seed: number): Buffer {
  const rnd = mulberry32(seed);
  const pool = Buffer.allocUnsafe(POOL_SIZE);
  for (let i = 0; i < POOL_SIZE; i += 4) pool.writeUInt32LE(Math.floor(rnd() * 4294967296), i);
  return pool;
}

export function syntheticName(spec: SyntheticSpec): string {
  const kib = (n: number): string => (n % 1024 === 0 ? `${n / 1024}k` : `${n}b`);
  return `files${spec.files}-${kib(spec.minSize)}-${kib(spec.maxSize)}-big${spec.big}x${Math.round(spec.bigSize / 1048576)}m`;
}

/** Where small file number i lives, relative to the tree root. */
export function smallFilePath(spec: SyntheticSpec, i: number): string {
  const leaf = Math.floor(i / spec.perDir);
  const mid = Math.floor(leaf / spec.dirsPerDir);
  return path.join('small', `m${String(mid).padStart(4, '0')}`, `l${String(leaf).padStart(6, '0')}`, `f${String(i).padStart(8, '0')}.dat`);
}

/**
 * The synthetic tree for `spec`, built once and cached under TREE_CACHE_DIR (a marker file
 * beside the tree records that it is complete; a half-built tree is removed and rebuilt).
 * Content is deterministic: mulberry32-seeded bytes, each file starting with its own index.
 */
export function ensureSyntheticTree(spec: SyntheticSpec, log: (m: string) => void): { root: string; stats: TreeStats; built: boolean; seconds: number } {
  const name = syntheticName(spec);
  const root = path.join(TREE_CACHE_DIR, name);
  const marker = path.join(TREE_CACHE_DIR, `${name}.done.json`);
  if (fs.existsSync(marker) && fs.existsSync(root)) {
    const stats = JSON.parse(fs.readFileSync(marker, 'utf8')) as TreeStats;
    return { root, stats, built: false, seconds: 0 };
  }
  const t0 = Date.now();
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
  const pool = makePool(0x1e5eed);
  const rnd = mulberry32(42);
  const stats: TreeStats = { files: 0, bytes: 0, dirs: 1, symlinks: 0, other: 0, unreadable: 0 };
  const header = Buffer.alloc(16);
  let lastDir = '';
  let lastReport = Date.now();
  for (let i = 0; i < spec.files; i++) {
    const rel = smallFilePath(spec, i);
    const dir = path.join(root, path.dirname(rel));
    if (dir !== lastDir) {
      stats.dirs += countNewDirs(root, dir);
      fs.mkdirSync(dir, { recursive: true });
      lastDir = dir;
    }
    const size = spec.minSize + Math.floor(rnd() * (spec.maxSize - spec.minSize + 1));
    const off = Math.floor(rnd() * (POOL_SIZE - size));
    const fd = fs.openSync(path.join(root, rel), 'w', 0o644);
    try {
      const hlen = Math.min(16, size);
      header.fill(0);
      header.writeUInt32LE(i, 0);
      header.writeUInt32LE(0x696e7465, 4);
      fs.writeSync(fd, header, 0, hlen);
      if (size > hlen) fs.writeSync(fd, pool, off, size - hlen);
    } finally {
      fs.closeSync(fd);
    }
    stats.files++;
    stats.bytes += size;
    if (Date.now() - lastReport > 5000) {
      log(`  building ${name}: ${i + 1}/${spec.files} small files`);
      lastReport = Date.now();
    }
  }
  if (spec.big > 0) {
    const bigDir = path.join(root, 'big');
    fs.mkdirSync(bigDir, { recursive: true });
    stats.dirs++;
    const CH = 1024 * 1024;
    const chunk = Buffer.allocUnsafe(CH);
    for (let b = 0; b < spec.big; b++) {
      log(`  building ${name}: big file ${b + 1}/${spec.big} (${Math.round(spec.bigSize / 1048576)} MiB)`);
      const fd = fs.openSync(path.join(bigDir, `big${b}.dat`), 'w', 0o644);
      try {
        for (let pos = 0, c = 0; pos < spec.bigSize; pos += CH, c++) {
          const n = Math.min(CH, spec.bigSize - pos);
          const o = Math.floor(rnd() * (POOL_SIZE - CH));
          pool.copy(chunk, 0, o, o + CH);
          chunk.writeUInt32LE(b, 0);
          chunk.writeUInt32LE(c, 4);
          fs.writeSync(fd, chunk, 0, n);
        }
      } finally {
        fs.closeSync(fd);
      }
      stats.files++;
      stats.bytes += spec.bigSize;
    }
  }
  fs.writeFileSync(marker, JSON.stringify(stats));
  return { root, stats, built: true, seconds: (Date.now() - t0) / 1000 };
}

/** How many directories between root and dir do not exist yet (for the stats). */
function countNewDirs(root: string, dir: string): number {
  let n = 0;
  for (let d = dir; d.length > root.length && !fs.existsSync(d); d = path.dirname(d)) n++;
  return n;
}

/**
 * A tree of many tiny files for the memory-scaling run: `groups` top directories of
 * `perGroup` files each (1000 per leaf directory), so that a policy over group 0 alone
 * covers the first perGroup files and one over the whole tree covers all of them.
 * Each file holds a few bytes (its own number), so content is hashed but costs little.
 */
export function ensureTinyTree(groups: number, perGroup: number, log: (m: string) => void): { root: string; built: boolean; seconds: number } {
  const name = `tiny-${groups}x${perGroup}`;
  const root = path.join(TREE_CACHE_DIR, name);
  const marker = path.join(TREE_CACHE_DIR, `${name}.done.json`);
  if (fs.existsSync(marker) && fs.existsSync(root)) return { root, built: false, seconds: 0 };
  const t0 = Date.now();
  fs.rmSync(root, { recursive: true, force: true });
  let lastReport = Date.now();
  for (let g = 0; g < groups; g++) {
    for (let i = 0; i < perGroup; i++) {
      const leaf = path.join(root, `g${g}`, `l${String(Math.floor(i / 1000)).padStart(5, '0')}`);
      if (i % 1000 === 0) fs.mkdirSync(leaf, { recursive: true });
      fs.writeFileSync(path.join(leaf, `t${i}`), `${g}:${i}\n`);
      if (Date.now() - lastReport > 5000) {
        log(`  building ${name}: ${g * perGroup + i + 1}/${groups * perGroup} tiny files`);
        lastReport = Date.now();
      }
    }
  }
  fs.writeFileSync(marker, JSON.stringify({ groups, perGroup }));
  return { root, built: true, seconds: (Date.now() - t0) / 1000 };
}

/**
 * Walk a real tree without following symlinks, count what is there and, with `read`, read
 * every regular file once so that every tool afterwards sees a warm page cache (and warm
 * dentry/inode caches from the walk itself). Sync I/O with one reusable buffer: memory stays flat.
 */
export function scanTree(roots: string[], read: boolean): TreeStats {
  const stats: TreeStats = { files: 0, bytes: 0, dirs: 0, symlinks: 0, other: 0, unreadable: 0 };
  const buf = Buffer.allocUnsafe(1024 * 1024);
  const SLASH = Buffer.from('/');
  // Paths as bytes, so names that are not UTF-8 are still found.
  const stack: Buffer[] = roots.map((r) => Buffer.from(r));
  while (stack.length > 0) {
    const p = stack.pop()!;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      stats.unreadable++;
      continue;
    }
    if (st.isDirectory()) {
      stats.dirs++;
      try {
        for (const n of fs.readdirSync(p, { encoding: 'buffer' })) stack.push(Buffer.concat([p, SLASH, n]));
      } catch {
        stats.unreadable++;
      }
    } else if (st.isSymbolicLink()) stats.symlinks++;
    else if (st.isFile()) {
      stats.files++;
      stats.bytes += st.size;
      if (read) {
        try {
          const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
          try {
            while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
          } finally {
            fs.closeSync(fd);
          }
        } catch {
          stats.unreadable++;
        }
      }
    } else stats.other++;
  }
  return stats;
}

/**
 * Drop the page cache, dentries and inodes (`sync; echo 3 > /proc/sys/vm/drop_caches`), so the
 * next run reads from the disk as a cron job on an idle host does. Needs root (and a kernel
 * that allows it, not every container does): returns null when done, else why not.
 */
export function dropCaches(): string | null {
  try {
    execFileSync('sync');
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    return `could not drop the page cache (${code || (e as Error).message}; needs root and a writable /proc/sys/vm/drop_caches): these runs are NOT cold`;
  }
}
