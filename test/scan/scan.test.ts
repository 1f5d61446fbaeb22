import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cmpText } from '../../src/core/entry-cmp.js';
import { Selector } from '../../src/core/selector.js';
import { md5Groups, releaseSpareWorkers, scanBatches } from '../../src/scan/hash-pool.js';
import { fileStatOf, NOT_CACHED, readNoWait } from '../../src/scan/fileio.js';
import { advisedBatches, hashFile, recordFromStat, scanBatch, scanEntry, type ScanJob, type ScanResult } from '../../src/scan/scan-entry.js';
import { type DirHandle, MAX_HELD_DIRS, walk, type WalkEvent } from '../../src/scan/walk.js';
import { direntReader, forceDirReader } from '../../src/scan/dirents.js';
import { createRequire } from 'node:module';
import { rule } from '../helpers/build.js';
import { tmpdir } from '../helpers/cli.js';
import { evict, kernelNoWait, whyNotEvicted } from '../helpers/page-cache.js';

/** The reference digest: blake3-wasm, independent of integ's SIMD implementation. */
const b3 = createRequire(import.meta.url)('blake3-wasm') as { createHash(): { update(b: Uint8Array | string): { digest(e: 'hex'): string } } };
const blake3Hex = (d: Uint8Array | string): string => b3.createHash().update(d).digest('hex');

const BAD = Buffer.concat([Buffer.from('bad'), Buffer.from([0xff, 0xfe]), Buffer.from('name')]);
let dir: string;
let tree: string;
let server: net.Server;

function job(p: string | Buffer, over: Partial<ScanJob> = {}): ScanJob {
  const b = Buffer.isBuffer(p) ? p : Buffer.from(p);
  return { id: 1, path: b, real: b, algos: ['blake3', 'sha256'], growing: false, prefixLen: null, ...over };
}

async function collect(jobs: ScanJob[], n: number): Promise<ScanResult[]> {
  const out: ScanResult[] = [];
  for await (const batch of scanBatches(jobs, n, new AbortController().signal)) for (const [, r] of batch) out.push(r);
  return out.sort((a, b) => a.id - b.id);
}

beforeAll(async () => {
  dir = tmpdir();
  tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  fs.writeFileSync(path.join(tree, 'file'), 'hello\n');
  fs.writeFileSync(path.join(tree, 'empty'), '');
  fs.writeFileSync(Buffer.concat([Buffer.from(`${tree}/`), BAD]), 'x');
  fs.writeFileSync(path.join(tree, 'new\nline'), 'y');
  execFileSync('mkfifo', [path.join(tree, 'fifo')]);
  fs.symlinkSync('loop2', path.join(tree, 'loop1'));
  fs.symlinkSync('loop1', path.join(tree, 'loop2'));
  fs.symlinkSync('/', path.join(tree, 'to-root'));
  fs.mkdirSync(path.join(tree, 'sub'));
  fs.symlinkSync('..', path.join(tree, 'sub', 'up'));
  const fd = fs.openSync(path.join(tree, 'sparse'), 'w');
  fs.ftruncateSync(fd, 64 * 1024 * 1024);
  fs.closeSync(fd);
  server = net.createServer().listen(path.join(tree, 'sock'));
  await new Promise((r) => server.once('listening', r));
});

afterAll(() => {
  server?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('walk', () => {
  it('yields every entry exactly once, with non-UTF-8 and newline names as exact bytes, never following symlinks', () => {
    const sel = new Selector({ exclude: [], rules: [rule({ paths: [`${tree}/**`] })] });
    const paths = [...walk(sel, '')].map((e) => (e.kind === 'entry' ? e.path : Buffer.from('ERR')));
    const names = paths.map((p) => p.subarray(tree.length).toString('latin1'));
    expect(names.sort()).toEqual(
      ['', '/bad\xff\xfename', '/empty', '/fifo', '/file', '/loop1', '/loop2', '/new\nline', '/sock', '/sparse', '/sub', '/sub/up', '/to-root'].sort(),
    );
    expect(paths.some((p) => p.equals(Buffer.concat([Buffer.from(`${tree}/`), BAD])))).toBe(true);
  });

  it('yields paths in global byte order (what ORDER BY path gives), even where depth-first order differs', () => {
    const t = path.join(dir, 'order');
    for (const d of ['a', 'a/b', 'a-b', 'a.b', 'a0', 'b', 'B', 'a/b/c']) fs.mkdirSync(path.join(t, d), { recursive: true });
    for (const f of ['a/x', 'a/b/c/y', 'a-b/z', 'a!', 'a.b/w', 'é', 'z', 'a/b-c']) fs.writeFileSync(path.join(t, f), '');
    fs.writeFileSync(Buffer.from(`${t}/a\xff`, 'latin1'), '');
    const sel = new Selector({ exclude: [], rules: [rule({ paths: [`${t}/**`, `${t}-sibling/**`] })] });
    fs.mkdirSync(`${t}-sibling`);
    fs.writeFileSync(`${t}-sibling/s`, '');
    const paths = [...walk(sel, '')].flatMap((e) => (e.kind === 'entry' ? [e.path] : []));
    expect(paths.length).toBe(1 + 8 + 9 + 2);
    const sorted = [...paths].sort(Buffer.compare);
    expect(paths.map((p) => p.toString('latin1'))).toEqual(sorted.map((p) => p.toString('latin1')));
  });

  it('reads under --root but reports paths as the policy names them', () => {
    const sel = new Selector({ exclude: [], rules: [rule({ paths: ['/tree/file'] })] });
    const ev = [...walk(sel, dir)];
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({ kind: 'entry' });
    const e = ev[0] as { path: Buffer; real: Buffer };
    expect(e.path.toString()).toBe('/tree/file');
    expect(e.real.toString()).toBe(`${dir}/tree/file`);
  });

  it('handles a tree 400 levels deep and a directory with 20 000 entries', () => {
    const deep = path.join(dir, 'deep');
    let p = deep;
    for (let i = 0; i < 400; i++) p = path.join(p, 'd');
    fs.mkdirSync(p, { recursive: true });
    fs.writeFileSync(path.join(p, 'leaf'), 'leaf');
    const wide = path.join(dir, 'wide');
    fs.mkdirSync(wide);
    for (let i = 0; i < 20000; i++) fs.writeFileSync(path.join(wide, `f${i}`), '');
    const sel = new Selector({ exclude: [], rules: [rule({ paths: [`${deep}/**`, `${wide}/**`] })] });
    let n = 0;
    let leaf = false;
    for (const e of walk(sel, '')) {
      if (e.kind === 'entry') n++;
      if (e.kind === 'entry' && e.path.toString().endsWith('/leaf')) leaf = true;
    }
    expect(leaf).toBe(true);
    expect(n).toBe(1 + 400 + 1 + 1 + 20000);
  });
});

describe('walk: getdents64 reader', () => {
  const entries = (sel: Selector): string[] => [...walk(sel, '')].map((e) => (e.kind === 'entry' ? e.path.toString('latin1') : `ERR ${e.code} ${e.path}`));

  it('lists exactly what fs.opendir lists, in the same order (non-UTF-8 names, 20 000 entries across many getdents64 calls)', () => {
    if (!direntReader()) return console.log('skipped: koffi or getdents64 not available here (the walk uses fs.opendirSync)');
    const sel = new Selector({ exclude: [], rules: [rule({ paths: [`${tree}/**`, `${dir}/wide/**`, `${dir}/order/**`] })] });
    const fast = entries(sel);
    forceDirReader('node');
    let slow: string[];
    try {
      slow = entries(sel);
    } finally {
      forceDirReader(null);
    }
    expect(fast.length).toBeGreaterThan(20000);
    expect(fast).toEqual(slow);
  });

  it('does not follow a directory swapped for a symlink after its parent was listed', () => {
    if (!direntReader()) return console.log('skipped: koffi or getdents64 not available here');
    const t = path.join(dir, 'swap');
    fs.mkdirSync(path.join(t, 'a'), { recursive: true });
    fs.writeFileSync(path.join(t, 'a', 'inside'), '');
    const elsewhere = path.join(dir, 'elsewhere');
    fs.mkdirSync(elsewhere);
    fs.writeFileSync(path.join(elsewhere, 'outside-marker'), '');
    const sel = new Selector({ exclude: [], rules: [rule({ paths: [`${t}/**`] })] });
    const seen: string[] = [];
    for (const e of walk(sel, '')) {
      if (e.kind !== 'entry') continue;
      seen.push(e.path.toString());
      // The walk has yielded a/ itself and lists it next: swap it for a symlink now.
      if (e.path.toString() === path.join(t, 'a')) {
        fs.renameSync(path.join(t, 'a'), path.join(t, 'a.moved'));
        fs.symlinkSync(elsewhere, path.join(t, 'a'));
        expect(fs.lstatSync(path.join(t, 'a')).isSymbolicLink()).toBe(true);
      }
    }
    expect(seen).toContain(path.join(t, 'a'));
    expect(seen.some((p) => p.includes('outside-marker'))).toBe(false);
    expect(seen.some((p) => p.endsWith('/inside'))).toBe(false);
  });
});

describe('scanEntry', () => {
  const buf = Buffer.allocUnsafe(1 << 20);

  it('hashes regular files with every algorithm of the policy', () => {
    const r = scanEntry(job(path.join(tree, 'file')), buf);
    expect(r.ok).toBe(true);
    expect(r.rec).toMatchObject({ type: 'file', size: 6n, blake3: blake3Hex('hello\n'), sha256: crypto.createHash('sha256').update('hello\n').digest('hex') });
  });

  it('records FIFOs, sockets and devices by metadata without opening them (a FIFO would block)', () => {
    for (const [name, type] of [
      ['fifo', 'fifo'],
      ['sock', 'socket'],
    ] as const) {
      const r = scanEntry(job(path.join(tree, name)), buf);
      expect(r.ok).toBe(true);
      expect(r.rec).toMatchObject({ type, blake3: null, sha256: null });
    }
    const dev = scanEntry(job('/dev/null'), buf);
    expect(dev.rec).toMatchObject({ type: 'chardev', blake3: null });
  });

  it('records symlinks by target, loops included', () => {
    expect(scanEntry(job(path.join(tree, 'loop1')), buf).rec?.target?.toString()).toBe('loop2');
    expect(scanEntry(job(path.join(tree, 'to-root')), buf).rec).toMatchObject({ type: 'symlink', blake3: null });
  });

  it('hashes zero-byte and sparse files', () => {
    expect(scanEntry(job(path.join(tree, 'empty')), buf).rec?.blake3).toBe(blake3Hex(''));
    const sp = scanEntry(job(path.join(tree, 'sparse'), { algos: ['sha256'] }), buf);
    expect(sp.rec?.size).toBe(64n * 1024n * 1024n);
    expect(sp.rec?.sha256).toBe(
      crypto
        .createHash('sha256')
        .update(Buffer.alloc(64 * 1024 * 1024))
        .digest('hex'),
    );
  });

  it('reports a file that vanished with ENOENT', () => {
    expect(scanEntry(job(path.join(tree, 'nope')), buf)).toMatchObject({ ok: false, code: 'ENOENT', rec: null });
  });

  it('refuses to hash a file swapped between lstat and open', () => {
    const a = path.join(dir, 'swap-a');
    const b = path.join(dir, 'swap-b');
    fs.writeFileSync(a, 'original');
    fs.writeFileSync(b, 'attacker');
    const st = fileStatOf(fs.lstatSync(a, { bigint: true }));
    fs.renameSync(b, a); // now `a` is another inode
    const j = job(a);
    const r = hashFile(j, st, recordFromStat(j.path, st), buf);
    expect(r).toMatchObject({ ok: false, code: 'ERACE' });
    expect(r.rec?.blake3).toBeNull();
  });

  it('refuses to follow a file replaced by a symlink between lstat and open', () => {
    const a = path.join(dir, 'swap-l');
    fs.writeFileSync(a, 'x');
    const st = fileStatOf(fs.lstatSync(a, { bigint: true }));
    fs.rmSync(a);
    fs.symlinkSync('/etc/passwd', a);
    const j = job(a);
    expect(hashFile(j, st, recordFromStat(j.path, st), buf)).toMatchObject({ ok: false, code: 'ELOOP' });
  });

  it('a file modified between lstat and the read is ECHANGED, not a digest of other bytes under the old size and mtime', () => {
    const a = path.join(dir, 'grew');
    fs.writeFileSync(a, 'short');
    const st = fileStatOf(fs.lstatSync(a, { bigint: true }));
    fs.appendFileSync(a, ' and then some more');
    const j = job(a);
    const r = hashFile(j, st, recordFromStat(j.path, st), buf);
    expect(r).toMatchObject({ ok: false, code: 'ECHANGED', rec: { blake3: null, sha256: null } });
  });

  /** lstat a 1000-byte file, then replace it with what `swapIn` makes; hash it with xattrs and flags on. */
  function hashSwapped(name: string, swapIn: (p: string) => () => void): ScanResult {
    const a = path.join(dir, name);
    fs.writeFileSync(a, 'x'.repeat(1000));
    const st = fileStatOf(fs.lstatSync(a, { bigint: true }));
    fs.rmSync(a);
    const undo = swapIn(a);
    try {
      const j = job(a, { xattrs: true, flags: true });
      return hashFile(j, st, recordFromStat(j.path, st), buf);
    } finally {
      undo();
      fs.rmSync(a);
    }
  }

  it('a file swapped for a FIFO with a writer between lstat and open: ERACE, not an I/O error, and no hang', () => {
    const r = hashSwapped('swap-fifo', (a) => {
      execFileSync('mkfifo', [a]);
      // a writer that never writes: a non-blocking read gets EAGAIN
      const writer = fs.openSync(a, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
      return () => fs.closeSync(writer);
    });
    expect(r).toMatchObject({ ok: false, code: 'ERACE', rec: { blake3: null, sha256: null } });
    expect(r.rec?.flags).toBeUndefined();
  });

  it.skipIf(process.getuid?.() !== 0)('a file swapped for an endless device between lstat and open is not read for ever: ERACE', () => {
    const r = hashSwapped('swap-dev', (a) => {
      execFileSync('mknod', [a, 'c', '1', '5']); // /dev/zero's numbers
      return () => undefined;
    });
    expect(r).toMatchObject({ ok: false, code: 'ERACE', rec: { blake3: null, sha256: null } });
    expect(r.rec?.flags).toBeUndefined();
  });

  it('agrees with the reference over many reads, with the prefix digest taken across a read boundary', () => {
    const f = path.join(dir, 'multi');
    const data = crypto.randomBytes(700_001);
    fs.writeFileSync(f, data);
    const r = scanEntry(job(f, { growing: true, prefixLen: 300_000 }), buf);
    expect(r.rec).toMatchObject({
      blake3: blake3Hex(data),
      sha256: crypto.createHash('sha256').update(data).digest('hex'),
      prefixBlake3: blake3Hex(data.subarray(0, 300_000)),
      prefixSha256: crypto.createHash('sha256').update(data.subarray(0, 300_000)).digest('hex'),
    });
    expect(scanEntry(job(f, { algos: ['blake3'] }), buf).rec?.blake3).toBe(blake3Hex(data));
  });

  it('takes the digest of the baseline-length prefix for growing files', () => {
    const f = path.join(dir, 'log');
    fs.writeFileSync(f, 'line1\nline2\n');
    const r = scanEntry(job(f, { growing: true, prefixLen: 6, algos: ['blake3', 'sha256'] }), buf);
    expect(r.rec).toMatchObject({
      prefixBlake3: blake3Hex('line1\n'),
      prefixSha256: crypto.createHash('sha256').update('line1\n').digest('hex'),
      blake3: blake3Hex('line1\nline2\n'),
    });
  });
});

describe('scanBatch', () => {
  it('gives, entry by entry, what scanEntry gives (files opened and advised ahead, FIFOs/sockets/devices never opened, vanished and unreadable entries as errors)', () => {
    const sel = new Selector({ exclude: [], rules: [rule({ paths: [`${tree}/**`] })] });
    let id = 0;
    const jobs = [...walk(sel, ''), { kind: 'entry' as const, path: Buffer.from(path.join(tree, 'gone')) }].flatMap((e) =>
      e.kind === 'entry' ? [job(e.path, { id: ++id, xattrs: true, flags: true })] : [],
    );
    expect(jobs.length).toBeGreaterThan(10);
    const buf = Buffer.allocUnsafe(256 * 1024);
    const batch = scanBatch(jobs, buf);
    const single = jobs.map((j) => scanEntry(j, buf));
    expect(batch).toEqual(single);
    expect(batch.find((r) => r.rec?.path.toString().endsWith('/file'))?.rec?.blake3).toBe(blake3Hex('hello\n'));
    expect(batch.find((r) => r.rec?.path.toString().endsWith('/fifo'))).toMatchObject({ ok: true, rec: { type: 'fifo', blake3: null } });
    expect(batch[batch.length - 1]).toMatchObject({ ok: false, code: 'ENOENT', rec: null });
  });

  it('leaves no descriptor open, whatever the entries were', () => {
    const fds = (): number => fs.readdirSync('/proc/self/fd').length;
    const sel = new Selector({ exclude: [], rules: [rule({ paths: [`${tree}/**`] })] });
    const jobs = [...walk(sel, '')].flatMap((e, i) => (e.kind === 'entry' ? [job(e.path, { id: i })] : []));
    const before = fds();
    for (let k = 0; k < 5; k++) scanBatch(jobs, Buffer.allocUnsafe(256 * 1024));
    expect(fds()).toBe(before);
  });
});

describe('a cold page cache, as the kernel tells it', () => {
  const why = (gone: boolean | null): string => whyNotEvicted(gone, path.join(dir, 'x'));

  it('readNoWait reads what is cached and reads nothing of what is not', (ctx) => {
    const file = path.join(dir, 'cold-one');
    const data = crypto.randomBytes(300_000);
    fs.writeFileSync(file, data);
    const w = fs.openSync(file, 'r');
    fs.fsyncSync(w); // written back now (see below)
    fs.closeSync(w);
    const buf = Buffer.alloc(256 * 1024);
    const fd = fs.openSync(file, 'r');
    try {
      const dev = Number(fs.fstatSync(fd).dev);
      if (!kernelNoWait(file)) {
        console.log('skipped: preadv2 with RWF_NOWAIT is not available here');
        return ctx.skip();
      }
      const n = readNoWait(fd, buf, buf.length, dev);
      expect(n).toBe(buf.length);
      expect(buf).toEqual(data.subarray(0, buf.length));
      expect(readNoWait(fd, buf, buf.length, dev)).toBe(data.length - buf.length); // on from the current offset
      expect(readNoWait(fd, buf, buf.length, dev)).toBe(0);
      // a FIFO swapped in for a file of this device: refused, and nothing else about the device follows from it
      const fifo = path.join(dir, 'cold-fifo');
      if (!fs.existsSync(fifo)) execFileSync('mkfifo', [fifo]);
      const ff = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      try {
        expect(readNoWait(ff, buf, buf.length, dev)).toBeNull();
      } finally {
        fs.closeSync(ff);
      }
      const again = fs.openSync(file, 'r');
      try {
        expect(readNoWait(again, buf, 100, dev)).toBe(100);
      } finally {
        fs.closeSync(again);
      }
    } finally {
      fs.closeSync(fd);
    }
    // Up to three tries: in a suite that runs test files side by side, something else (a scan of a
    // tree above this folder, a readahead still in flight) can bring the pages back between
    // fincore's count and the read. A readNoWait that reads what is not cached fails all three.
    const answers: number[] = [];
    for (let tries = 0; tries < 3 && answers.at(-1) !== NOT_CACHED; tries++) {
      const gone = evict(file);
      if (!gone) {
        console.log(`skipped the uncached half: ${why(gone)}`);
        return ctx.skip();
      }
      const fd2 = fs.openSync(file, 'r');
      try {
        answers.push(readNoWait(fd2, buf, buf.length, Number(fs.fstatSync(fd2).dev))!);
        expect(fs.readSync(fd2, buf, 0, 10, null)).toBe(10); // and a plain read still reads it
      } finally {
        fs.closeSync(fd2);
      }
    }
    expect(answers.at(-1)).toBe(NOT_CACHED);
  });

  it('advises reads ahead only after a batch that found a file out of the page cache, and stops some batches after', (ctx) => {
    const files = Array.from({ length: 8 }, (_, i) => {
      const f = path.join(dir, `cold-batch-${i}`);
      fs.writeFileSync(f, crypto.randomBytes(20_000));
      // written back now: a page the kernel is writing back is locked for a moment, and a read
      // that must not wait says EAGAIN then, as for a page that is not there
      const fd = fs.openSync(f, 'r');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      return f;
    });
    const jobs = files.map((f, i) => job(f, { id: i + 1 }));
    const buf = Buffer.allocUnsafe(256 * 1024);
    if (!kernelNoWait(files[0]!)) {
      console.log('skipped: preadv2 with RWF_NOWAIT is not available here (the scan times its reads instead)');
      return ctx.skip();
    }
    for (let k = 0; k < 40 && advisedBatches() > 0; k++) scanBatch(jobs, buf);
    expect(advisedBatches()).toBe(0); // a warm cache: nothing advised, however slow this machine is
    // A few tries: on a busy machine (the whole suite in parallel) the pages have come back before
    // the scan once, read by something else; a scan that never advises after an eviction still fails.
    for (let k = 0; k < 3 && advisedBatches() === 0; k++) {
      const gone = evict(files[5]!);
      if (!gone) {
        console.log(`skipped: ${why(gone)}`);
        return ctx.skip();
      }
      const r = scanBatch(jobs, buf);
      expect(r[5]).toMatchObject({ ok: true, rec: { blake3: blake3Hex(fs.readFileSync(files[5]!)) } });
    }
    expect(advisedBatches()).toBeGreaterThan(8);
    // the next batches find every file cached again (a few tries: another process's I/O can lock a page for a moment)
    for (let k = 0; k < 5 && advisedBatches() >= 16; k++) scanBatch(jobs, buf);
    expect(advisedBatches()).toBeLessThan(16);
  });
});

describe('folders held open by the walk (holdDirs)', () => {
  const fds = (): number => fs.readdirSync('/proc/self/fd').length;
  /**
   * Walk BASE/a with its folders held until the entries named by the characters of `names` are
   * listed; the walk is left open (its entries hold their folders) for the caller to end.
   */
  function heldEntries(base: string, names: string): { walker: ReturnType<typeof walk>; entries: Map<string, WalkEvent & { kind: 'entry' }> } {
    const sel = new Selector({ exclude: [], rules: [rule({ paths: [`${base}/a/**`] })] });
    const walker = walk(sel, '', { holdDirs: true });
    const entries = new Map<string, WalkEvent & { kind: 'entry' }>();
    const wanted = new RegExp(`/a/[${names}]$`);
    while (entries.size < names.length) {
      const e = walker.next().value;
      if (!e) break;
      if (e.kind === 'entry' && wanted.test(e.path.toString())) entries.set(e.path.toString().slice(-1), e);
    }
    return { walker, entries };
  }

  it('a file is read from the folder the walk listed, even when that folder is swapped for a symlink before the read', () => {
    const base = path.join(dir, 'held');
    fs.mkdirSync(path.join(base, 'a'), { recursive: true });
    fs.mkdirSync(path.join(base, 'evil'));
    fs.writeFileSync(path.join(base, 'a', 'f'), 'listed');
    fs.writeFileSync(path.join(base, 'evil', 'f'), 'planted');
    fs.symlinkSync('listed-target', path.join(base, 'a', 'l'));
    fs.symlinkSync('planted-target', path.join(base, 'evil', 'l'));
    const { walker: it, entries } = heldEntries(base, 'fl');
    const ev = entries.get('f');
    const link = entries.get('l');
    if (!ev?.dir || !link?.dir) throw new Error('no held entries for a/f and a/l');
    // the swap: the listed folder moves away, a symlink to another folder takes its name
    fs.renameSync(path.join(base, 'a'), path.join(base, 'a-moved'));
    fs.symlinkSync(path.join(base, 'evil'), path.join(base, 'a'));
    const buf = Buffer.allocUnsafe(256 * 1024);
    const held = scanEntry(job(ev.path, { dirFd: ev.dir.fd }), buf);
    const heldLink = scanEntry(job(link.path, { dirFd: link.dir.fd }), buf);
    const byPath = scanEntry(job(ev.path), buf);
    const linkByPath = scanEntry(job(link.path), buf);
    ev.dir.release();
    link.dir.release();
    it.return(undefined);
    expect(held).toMatchObject({ ok: true, rec: { blake3: blake3Hex('listed') } });
    expect(heldLink.rec?.target?.toString()).toBe('listed-target');
    // what a lookup by path reads now (the reason for holding the folder)
    expect(byPath).toMatchObject({ ok: true, rec: { blake3: blake3Hex('planted') } });
    expect(linkByPath.rec?.target?.toString()).toBe('planted-target');
  });

  // trusted.* is the namespace a symlink or FIFO can carry (user.* is for files and folders), and only root may set it
  it.skipIf(process.getuid?.() !== 0)(
    "a symlink's and a FIFO's extended attributes come from the folder the walk listed, even when that folder is swapped for a symlink",
    () => {
      const base = path.join(dir, 'held-attrs');
      for (const [d, v] of [
        ['a', 'listed'],
        ['evil', 'planted'],
      ] as const) {
        fs.mkdirSync(path.join(base, d), { recursive: true });
        fs.symlinkSync(`${v}-target`, path.join(base, d, 'l'));
        execFileSync('mkfifo', [path.join(base, d, 'p')]);
        for (const e of ['l', 'p']) execFileSync('setfattr', ['-h', '-n', 'trusted.k', '-v', v, path.join(base, d, e)]);
      }
      const { walker: it, entries } = heldEntries(base, 'lp');
      if (!entries.get('l')?.dir || !entries.get('p')?.dir) throw new Error('no held entries for a/l and a/p');
      fs.renameSync(path.join(base, 'a'), path.join(base, 'a-moved'));
      fs.symlinkSync(path.join(base, 'evil'), path.join(base, 'a'));
      const buf = Buffer.allocUnsafe(256 * 1024);
      const attrs = (name: string): { held: string | null | undefined; byPath: string | null | undefined } => {
        const ev = entries.get(name)!;
        const held = scanEntry(job(ev.path, { xattrs: true, dirFd: ev.dir!.fd }), buf);
        const byPath = scanEntry(job(ev.path, { xattrs: true }), buf);
        ev.dir!.release();
        return { held: held.rec?.xattrs, byPath: byPath.rec?.xattrs };
      };
      const l = attrs('l');
      const p = attrs('p');
      it.return(undefined);
      const enc = (v: string): string => Buffer.from(v).toString('base64');
      for (const r of [l, p]) {
        expect(r.held).toContain('trusted.k');
        expect(r.held).toContain(enc('listed'));
        expect(r.held).not.toContain(enc('planted'));
        // what a lookup by path reads now (the reason for reading relative to the held folder)
        expect(r.byPath).toContain(enc('planted'));
      }
    },
  );

  it(`a tree deeper than ${MAX_HELD_DIRS} levels holds at most ${MAX_HELD_DIRS} folders and is walked completely`, () => {
    const deep = path.join(dir, 'held-deep');
    let p = deep;
    for (let i = 0; i < MAX_HELD_DIRS + 40; i++) p = path.join(p, 'd');
    fs.mkdirSync(p, { recursive: true });
    fs.writeFileSync(path.join(p, 'leaf'), 'x');
    const sel = new Selector({ exclude: [], rules: [rule({ paths: [`${deep}/**`] })] });
    const before = fds();
    let most = 0;
    let leaf: ScanResult | null = null;
    const held: DirHandle[] = [];
    for (const ev of walk(sel, '', { holdDirs: true })) {
      if (ev.kind !== 'entry') continue;
      most = Math.max(most, fds() - before);
      if (ev.path.toString().endsWith('/leaf')) leaf = scanEntry(job(ev.path, ev.dir ? { dirFd: ev.dir.fd } : {}), Buffer.allocUnsafe(256 * 1024));
      if (ev.dir) held.push(ev.dir);
    }
    expect(most).toBeLessThanOrEqual(MAX_HELD_DIRS);
    expect(most).toBeGreaterThan(MAX_HELD_DIRS / 2);
    expect(leaf).toMatchObject({ ok: true, rec: { blake3: blake3Hex('x') } });
    for (const d of held) d.release();
    expect(fds()).toBe(before);
  });

  it("a folder's flags and extended attributes are read through one descriptor of it, the same as by path", () => {
    const d = path.join(dir, 'dir-attrs');
    fs.mkdirSync(d);
    execFileSync('setfattr', ['-n', 'user.k', '-v', 'v', d]);
    const parent = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      const buf = Buffer.allocUnsafe(256 * 1024);
      const held = scanEntry(job(d, { xattrs: true, flags: true, dirFd: parent }), buf);
      const byPath = scanEntry(job(d, { xattrs: true, flags: true }), buf);
      expect(held).toMatchObject({ ok: true, rec: { type: 'dir' } });
      expect(held.rec?.xattrs).toContain('user.k');
      expect(typeof held.rec?.flags).toBe('number');
      expect(held).toEqual(byPath);
    } finally {
      fs.closeSync(parent);
    }
  });

  it('every folder descriptor is closed once the walk is done and each entry released, and when the walk is abandoned midway', () => {
    const sel = new Selector({ exclude: [], rules: [rule({ paths: [`${tree}/**`] })] });
    const before = fds();
    let held = 0;
    for (const ev of walk(sel, '', { holdDirs: true }))
      if (ev.kind === 'entry' && ev.dir) {
        held++;
        ev.dir.release();
      }
    expect(held).toBeGreaterThan(5);
    expect(fds()).toBe(before);
    // abandoned after the first few entries (all released): the listings still open are closed
    const it = walk(sel, '', { holdDirs: true });
    for (let k = 0; k < 4; k++) {
      const ev = it.next().value;
      if (ev?.kind === 'entry') ev.dir?.release();
    }
    expect(fds()).toBeGreaterThan(before);
    it.return(undefined);
    expect(fds()).toBe(before);
  });
});

describe('scanBatches', () => {
  it('gives the same results on worker threads as on the main thread, every field of every entry (the packed messages lose nothing)', async () => {
    const sel = new Selector({ exclude: [], rules: [rule({ paths: [`${tree}/**`] })] });
    let id = 0;
    const walked = [...walk(sel, '')].flatMap((e) => (e.kind === 'entry' ? [e.path] : []));
    const jobs: ScanJob[] = [];
    for (const p of walked) {
      jobs.push(job(p, { id: ++id }));
      // the same path with every option: attributes, flags, extra digests, a growing prefix
      jobs.push(job(p, { id: ++id, xattrs: true, flags: true, extra: ['md5', 'sha1'], growing: true, prefixLen: 3 }));
    }
    jobs.push(job(path.join(tree, 'nope'), { id: ++id }));
    // extended attributes whose name and value hold spaces (they travel in the compare text, last)
    const xa = path.join(dir, 'xattr-spaces');
    fs.writeFileSync(xa, 'x');
    execFileSync('setfattr', ['-n', 'user.a b', '-v', 'c d "e"', xa]);
    jobs.push(job(xa, { id: ++id, xattrs: true }));
    // a --root style job: read from one path, reported as another
    jobs.push({ ...job('/reported/as', { id: ++id }), real: Buffer.from(path.join(tree, 'file')) });
    const inline = await collect(jobs, 0);
    const pooled = await collect(jobs, 2);
    expect(pooled).toHaveLength(jobs.length);
    expect(pooled).toEqual(inline);
    const bad = pooled.find((r) => r.rec?.path.subarray(tree.length + 1).equals(BAD));
    expect(bad?.rec?.blake3).toBe(blake3Hex('x'));
    expect(pooled.find((r) => r.rec?.path.toString() === '/reported/as')?.rec?.blake3).toBe(blake3Hex('hello\n'));
    expect(pooled.some((r) => r.rec?.extra?.md5 && r.rec.prefixBlake3 !== undefined && r.rec.flags !== undefined && r.rec.xattrs !== undefined)).toBe(true);
    expect(pooled.some((r) => r.rec?.target?.toString() === 'loop2')).toBe(true);
    expect(pooled.find((r) => r.id === id - 2)).toMatchObject({ ok: false, code: 'ENOENT', rec: null });
    expect(pooled.find((r) => r.id === id - 1)?.rec?.xattrs).toContain('user.a b');
  });

  it('answers "same as stored?" from the packed compare texts exactly as from the full results (workers and main thread alike)', async () => {
    const sel = new Selector({ exclude: [], rules: [rule({ paths: [`${tree}/**`] })] });
    let id = 0;
    const jobs = [...walk(sel, '')].flatMap((e) => (e.kind === 'entry' ? [job(e.path, { id: ++id, xattrs: true, flags: true })] : []));
    jobs.push(job(path.join(tree, 'nope'), { id: ++id }));
    for (const n of [0, 2]) {
      let seen = 0;
      for await (const batch of scanBatches(jobs, n, new AbortController().signal)) {
        for (let i = 0; i < batch.length; i++) {
          const r = batch.result(i);
          seen++;
          expect(batch.ok(i)).toBe(r.ok);
          expect(batch.fileBytes(i)).toBe(r.rec?.type === 'file' ? Number(r.rec.size) : 0);
          if (!r.ok) {
            // a failed scan is never "the same", whatever text it is held against
            expect(batch.sameAs(i, Buffer.from('x'), 0, 1)).toBe(false);
            continue;
          }
          const text = Buffer.from(`pad ${cmpText(r.rec)} pad`);
          expect(batch.sameAs(i, text, 4, text.length - 4)).toBe(true);
          // one attribute off (the mode), or one byte short: not the same
          const other = Buffer.from(cmpText({ ...r.rec, mode: r.rec.mode ^ 1 }));
          expect(batch.sameAs(i, other, 0, other.length)).toBe(false);
          expect(batch.sameAs(i, text, 4, text.length - 5)).toBe(false);
        }
      }
      expect(seen).toBe(jobs.length);
    }
  });

  it('waits on a promise the job source yields, then goes on pulling', async () => {
    let released = false;
    const gate = new Promise<void>((r) =>
      setTimeout(() => {
        released = true;
        r();
      }, 1),
    );
    const source = function* (): Generator<ScanJob | Promise<void>> {
      yield job(path.join(tree, 'file'), { id: 1 });
      yield gate;
      expect(released).toBe(true);
      yield job(path.join(tree, 'empty'), { id: 2 });
    };
    const out: number[] = [];
    for await (const batch of scanBatches(source(), 2, new AbortController().signal)) for (const [j] of batch) out.push(j.id);
    expect(out.sort()).toEqual([1, 2]);
  });

  it('goes on when every batch in flight came back while the caller awaited something between two batches (no hang)', async () => {
    // A caller that awaits between batches (baseline and check drain the large files' second reads
    // mid-scan once their queue is full) can outlast every batch the workers hold. The pool once
    // waited for an answer that no worker owed: the walk was not done, and nothing came back.
    const n = 20 * 64; // many more batches than the workers hold at once (2 workers x 3 x 64)
    const jobs = Array.from({ length: n }, (_, i) => job(path.join(tree, 'file'), { id: i + 1 }));
    let pulled = 0;
    const source = function* (): Generator<ScanJob> {
      for (const j of jobs) {
        pulled++;
        yield j;
      }
    };
    const seen: number[] = [];
    let first = true;
    for await (const batch of scanBatches(source(), 2, new AbortController().signal)) {
      for (const [j, r] of batch) {
        expect(r.ok).toBe(true);
        seen.push(j.id);
      }
      if (first) {
        first = false;
        // the rest of what was sent is answered long before this ends (64 tiny files a batch)
        expect(pulled).toBeLessThan(n);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    expect(seen.sort((a, b) => a - b)).toEqual(jobs.map((j) => j.id));
  }, 20_000);

  it('on an abort, workers stop within the read they are in and leave on their own (never terminated inside a native call)', async () => {
    const big = path.join(dir, 'big-sparse');
    fs.writeFileSync(big, '');
    fs.truncateSync(big, 16 * 1024 ** 3); // 16 GiB of holes: many seconds to read and hash
    const terminate = vi.spyOn(Worker.prototype, 'terminate');
    try {
      const ac = new AbortController();
      const jobs = [job(big, { id: 1 }), ...Array.from({ length: 400 }, (_, i) => job(path.join(tree, 'file'), { id: i + 2 }))];
      const t0 = Date.now();
      const run = async () => {
        for await (const _ of scanBatches(jobs, 2, ac.signal)) ac.abort(new Error('stop now'));
      };
      await expect(run()).rejects.toThrow('stop now');
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(terminate).not.toHaveBeenCalled();
    } finally {
      terminate.mockRestore();
      fs.rmSync(big);
    }
  });

  it('stops with the abort reason when interrupted', async () => {
    const ac = new AbortController();
    const jobs = Array.from({ length: 2000 }, (_, i) => job(path.join(tree, 'file'), { id: i }));
    const run = async () => {
      let n = 0;
      for await (const b of scanBatches(jobs, 2, ac.signal)) if ((n += b.length) >= 10) ac.abort(new Error('stop now'));
    };
    await expect(run()).rejects.toThrow('stop now');
  });

  describe('workers kept for the next pool (the second reads right after the scan)', () => {
    const threads = (): Set<string> => new Set(fs.readdirSync('/proc/self/task'));
    const gone = async (ts: string[]): Promise<boolean> => {
      for (let i = 0; i < 300; i++) {
        const now = threads();
        if (!ts.some((t) => now.has(t))) return true;
        await new Promise((r) => setTimeout(r, 10));
      }
      return false;
    };
    const scanAll = async (n: number, signal = new AbortController().signal, park = true): Promise<number> => {
      let seen = 0;
      for await (const b of scanBatches(
        Array.from({ length: 300 }, (_, i) => job(path.join(tree, 'file'), { id: i })),
        n,
        signal,
        { park },
      ))
        seen += b.length;
      return seen;
    };
    const md5Job = (p: string) => {
      const st = fs.lstatSync(p, { bigint: true });
      return { real: Buffer.from(p), size: st.size, inode: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
    };

    it('a scan asked to park, ended cleanly, leaves its threads to the next pool of the same size: md5Groups starts none, and parks none', async () => {
      await releaseSpareWorkers();
      const before = threads();
      expect(await scanAll(2)).toBe(300);
      const parked = [...threads()].filter((t) => !before.has(t));
      expect(parked.length, 'the two workers stay, parked').toBeGreaterThanOrEqual(2);
      const groups = [[md5Job(path.join(tree, 'file'))], [md5Job(path.join(tree, 'empty'))]];
      const got: string[] = [];
      for await (const [, r] of md5Groups(groups, 2, new AbortController().signal)) got.push(...(r as string[]));
      expect(got.sort()).toEqual([crypto.createHash('md5').update('').digest('hex'), crypto.createHash('md5').update('hello\n').digest('hex')].sort());
      const after = [...threads()].filter((t) => !before.has(t));
      expect(
        after.filter((t) => !parked.includes(t)),
        'no new thread for the second pool',
      ).toEqual([]);
      expect(await gone(parked), 'md5Groups does not park them again: they leave').toBe(true);
      await scanAll(2);
      const again = [...threads()].filter((t) => !before.has(t));
      expect(again.length).toBeGreaterThanOrEqual(2);
      await releaseSpareWorkers();
      expect(await gone(again), 'released: the threads leave').toBe(true);
    });

    it('a scan not asked to park leaves with its workers', async () => {
      await releaseSpareWorkers();
      const before = threads();
      expect(await scanAll(2, new AbortController().signal, false)).toBe(300);
      expect(await gone([...threads()].filter((t) => !before.has(t)))).toBe(true);
    });

    it('a pool of another size, or one that was aborted, does not take or leave workers', async () => {
      await releaseSpareWorkers();
      const before = threads();
      await scanAll(2);
      const parked = [...threads()].filter((t) => !before.has(t));
      await scanAll(1); // one worker: a new one; the two parked ones leave
      expect(await gone(parked)).toBe(true);
      await releaseSpareWorkers();
      const mid = threads();
      const ac = new AbortController();
      ac.abort(new Error('stop now'));
      await expect(scanAll(2, ac.signal)).rejects.toThrow('stop now');
      expect(await gone([...threads()].filter((t) => !mid.has(t))), 'an aborted pool parks nothing').toBe(true);
    });

    it('parked workers never keep the process alive', () => {
      const mod = path.join(path.dirname(new URL(import.meta.url).pathname), '../../dist/src/scan/hash-pool.js');
      const code = `const { scanBatches } = await import(${JSON.stringify(mod)});
        let n = 0;
        for await (const b of scanBatches([{ id: 1, path: Buffer.from(${JSON.stringify(path.join(tree, 'file'))}), real: Buffer.from(${JSON.stringify(path.join(tree, 'file'))}), algos: ['blake3'], growing: false, prefixLen: null }], 2, new AbortController().signal, { park: true })) n += b.length;
        console.log('scanned', n);`;
      const script = path.join(dir, 'parked.mjs');
      fs.writeFileSync(script, code);
      const t0 = Date.now();
      const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe('scanned 1');
      expect(Date.now() - t0).toBeLessThan(10_000);
    });
  });
});

describe('file calls through koffi (statx, open, read, close)', () => {
  it('stat the same as fs for every kind of entry, and fail with the same codes', async () => {
    const { lstatFile, fstatFile, openFile, readFile, closeFile, fileIoKind, forceFileIo } = await import('../../src/scan/fileio.js');
    const { cstr } = await import('../../src/scan/libc.js');
    expect(fileIoKind()).toBe('koffi');
    const entries = ['file', 'sub', 'to-root', 'fifo', 'sock', 'sparse'].map((n) => path.join(tree, n));
    entries.push('/dev/null', '/');
    expect(entries.length).toBeGreaterThanOrEqual(5);
    for (const p of entries) expect(lstatFile(cstr(Buffer.from(p)))).toEqual(fileStatOf(fs.lstatSync(p, { bigint: true })));
    const fd = openFile(cstr(Buffer.from(path.join(tree, 'file'))), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      expect(fstatFile(fd)).toEqual(fileStatOf(fs.fstatSync(fd, { bigint: true })));
      const b = Buffer.alloc(64);
      expect(b.subarray(0, readFile(fd, b, 64)).toString()).toBe('hello\n');
      expect(readFile(fd, b, 64)).toBe(0);
    } finally {
      closeFile(fd);
    }
    for (const w of ['node', null] as const) {
      forceFileIo(w);
      try {
        expect(() => lstatFile(cstr(Buffer.from(path.join(tree, 'nope'))))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
        expect(() => openFile(cstr(Buffer.from(path.join(tree, 'to-root'))), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)).toThrow(
          expect.objectContaining({ code: 'ELOOP' }),
        );
        expect(() => lstatFile(cstr(Buffer.from(path.join(tree, 'file', 'x'))))).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
      } finally {
        forceFileIo(null);
      }
    }
  });
  it('timestamps before 1970 and after 2116 stat the same as fs (nanoseconds kept exactly)', async () => {
    const { lstatFile } = await import('../../src/scan/fileio.js');
    const { cstr } = await import('../../src/scan/libc.js');
    const f = path.join(dir, 'times');
    fs.writeFileSync(f, 'x');
    // seconds with nanoseconds: before the epoch, a common date, and past the 2^32 s the fast path covers
    let held = 0;
    for (const [sec, nsec] of [
      [-86_401, 123_456_789],
      [-1, 999_999_999],
      [1_700_000_000, 1],
      [1_700_000_000, 0],
      [4_200_000_000, 999_999_999],
      // sec * 1e9 is not exact as a double from here (2^53 / 1953125 s): the BigInt way
      [8_999_999_999, 7],
    ] as const) {
      const ns = BigInt(sec) * 1_000_000_000n + BigInt(nsec);
      const abs = ns < 0n ? -ns : ns; // touch reads "@-1.25" as minus 1.25 seconds
      execFileSync('touch', ['-h', '-m', '-d', `@${ns < 0n ? '-' : ''}${abs / 1_000_000_000n}.${String(abs % 1_000_000_000n).padStart(9, '0')}`, f]);
      const want = fs.lstatSync(f, { bigint: true });
      if (want.mtimeNs !== ns) continue; // this file system cannot hold that time
      const got = lstatFile(cstr(Buffer.from(f)));
      expect(got).toEqual(fileStatOf(want));
      expect(got.mtimeNs).toBe(ns);
      held++;
    }
    expect(held).toBe(6); // ext4 and tmpfs hold them all
  });

  it('fstatSameFile: the same as comparing two stats, with koffi and with fs', async () => {
    const { fstatSameFile, lstatFile, openFile, closeFile, forceFileIo, SAME, CHANGED, OTHER } = await import('../../src/scan/fileio.js');
    const { cstr } = await import('../../src/scan/libc.js');
    const f = path.join(dir, 'same-file');
    const other = path.join(dir, 'other-file');
    for (const w of [null, 'node'] as const) {
      forceFileIo(w);
      try {
        fs.writeFileSync(f, 'abc');
        fs.writeFileSync(other, 'abc');
        fs.utimesSync(f, 1_600_000_000, 1_600_000_000);
        fs.utimesSync(other, 1_600_000_000, 1_600_000_000);
        const st = lstatFile(cstr(Buffer.from(f)));
        const fd = openFile(cstr(Buffer.from(f)), fs.constants.O_RDWR);
        const fdOther = openFile(cstr(Buffer.from(other)), fs.constants.O_RDONLY);
        try {
          expect(fstatSameFile(fd, st)).toBe(SAME);
          // another inode with the same size and times
          expect(fstatSameFile(fdOther, st)).toBe(OTHER);
          // the same inode: mtime moved, then the size changed with mtime put back
          fs.utimesSync(f, 1_600_000_000, 1_600_000_000.5);
          expect(fs.fstatSync(fd, { bigint: true }).mtimeNs).not.toBe(st.mtimeNs);
          expect(fstatSameFile(fd, st)).toBe(CHANGED);
          fs.ftruncateSync(fd, 2);
          fs.utimesSync(f, 1_600_000_000, 1_600_000_000);
          expect(fs.fstatSync(fd, { bigint: true }).mtimeNs).toBe(st.mtimeNs);
          expect(fstatSameFile(fd, st)).toBe(CHANGED);
          fs.ftruncateSync(fd, 3);
          fs.utimesSync(f, 1_600_000_000, 1_600_000_000);
          expect(fstatSameFile(fd, st)).toBe(SAME);
          // a descriptor of a directory is never "the same regular file"
          const d = fs.openSync(dir, 'r');
          try {
            expect(fstatSameFile(d, { ...st, ino: fs.fstatSync(d, { bigint: true }).ino, inoN: Number(fs.fstatSync(d).ino) })).toBe(OTHER);
          } finally {
            fs.closeSync(d);
          }
          // values from 2^53 are compared as BigInts: a stat that says so is still told apart
          expect(fstatSameFile(fd, { ...st, inoN: Number.NaN, ino: st.ino + 2n ** 60n })).toBe(OTHER);
          expect(fstatSameFile(fd, { ...st, inoN: Number.NaN })).toBe(SAME);
          expect(fstatSameFile(fd, { ...st, sizeN: Number.NaN, size: 2n ** 60n })).toBe(CHANGED);
        } finally {
          closeFile(fd);
          closeFile(fdOther);
        }
      } finally {
        forceFileIo(null);
      }
    }
  });
});
