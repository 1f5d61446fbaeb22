/**
 * The native scan (native/scan.c through src/scan/native-scan.ts) against the JavaScript way it
 * stands in for: the same batches packed both ways must give the same results, byte for byte in
 * their compare texts, and the native side must really have done the files it may do (counted),
 * leaving the rest (errors, xattrs it does not encode, other options) to the JavaScript way.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cmpText } from '../../src/core/entry-cmp.js';
import { nativeMd5 } from '../../src/scan/md5-native.js';
import { nativeBlake3Hex, nativeCounts, scanImplementation, scanPacked } from '../../src/scan/native-scan.js';
import { packJobs, packResults, ResultBatch, unpackJobs } from '../../src/scan/pool-protocol.js';
import { advisedBatches, scanBatch, type ScanJob, type ScanResult, setStopFlag } from '../../src/scan/scan-entry.js';
import { tmpdir } from '../helpers/cli.js';
import { evict, kernelNoWait, whyNotEvicted } from '../helpers/page-cache.js';

const b3 = createRequire(import.meta.url)('blake3-wasm') as { createHash(): { update(b: Uint8Array): { digest(e: 'hex'): string } } };
const blake3Hex = (d: Uint8Array): string => b3.createHash().update(d).digest('hex');

const x64 = process.platform === 'linux' && process.arch === 'x64';
const built = x64 && scanImplementation().startsWith('native');
if (!built) console.log(`skipping the native scan tests: ${x64 ? scanImplementation() : 'not linux-x64'}`);
const root = process.getuid?.() === 0;
if (built && !root) console.log('not tested: the native scan as nobody, and a file owned by another user (not root)');

let dir: string;
let dirFd = -1;
const buf = Buffer.allocUnsafe(256 * 1024);

function job(name: string, over: Partial<ScanJob> = {}): ScanJob {
  const p = Buffer.from(path.join(dir, name));
  return { id: 1, path: p, real: p, algos: ['blake3'], growing: false, prefixLen: null, xattrs: true, flags: true, dirFd, ...over };
}

/** The jobs scanned both ways: [native results, JavaScript results], each as the main thread reads them. */
function bothWays(jobs: ScanJob[]): [ScanResult[], ScanResult[], Buffer[], Buffer[]] {
  const jobsN = jobs.map((j, i) => ({ ...j, id: i + 1 }));
  const m = packJobs(jobsN).msg;
  const n = scanPacked(m, buf);
  expect(n, 'the native scan took the batch').not.toBeNull();
  const js = packResults(scanBatch(unpackJobs(packJobs(jobsN).msg), buf)).msg;
  const nb = ResultBatch.packed(jobsN, n!.msg);
  const jb = ResultBatch.packed(jobsN, js);
  const texts = (p: typeof js): Buffer[] => {
    const out: Buffer[] = [];
    const ends = new Uint32Array(p.buf, 6 * 8 * p.n + 3 * 8 * p.n + 8 * p.n + 8 * p.n, p.n);
    const cmps = Buffer.from(p.buf, p.buf.byteLength - p.cmpBytes, p.cmpBytes);
    for (let i = 0; i < p.n; i++) out.push(cmps.subarray(i > 0 ? ends[i - 1]! : 0, ends[i]!));
    return out;
  };
  return [jobsN.map((_, i) => nb.result(i)), jobsN.map((_, i) => jb.result(i)), texts(n!.msg), texts(js)];
}

function setXattr(file: string, name: string, value: Buffer): boolean {
  const r = spawnSync('setfattr', ['-n', name, '-v', `0x${value.toString('hex') || '00'}`, file]);
  if (value.length === 0) spawnSync('setfattr', ['-n', name, file]);
  return r.status === 0;
}

const SIZES = [0, 1, 63, 64, 65, 1023, 1024, 1025, 2047, 2048, 4097, 65_536, 262_143, 262_144, 262_145, 1_000_003, 3 * 262_144];

beforeAll(() => {
  dir = tmpdir('integ-native-scan-');
  for (const s of SIZES) fs.writeFileSync(path.join(dir, `f${s}`), crypto.randomBytes(s));
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.symlinkSync('f1', path.join(dir, 'link'));
  spawnSync('mkfifo', [path.join(dir, 'fifo')]);
  fs.writeFileSync(path.join(dir, 'modes'), 'x');
  fs.chmodSync(path.join(dir, 'modes'), 0o4751);
  if (root) fs.chownSync(path.join(dir, 'modes'), 65534, 4242);
  fs.linkSync(path.join(dir, 'f1'), path.join(dir, 'hardlink'));
  fs.writeFileSync(path.join(dir, 'old'), 'before 1970');
  fs.utimesSync(path.join(dir, 'old'), new Date('1960-03-04T05:06:07.891Z'), new Date('1960-03-04T05:06:07.891Z'));
  fs.writeFileSync(path.join(dir, `name with spaces and \u00e9`), 'y');
  // sparse: 64 MiB of hole and one byte at the end
  const sparse = fs.openSync(path.join(dir, 'sparse'), 'w');
  fs.writeSync(sparse, Buffer.from('z'), 0, 1, 64 * 1024 * 1024);
  fs.closeSync(sparse);
  dirFd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
});
afterAll(() => {
  if (dirFd >= 0) fs.closeSync(dirFd);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe.runIf(built)('native scan', () => {
  it('hashes BLAKE3 as blake3-wasm does, at every length around the chunk and SIMD boundaries', () => {
    const data = crypto.randomBytes(1 << 20);
    for (const n of [0, 1, 63, 64, 65, 1023, 1024, 1025, 2048, 4095, 4096, 4097, 8193, 16_385, 65_537, 262_144, 1_048_576])
      expect(nativeBlake3Hex!(data.subarray(0, n)), `${n} bytes`).toBe(blake3Hex(data.subarray(0, n)));
  });

  it('scans regular files exactly as the JavaScript way does, and does them itself', () => {
    const names = fs.readdirSync(dir).filter((n) => !n.startsWith('x'));
    const jobs = names.map((n) => job(n));
    const before = nativeCounts.done;
    const [nat, js, nt, jt] = bothWays(jobs);
    expect(nat).toEqual(js);
    expect(nt).toEqual(jt);
    const files = names.filter((n) => fs.lstatSync(path.join(dir, n)).isFile());
    expect(files.length).toBeGreaterThan(SIZES.length);
    const dirs = names.filter((n) => fs.lstatSync(path.join(dir, n)).isDirectory());
    expect(dirs).toEqual(['sub']);
    expect(nativeCounts.done - before, 'regular files and folders done natively').toBe(files.length + dirs.length);
    for (const [i, n] of names.entries()) {
      const r = nat[i]!;
      expect(r.ok, n).toBe(true);
      if (fs.lstatSync(path.join(dir, n)).isFile()) expect((r as { rec: { blake3: string } }).rec.blake3).toBe(blake3Hex(fs.readFileSync(path.join(dir, n))));
      expect(nt[i]!.toString()).toBe(cmpText((r as { rec: Parameters<typeof cmpText>[0] }).rec));
    }
  });

  it('takes a name that is not UTF-8 by its bytes', () => {
    const name = Buffer.concat([Buffer.from('x-bad-'), Buffer.from([0xff, 0xfe]), Buffer.from('name')]);
    const full = Buffer.concat([Buffer.from(`${dir}/`), name]);
    fs.writeFileSync(full, 'not utf-8');
    const before = nativeCounts.done;
    for (const dirFd_ of [dirFd, -1]) {
      const [nat, js, nt, jt] = bothWays([{ ...job('unused'), path: full, real: full, dirFd: dirFd_ }]);
      expect(nat).toEqual(js);
      expect(nt).toEqual(jt);
      expect((nat[0] as { rec: { blake3: string } }).rec.blake3).toBe(blake3Hex(Buffer.from('not utf-8')));
    }
    expect(nativeCounts.done - before).toBe(2);
  });

  it('without xattrs or flags asked, by full path (no folder held), and with a --root prefix: the same', () => {
    const names = [...SIZES.map((s) => `f${s}`), 'sub'];
    for (const over of [{ xattrs: false, flags: false }, { xattrs: true, flags: false }, { dirFd: -1 }] as Array<Partial<ScanJob>>) {
      const [nat, js, nt, jt] = bothWays(names.map((n) => job(n, over)));
      expect(nat).toEqual(js);
      expect(nt).toEqual(jt);
    }
    // --root: the job's path is as the policy names it, its real path under the root
    const rooted = names.map((n) => ({ ...job(n), path: Buffer.from(`/${n}`), dirFd: -1 }));
    const [nat, js] = bothWays(rooted);
    expect(nat).toEqual(js);
    expect(nat.every((r) => r.ok)).toBe(true);
  });

  it('encodes extended attributes as the JavaScript way does, and leaves it the ones it does not encode', (ctx) => {
    const f = path.join(dir, 'x-plain');
    fs.writeFileSync(f, 'attrs');
    if (!setXattr(f, 'user.b', Buffer.from('v'))) {
      console.log(`skipped: user xattrs are not supported on ${dir}'s file system`);
      return ctx.skip();
    }
    setXattr(f, 'user.a', Buffer.from([0, 1, 2]));
    expect(setXattr(f, 'user.c', crypto.randomBytes(3001))).toBe(true); // ext4 holds a block's worth at most
    setXattr(f, 'user.d', crypto.randomBytes(2));
    const odd = path.join(dir, 'x-odd');
    fs.writeFileSync(odd, 'odd');
    expect(setXattr(odd, 'user.caf\u00e9"', Buffer.from('1'))).toBe(true); // JSON escapes and UTF-8: the JavaScript way's
    // past 4096 bytes a value is kept as its digest: the JavaScript way's (where the file system holds one that large)
    const big = path.join(dir, 'x-big');
    fs.writeFileSync(big, 'big');
    const hasBig = setXattr(big, 'user.big', crypto.randomBytes(4097));
    if (!hasBig) console.log(`not tested here: an xattr value past 4096 bytes (${dir}'s file system holds none)`);
    const folder = path.join(dir, 'x-folder');
    fs.mkdirSync(folder);
    expect(setXattr(folder, 'user.f', Buffer.from('folder'))).toBe(true);
    const names = ['x-plain', 'x-odd', 'x-folder', ...(hasBig ? ['x-big'] : [])];
    const before = { ...nativeCounts };
    const [nat, js, nt, jt] = bothWays(names.map((n) => job(n)));
    expect(nat).toEqual(js);
    expect(nt).toEqual(jt);
    const x = (nat[0] as { rec: { xattrs: string } }).rec.xattrs;
    expect(JSON.parse(x).map((p: string[]) => p[0])).toEqual(['user.a', 'user.b', 'user.c', 'user.d']);
    expect(JSON.parse((nat[1] as { rec: { xattrs: string } }).rec.xattrs)).toEqual([['user.caf\u00e9"', 'MQ==']]);
    expect(JSON.parse((nat[2] as { rec: { xattrs: string } }).rec.xattrs)).toEqual([['user.f', 'Zm9sZGVy']]);
    if (hasBig) expect((nat[3] as { rec: { xattrs: string } }).rec.xattrs).toMatch(/"sha256:[0-9a-f]{64}"/);
    expect(nativeCounts.done - before.done).toBe(2);
    expect(nativeCounts.left - before.left).toBe(names.length - 2);
  });

  it.runIf(nativeMd5() !== null)('gives small files their MD5 in its own lanes, as md5-lanes.ts does: 32 at a time, the lanes refilled, the tail alone', () => {
    const sizes = [0, 1, 55, 56, 63, 64, 119, 120, 1000, 131_071, 131_072, 131_073, 200_000];
    for (let k = 0; k < 90; k++) sizes.push(crypto.randomInt(0, 140_000));
    const names = sizes.map((sz, k) => {
      const name = `x-md5-${k}`;
      fs.writeFileSync(path.join(dir, name), crypto.randomBytes(sz));
      return name;
    });
    const before = nativeCounts.done;
    const [nat, js, nt, jt] = bothWays(names.map((n) => job(n, { md5Lanes: true })));
    expect(nat).toEqual(js);
    expect(nt).toEqual(jt);
    expect(nativeCounts.done - before).toBe(names.length);
    for (const [k, n] of names.entries()) {
      const r = nat[k] as { ok: boolean; rec: { extra?: { md5?: string } } };
      const data = fs.readFileSync(path.join(dir, n));
      expect(r.ok).toBe(true);
      // past a lane (128 KiB) no MD5 in the scan: the caller reads those again, all lanes busy (deferred-md5.ts)
      expect(r.rec.extra?.md5, `${n}: ${data.length} bytes`).toBe(data.length <= 131_072 ? crypto.createHash('md5').update(data).digest('hex') : undefined);
    }
  });

  it('leaves vanished, unopenable and special entries and other options to the JavaScript way, whose results stand', () => {
    const before = { ...nativeCounts };
    const jobs = [
      job('no-such-file'),
      job('link'),
      job('fifo'),
      job('f1', { algos: ['blake3', 'sha256'] }),
      job('f1', { growing: true, prefixLen: 1 }),
      job('f1', { extra: ['md5'] }),
    ];
    const [nat, js] = bothWays(jobs);
    expect(nat).toEqual(js);
    expect(nat[0]).toMatchObject({ ok: false, code: 'ENOENT' });
    expect(nativeCounts.done - before.done).toBe(0);
  });

  it.runIf(root)('as nobody, a file it may not read is reported by the JavaScript way (EACCES), the others done natively', () => {
    const f = path.join(dir, 'x-secret');
    fs.writeFileSync(f, 'secret');
    fs.chmodSync(f, 0o600);
    // run a small script as nobody: it scans both ways and prints what differs
    const script = path.join(dir, 'x-as-nobody.mjs');
    const src = path.resolve('dist/src/scan');
    fs.writeFileSync(
      script,
      `import { scanPacked, nativeCounts } from '${src}/native-scan.js';
import { packJobs, packResults, ResultBatch, unpackJobs } from '${src}/pool-protocol.js';
import { scanBatch } from '${src}/scan-entry.js';
const mk = (n, id) => { const p = Buffer.from('${dir}/' + n); return { id, path: p, real: p, algos: ['blake3'], growing: false, prefixLen: null, xattrs: true, flags: true, dirFd: -1 }; };
const jobs = [mk('x-secret', 1), mk('f1025', 2)];
const buf = Buffer.allocUnsafe(262144);
scanPacked(packJobs([mk('f1', 3)]).msg, buf); // the first open as nobody finds O_NOATIME refused (EPERM): the JavaScript way drops it
const first = nativeCounts.done;
const n = scanPacked(packJobs(jobs).msg, buf);
const js = packResults(scanBatch(unpackJobs(packJobs(jobs).msg), buf)).msg;
const a = jobs.map((_, i) => ResultBatch.packed(jobs, n.msg).result(i));
const b = jobs.map((_, i) => ResultBatch.packed(jobs, js).result(i));
console.log(JSON.stringify({ same: JSON.stringify(a, (k, v) => typeof v === 'bigint' ? String(v) : v) === JSON.stringify(b, (k, v) => typeof v === 'bigint' ? String(v) : v), code: a[0].code, ok: a[1].ok, done: nativeCounts.done - first }));
`,
    );
    fs.chmodSync(dir, 0o755);
    fs.chmodSync(script, 0o644);
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ same: true, code: 'EACCES', ok: true, done: 1 });
  });

  it('does nothing once the run is stopping: every job is answered as stopped', () => {
    const flag = new Int32Array(new SharedArrayBuffer(4));
    setStopFlag(flag);
    try {
      Atomics.store(flag, 0, 1);
      const jobs = SIZES.map((s, i) => ({ ...job(`f${s}`), id: i + 1 }));
      const before = nativeCounts.done;
      const p = scanPacked(packJobs(jobs).msg, buf)!;
      const rb = ResultBatch.packed(jobs, p.msg);
      expect(jobs.map((_, i) => rb.result(i))).toEqual(jobs.map((j) => ({ id: j.id, ok: false, code: 'EINTR', message: 'the run was stopped', rec: null })));
      expect(nativeCounts.done).toBe(before);
    } finally {
      Atomics.store(flag, 0, 0);
    }
  });

  it('tells the cache heuristic what the kernel said of its reads: advice on after a file found uncached', (ctx) => {
    const files = Array.from({ length: 8 }, (_, i) => {
      const f = path.join(dir, `x-cold-${i}`);
      fs.writeFileSync(f, crypto.randomBytes(20_000));
      return f;
    });
    if (!kernelNoWait(files[0]!)) {
      console.log('skipped: preadv2 with RWF_NOWAIT is not available here (the scan times its reads instead)');
      return ctx.skip();
    }
    const jobs = files.map((f, i) => ({ ...job(path.basename(f)), id: i + 1 }));
    const scan = () => scanPacked(packJobs(jobs).msg, buf);
    for (let k = 0; k < 40 && advisedBatches() > 0; k++) scan();
    expect(advisedBatches()).toBe(0); // a warm cache: nothing advised
    const before = nativeCounts.done;
    for (let k = 0; k < 3 && advisedBatches() === 0; k++) {
      const gone = evict(files[5]!);
      if (!gone) {
        console.log(`skipped: ${whyNotEvicted(gone, files[5]!)}`);
        return ctx.skip();
      }
      const r = ResultBatch.packed(jobs, scan()!.msg).result(5);
      expect(r).toMatchObject({ ok: true, rec: { blake3: blake3Hex(fs.readFileSync(files[5]!)) } });
    }
    expect(advisedBatches()).toBeGreaterThan(8);
    expect(nativeCounts.done - before).toBeGreaterThanOrEqual(8); // read natively, uncached or not
  });
});
