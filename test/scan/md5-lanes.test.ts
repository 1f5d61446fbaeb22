import { execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { md5Groups, md5Stream } from '../../src/scan/hash-pool.js';
import { canRaisePriority } from '../../src/scan/thread-priority.js';
import {
  createMd5Lanes,
  forceMd5Engine,
  forceScalarMd5,
  MAX_LANES,
  md5Files,
  md5Implementation,
  Md5Stream,
  packMd5Jobs,
  threadLanes,
  unpackMd5Jobs,
  type Md5Job,
  type Md5Lanes,
  type Md5Result,
} from '../../src/scan/md5-lanes.js';
import { nativeMd5, nativeMd5Why } from '../../src/scan/md5-native.js';
import { MD5_LANES_LAYOUT, MD5_LANES_WASM_BASE64 } from '../../src/scan/md5-lanes.wasm.js';
import { REPO, tmpdir } from '../helpers/cli.js';
import { createRequire } from 'node:module';
import { fileStatOf } from '../../src/scan/fileio.js';
import { hashFile, recordFromStat, scanBatch, setStopFlag, type ScanJob } from '../../src/scan/scan-entry.js';
import { editText } from '../helpers/tamper.js';
import { mulberry32 as prng } from '../../bench/lib/tree.js'; // deterministic: a failure replays from its seed

// The oracle is node:crypto's MD5 (OpenSSL), the digest dpkg's md5sums hold.
const md5 = (b: Uint8Array): string => crypto.createHash('md5').update(b).digest('hex');

const GEN = path.join(REPO, 'tools/gen-md5-wasm.mjs');
const WASM_TS = path.join(REPO, 'src/scan/md5-lanes.wasm.ts');
const READ = MD5_LANES_LAYOUT.read; // what one read fills: 128 KiB

const dir = tmpdir('integ-md5-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function shuffle<T>(xs: T[], rnd: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** What a scan recorded for `file`, as md5Files takes it. */
function jobOf(file: string): Md5Job {
  const st = fs.lstatSync(file, { bigint: true });
  return { real: Buffer.from(file), size: st.size, inode: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
}

interface Made {
  file: string;
  job: Md5Job;
  digest: string;
}

let seq = 0;
/** A new file of `size` random bytes, with its job and its MD5. */
function make(size: number): Made {
  const file = path.join(dir, `f${seq++}-${size}`);
  const data = crypto.randomBytes(size);
  fs.writeFileSync(file, data);
  return { file, job: jobOf(file), digest: md5(data) };
}

const changed = { code: 'ECHANGED', message: expect.any(String) };
const interrupted = { code: 'EINTR', message: expect.any(String) };

/** open descriptors of this process (to see that md5Files closes every file it opened) */
const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

/**
 * The lane engines: integ's native AVX-512 library (32 lanes; built by npm run build where a C
 * compiler is, loaded where the CPU has AVX-512F) and the wasm SIMD module (8 lanes). A test of the
 * native one says why it skips where it cannot load; the test below fails when it should have.
 */
const ENGINES = [
  ['native AVX-512 lanes', 'native'],
  ['wasm SIMD lanes', 'wasm'],
] as const;
function lanesOr(kind: 'native' | 'wasm', ctx: { skip(note?: string): void }): Md5Lanes {
  const e = createMd5Lanes(kind);
  if (!e) {
    console.log(`skipped: native MD5 lanes not available here (${nativeMd5Why()})`);
    ctx.skip();
  }
  return e!;
}
const hasCc = spawnSync('cc', ['--version']).status === 0;
const hasAvx512 = process.arch === 'x64' && /^flags\s*:.*\bavx512f\b/m.test(fs.readFileSync('/proc/cpuinfo', 'utf8'));

/**
 * Run `fn` while a watchdog opens `fifo` for writing after 3 s. A blocking open(O_RDONLY) of the
 * FIFO inside fn would be released by that writer instead of hanging the test file forever, and the
 * elapsed time tells that it blocked.
 */
function withFifoWatchdog<T>(fifo: string, fn: () => T): { value: T; ms: number } {
  const dog = spawn('sh', ['-c', 'sleep 3; exec 3>"$1"', 'sh', fifo], { stdio: 'ignore' });
  const t0 = performance.now();
  try {
    return { value: fn(), ms: performance.now() - t0 };
  } finally {
    dog.kill('SIGKILL');
  }
}

/** sizes on every MD5 padding boundary (55/56/64 in a block) and every read boundary */
const BOUNDARY_SIZES = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 4095, 4096, READ - 1, READ, READ + 1, 3 * READ + 17];

describe('md5Files: a file that would be the wasm lanes’ long tail goes through node:crypto', () => {
  beforeEach(() => forceMd5Engine('wasm'));
  afterEach(() => forceMd5Engine(null));
  /** md5Files(jobs), and how many node:crypto MD5s it made */
  function counted(jobs: Md5Job[], stop?: () => boolean): { got: Md5Result[]; scalar: number } {
    const spy = vi.spyOn(crypto, 'createHash');
    try {
      const got = md5Files(jobs, stop);
      return { got, scalar: spy.mock.calls.filter(([a]) => a === 'md5').length };
    } finally {
      spy.mockRestore();
    }
  }

  it('one file far larger than the rest of its share: node:crypto; the rest, and files of similar size, in the lanes', () => {
    const huge = make(4 * 1024 * 1024);
    const small = Array.from({ length: 10 }, (_, i) => make(1000 + i));
    const one = counted([huge, ...small].map((f) => f.job));
    expect(one.got).toEqual([huge, ...small].map((f) => f.digest));
    expect(one.scalar).toBe(1);
    // a huge one and a large one: each in turn would be the lanes' tail; both apart
    const huge2 = make(1024 * 1024);
    const two = counted([huge, huge2, ...small].map((f) => f.job));
    expect(two.got).toEqual([huge, huge2, ...small].map((f) => f.digest));
    expect(two.scalar).toBe(2);
    // two large ones side by side in the lanes are slower than one after the other in node:crypto
    const pair = [make(2 * 1024 * 1024), make(2 * 1024 * 1024 - 9)];
    const two2 = counted(pair.map((f) => f.job));
    expect(two2.got).toEqual(pair.map((f) => f.digest));
    expect(two2.scalar).toBe(2);
    // four or more of similar size run side by side in the lanes (faster than one after the other)
    const similar = [make(1024 * 1024), make(1024 * 1024 - 3), make(2 * READ + 5), make(2 * READ + 3), make(2 * READ)];
    const three = counted(similar.map((f) => f.job));
    expect(three.got).toEqual(similar.map((f) => f.digest));
    expect(three.scalar).toBe(0);
  });

  it('native lanes: the tail runs one lane at a time in C instead (no node:crypto), with the right digests', (ctx) => {
    lanesOr('native', ctx);
    forceMd5Engine('native');
    const huge = make(4 * 1024 * 1024);
    const pair = [make(2 * 1024 * 1024), make(2 * 1024 * 1024 - 9)];
    const small = Array.from({ length: 20 }, (_, i) => make(1000 + 37 * i));
    const before = threadLanes()!.aloneSteps;
    const r = counted([huge, ...pair, ...small].map((f) => f.job));
    expect(r.got).toEqual([huge, ...pair, ...small].map((f) => f.digest));
    expect(r.scalar).toBe(0);
    expect(threadLanes()!.aloneSteps - before, 'steps with 2 lanes or fewer busy went through integ_md5x1').toBeGreaterThan(0);
  });

  it('is stopped within a long file (every 32 MB), answering EINTR, with nothing left open', () => {
    const file = path.join(dir, 'sparse-96m');
    fs.writeFileSync(file, '');
    fs.truncateSync(file, 96 * 1024 * 1024); // sparse: read as zeros, no disk
    const small = make(100);
    const before = openFds();
    let calls = 0;
    // false for md5Files' own test before the file, true from the first test inside it
    const r = counted([jobOf(file), small.job], () => ++calls > 1);
    expect(r.got).toEqual([interrupted, interrupted]);
    expect(r.scalar).toBe(1);
    expect(calls).toBeGreaterThan(1);
    expect(openFds()).toBe(before);
    expect(md5Files([jobOf(file)])).toEqual([md5(Buffer.alloc(96 * 1024 * 1024))]);
  });
});

it('the lane module validates here, so md5Files runs the wasm lanes where the native ones do not load', () => {
  expect(WebAssembly.validate(Buffer.from(MD5_LANES_WASM_BASE64, 'base64'))).toBe(true);
  expect(createMd5Lanes('wasm')!.lanes).toBe(8);
  forceMd5Engine(null);
  expect(threadLanes()!.kind).toBe(nativeMd5() ? 'native' : 'wasm');
  expect(md5Implementation()).toMatch(nativeMd5() ? /^native AVX-512, 32 lanes$/ : /^wasm SIMD, 8 lanes \(native: .+\)$/);
});

it('the native lanes are built and load wherever a C compiler and AVX-512F are (as in CI): npm run build did not lose them', () => {
  console.log(`MD5 here: ${md5Implementation()}; cc ${hasCc ? 'present' : 'absent'}, AVX-512F ${hasAvx512 ? 'present' : 'absent'}`);
  if (hasCc && hasAvx512 && process.platform === 'linux') {
    expect(nativeMd5(), nativeMd5Why()).not.toBeNull();
    expect(createMd5Lanes('native')!.lanes).toBe(32);
  } else expect(nativeMd5()).toBeNull();
});

it('INTEG_MD5=wasm asks for the wasm lanes even where the native ones load, and says so', () => {
  const mod = path.join(REPO, 'dist/src/scan/md5-lanes.js');
  const code = `import(${JSON.stringify(mod)}).then((m) => console.log(m.md5Implementation(), m.threadLanes().kind))`;
  const r = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, INTEG_MD5: 'wasm' }, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout.trim()).toBe('wasm SIMD, 8 lanes (native: INTEG_MD5=wasm) wasm');
});

describe.each([
  ['native AVX-512 lanes', 'native'],
  ['wasm SIMD lanes', 'wasm'],
  ['node:crypto', 'scalar'],
] as const)('md5Files through %s', (_name, kind) => {
  const scalar = kind === 'scalar';
  beforeEach((ctx) => {
    if (kind === 'native') lanesOr('native', ctx);
    forceMd5Engine(kind);
  });
  afterEach(() => forceMd5Engine(null));

  it('gives node:crypto’s MD5 of files of every boundary size and random sizes, in random order, lanes refilled', () => {
    const rnd = prng(scalar ? 7 : 8);
    const sizes = [...BOUNDARY_SIZES, ...Array.from({ length: 2 * MAX_LANES }, () => Math.floor(rnd() * 1024 * 1024))];
    const files = shuffle(sizes.map(make), rnd);
    expect(files.length).toBeGreaterThan(2 * MAX_LANES);
    const got = md5Files(files.map((f) => f.job));
    expect(got).toEqual(files.map((f) => f.digest));
  });

  it('one large file on a lane while the other lanes go through many small ones (and the same job twice)', () => {
    const rnd = prng(scalar ? 21 : 22);
    // not so large that it would go through node:crypto (aloneFirst): 393 KB against 2.8 MB
    const big = make(3 * READ + 3);
    const small = Array.from({ length: 2 * MAX_LANES + 8 }, () => make(65_000 + Math.floor(rnd() * 10_000)));
    const files = [big, ...small, small[3]!];
    expect(md5Files(files.map((f) => f.job))).toEqual(files.map((f) => f.digest));
  });

  describe('a file that is no longer what was recorded is not hashed', () => {
    const off: [string, (j: Md5Job) => Md5Job][] = [
      ['size + 1', (j) => ({ ...j, size: j.size + 1n })],
      ['size - 1', (j) => ({ ...j, size: j.size - 1n })],
      ['inode + 1', (j) => ({ ...j, inode: j.inode + 1n })],
      ['mtime + 1 ns', (j) => ({ ...j, mtimeNs: j.mtimeNs + 1n })],
      ['mtime - 1 ns', (j) => ({ ...j, mtimeNs: j.mtimeNs - 1n })],
      ['ctime + 1 ns', (j) => ({ ...j, ctimeNs: j.ctimeNs + 1n })],
      ['ctime - 1 ns', (j) => ({ ...j, ctimeNs: j.ctimeNs - 1n })],
    ];
    it.each(off)('recorded %s: ECHANGED, its neighbours unaffected', (_what, skew) => {
      for (const size of [100, 2 * READ + 5]) {
        const [a, x, b] = [make(size), make(size), make(size + 7)];
        expect(md5Files([x.job])).toEqual([x.digest]); // the unskewed job hashes
        expect(md5Files([a.job, skew(x.job), b.job])).toEqual([a.digest, changed, b.digest]);
      }
    });

    it('a byte appended after the lstat: ECHANGED', () => {
      for (const size of [0, 64, READ]) {
        const x = make(size);
        fs.appendFileSync(x.file, 'x');
        expect(fs.lstatSync(x.file, { bigint: true }).size).toBe(x.job.size + 1n);
        expect(md5Files([x.job])).toEqual([changed]);
      }
    });
  });

  it('a missing file: ENOENT; a symlink at the path: ELOOP (not followed)', () => {
    const target = make(1000);
    const link = path.join(dir, `link${seq++}`);
    fs.symlinkSync(target.file, link);
    const missing = { ...target.job, real: Buffer.from(path.join(dir, 'no-such-file')) };
    const viaLink = { ...target.job, real: Buffer.from(link) };
    expect(md5Files([missing, viaLink, target.job])).toEqual([
      { code: 'ENOENT', message: expect.any(String) },
      { code: 'ELOOP', message: expect.any(String) },
      target.digest,
    ]);
  });

  it('a FIFO does not hang the read and gives ECHANGED (not a regular file)', () => {
    const fifo = path.join(dir, `fifo${seq++}`);
    execFileSync('mkfifo', [fifo]);
    const { value, ms } = withFifoWatchdog(fifo, () => md5Files([jobOf(fifo)]));
    expect(ms, 'md5Files blocked on the FIFO until a writer came').toBeLessThan(2000);
    expect(value).toEqual([changed]);
  });

  it('errors in the middle of a list leave every other digest of the call right, and every descriptor closed', () => {
    const rnd = prng(scalar ? 31 : 32);
    const good = Array.from({ length: 14 }, () => make(Math.floor(rnd() * 3 * READ)));
    const fifo = path.join(dir, `fifo${seq++}`);
    execFileSync('mkfifo', [fifo]);
    const link = path.join(dir, `link${seq++}`);
    fs.symlinkSync(good[0]!.file, link);
    const grown = make(5000);
    fs.appendFileSync(grown.file, 'more');
    const skewed = make(READ + 100);
    const bad: [Md5Job, Md5Result][] = [
      [
        { ...good[1]!.job, real: Buffer.from(path.join(dir, 'gone')) },
        { code: 'ENOENT', message: expect.any(String) },
      ],
      [
        { ...good[0]!.job, real: Buffer.from(link) },
        { code: 'ELOOP', message: expect.any(String) },
      ],
      [jobOf(fifo), changed],
      [grown.job, changed],
      [{ ...skewed.job, ctimeNs: skewed.job.ctimeNs + 1n }, changed],
    ];
    // the bad ones spread through the list: first, among the first lane fill, in the refills, last
    const list: [Md5Job, Md5Result][] = good.map((g) => [g.job, g.digest]);
    list.splice(0, 0, bad[0]!);
    list.splice(4, 0, bad[1]!);
    list.splice(10, 0, bad[2]!);
    list.splice(13, 0, bad[3]!);
    list.push(bad[4]!);
    const fds = openFds();
    const { value, ms } = withFifoWatchdog(fifo, () => md5Files(list.map(([j]) => j)));
    expect(ms, 'md5Files blocked on the FIFO until a writer came').toBeLessThan(2000);
    expect(openFds()).toBe(fds);
    expect(value).toEqual(list.map(([, r]) => r));
  });

  it('stop() true from the start: every job EINTR, nothing left open', () => {
    const files = Array.from({ length: 12 }, (_, i) => make(100 * i));
    const fds = openFds();
    expect(
      md5Files(
        files.map((f) => f.job),
        () => true,
      ),
    ).toEqual(files.map(() => interrupted));
    expect(md5Files([], () => true)).toEqual([]);
    expect(openFds()).toBe(fds);
  });

  it('stop() turning true midway: each job has its right digest or EINTR, the rest EINTR, nothing left open', () => {
    const files = Array.from({ length: MAX_LANES + 4 }, () => make(2 * READ + 1));
    let calls = 0;
    const fds = openFds();
    const got = md5Files(
      files.map((f) => f.job),
      () => ++calls > 3,
    );
    expect(openFds()).toBe(fds);
    got.forEach((r, i) => {
      if (typeof r !== 'string') expect(r).toEqual(interrupted);
      else expect(r).toBe(files[i]!.digest);
    });
    expect(got.filter((r) => typeof r !== 'string').length).toBeGreaterThan(0);
    expect(got[got.length - 1]).toEqual(interrupted);
  });
});

describe('packMd5Jobs / unpackMd5Jobs', () => {
  /** the jobs of an unpacked group (read by index, as md5Files reads them) */
  const all = (jobs: ReturnType<typeof unpackMd5Jobs>): Md5Job[] => Array.from({ length: jobs.length }, (_, i) => jobs.at(i)!);
  const plain = (jobs: Md5Job[]): object[] => jobs.map((j) => ({ ...j, real: Buffer.from(j.real).toString('hex') }));

  it('round-trip through one transferred buffer: non-UTF-8 path bytes, inodes from 2^63, 64-bit sizes and times', () => {
    const jobs: Md5Job[] = [
      {
        real: Buffer.from([0x2f, 0x74, 0xff, 0xfe]),
        size: 0n,
        inode: 2n ** 64n - 5n,
        mtimeNs: -1_500_000_000_000_000_001n,
        ctimeNs: 1_700_000_000_123_456_789n,
      },
      { real: Buffer.from('/usr/lib/x86_64-linux-gnu/libc.so.6'), size: 2n ** 63n - 1n, inode: 2n ** 63n, mtimeNs: 0n, ctimeNs: 2n ** 62n + 3n },
      { real: new Uint8Array(0), size: 1n, inode: 2n ** 63n - 1n, mtimeNs: 2n ** 63n - 1n, ctimeNs: -(2n ** 63n) },
      { real: Buffer.from('/é/ü'), size: 131072n, inode: 1n, mtimeNs: 1n, ctimeNs: 2n },
      // a path in the middle of a larger buffer
      { real: Buffer.from('xx/etc/passwdyy').subarray(2, 13), size: 4096n, inode: 12345678901234n, mtimeNs: 5n, ctimeNs: 6n },
    ];
    const { msg, transfer } = packMd5Jobs(jobs);
    expect(msg.n).toBe(jobs.length);
    expect(transfer).toHaveLength(1);
    expect(transfer[0]).toBe(msg.buf);
    const moved = structuredClone(msg, { transfer });
    expect(msg.buf.byteLength, 'the buffer was moved, not copied').toBe(0);
    const back = all(unpackMd5Jobs(moved));
    expect(plain(back)).toEqual(plain(jobs));
    expect(back.map((j) => typeof j.inode)).toEqual(jobs.map(() => 'bigint'));
    expect(back.every((j) => j.inode >= 0n)).toBe(true);
  });

  it('an empty list', () => {
    const { msg, transfer } = packMd5Jobs([]);
    expect(msg.n).toBe(0);
    const back = unpackMd5Jobs(structuredClone(msg, { transfer }));
    expect(back.length).toBe(0);
    expect(all(back)).toEqual([]);
  });

  it('unpacked jobs hash like the originals', () => {
    const files = [make(10), make(READ + 1), make(77)];
    const back = unpackMd5Jobs(packMd5Jobs(files.map((f) => f.job)).msg);
    expect(md5Files(back)).toEqual(files.map((f) => f.digest));
  });
});

describe('md5Groups', () => {
  it('worker threads (jobs = 2) and the main thread (jobs = 0) give what md5Files gives, each group once', async () => {
    const rnd = prng(41);
    const groups = Array.from({ length: 5 }, () => Array.from({ length: 3 + Math.floor(rnd() * 12) }, () => make(Math.floor(rnd() * 2 * READ)).job));
    groups[2]!.splice(1, 0, { ...groups[2]![0]!, real: Buffer.from(path.join(dir, 'absent')) });
    groups[3]!.push({ ...groups[3]![0]!, ctimeNs: groups[3]![0]!.ctimeNs + 1n });
    const expected = new Map(groups.map((g) => [g, md5Files(g)]));
    expect(expected.get(groups[2]!)![1]).toMatchObject({ code: 'ENOENT' });
    expect(expected.get(groups[3]!)!.at(-1)).toMatchObject({ code: 'ECHANGED' });
    for (const jobs of [2, 0]) {
      const got = new Map<Md5Job[], Md5Result[]>();
      for await (const [g, r] of md5Groups(groups, jobs, new AbortController().signal)) {
        expect(got.has(g), `jobs=${jobs}: a group came back twice`).toBe(false);
        got.set(g, r);
      }
      expect(got.size).toBe(groups.length);
      for (const g of groups) expect(got.get(g), `jobs=${jobs}`).toEqual(expected.get(g));
    }
  });
});

it('the committed module is exactly what the generator emits (--check), and --check notices a difference', () => {
  const ok = spawnSync(process.execPath, [GEN, '--check'], { encoding: 'utf8' });
  expect(ok.status, ok.stderr).toBe(0);
  // The header names the npm script that regenerates it, and package.json has that script.
  const script = /\(npm run ([\w:-]+)\)/.exec(fs.readFileSync(WASM_TS, 'utf8').split('\n')[0]!)?.[1];
  expect(script).toBe('gen:md5');
  const scripts = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  expect(scripts['gen:md5']).toBe('node tools/gen-md5-wasm.mjs');
  const tampered = path.join(dir, 'md5-lanes.wasm.ts');
  fs.copyFileSync(WASM_TS, tampered);
  const same = spawnSync(process.execPath, [GEN, '--check', '--out', tampered], { encoding: 'utf8' });
  expect(same.status, same.stderr).toBe(0); // --out is honoured: the untouched copy passes
  editText(tampered, (t) => t.replace(/A/, 'B'));
  const bad = spawnSync(process.execPath, [GEN, '--check', '--out', tampered], { encoding: 'utf8' });
  expect(bad.status).toBe(1);
  expect(bad.stderr).toMatch(/is not what the generator emits/);
  expect(fs.readFileSync(WASM_TS, 'utf8'), '--check wrote nothing').not.toBe(fs.readFileSync(tampered, 'utf8'));
});

describe.each(ENGINES)('%s fed in pieces of any size', (_name, kind) => {
  it('short reads (less than a block, as a network file system may return) do not lose or overwrite bytes; lanes end apart', (ctx) => {
    const eng = lanesOr(kind, ctx);
    const LANES = eng.lanes;
    const rnd = prng(7);
    for (let round = 0; round < 4; round++) {
      // each lane: its own input, cut into pieces of 1..200 bytes with an occasional whole read
      const inputs = Array.from({ length: LANES }, (_, l) => crypto.randomBytes(l * 97 + Math.floor(rnd() * 3 * READ)));
      const fedSoFar = new Array<number>(LANES).fill(0);
      const digests = new Array<string | null>(LANES).fill(null);
      for (let l = 0; l < LANES; l++) eng.begin(l);
      for (;;) {
        let n = Infinity;
        for (let l = 0; l < LANES; l++) {
          if (!eng.isBusy(l)) continue;
          while (eng.blocks(l) === 0) {
            const rest = inputs[l]!.length - fedSoFar[l]!;
            if (rest === 0) {
              eng.finish(l);
              break;
            }
            const piece = Math.min(rest, rnd() < 0.1 ? READ : 1 + Math.floor(rnd() * 200));
            inputs[l]!.copy(eng.readBuffer(l), 0, fedSoFar[l]!, fedSoFar[l]! + piece);
            eng.fed(l, piece);
            fedSoFar[l]! += piece;
          }
          n = Math.min(n, eng.blocks(l));
        }
        if (n === Infinity) break;
        eng.step(n);
        for (let l = 0; l < LANES; l++) if (eng.isBusy(l) && eng.done(l)) digests[l] = eng.digest(l);
      }
      expect(digests).toEqual(inputs.map(md5));
    }
    // the native lanes' last steps, with two lanes or fewer left, ran one lane at a time in C
    if (kind === 'native') expect(eng.aloneSteps).toBeGreaterThan(0);
  });
});

describe('native lanes: two sets of 16 in the AVX-512 code', () => {
  /** Hash `inputs` on exactly the lanes `busy` (each a whole input of at most READ bytes), the other lanes idle. */
  function onLanes(eng: Md5Lanes, busy: number[], inputs: Buffer[]): string[] {
    const digests = new Array<string>(busy.length);
    busy.forEach((l, i) => {
      inputs[i]!.copy(eng.readBuffer(l));
      eng.whole(l, inputs[i]!.length);
    });
    for (;;) {
      const left = busy.filter((l) => eng.isBusy(l));
      if (left.length === 0) return digests;
      eng.step(Math.min(...left.map((l) => eng.blocks(l))));
      busy.forEach((l, i) => {
        if (eng.isBusy(l) && eng.done(l)) digests[i] = eng.digest(l);
      });
    }
  }

  it('any lanes of either set, alone or together, give node:crypto’s MD5; a lane of the second set alone goes through C', (ctx) => {
    const eng = lanesOr('native', ctx);
    expect(eng.lanes).toBe(32);
    const rnd = prng(16);
    const subsets = [[16], [31], [15, 16], [0, 31], [3, 20, 29], [...Array(16).keys()], [...Array(16).keys()].map((l) => l + 16), [...Array(32).keys()]];
    for (const busy of subsets) {
      const inputs = busy.map(() => crypto.randomBytes(Math.floor(rnd() * 5000)));
      const alone = eng.aloneSteps;
      expect(onLanes(eng, busy, inputs), `lanes ${busy.join(',')}`).toEqual(inputs.map(md5));
      // one or two lanes busy: one MD5 in C on that lane's set's state
      if (busy.length <= 2) expect(eng.aloneSteps, `lanes ${busy.join(',')}`).toBeGreaterThan(alone);
    }
  });
});

describe('md5Files leaves access times alone', () => {
  it('opens with O_NOATIME, as the scan does (atime set two days back stays there; a plain read moves it)', (ctx) => {
    const file = path.join(dir, 'atime');
    fs.writeFileSync(file, crypto.randomBytes(5000));
    const backdate = (): bigint => {
      fs.utimesSync(file, new Date(Date.now() - 2 * 86400_000), fs.statSync(file).mtime);
      return fs.statSync(file, { bigint: true }).atimeNs;
    };
    const atime = (): bigint => fs.statSync(file, { bigint: true }).atimeNs;
    // control: on this mount, does a plain read move an atime that old (not noatime, not read-only)?
    let before = backdate();
    fs.readFileSync(file);
    if (atime() === before) {
      console.log(`skipped: reads do not update atime on the file system of ${dir}`);
      return ctx.skip();
    }
    before = backdate();
    const [r] = md5Files([jobOf(file)]);
    expect(atime()).toBe(before);
    expect(r).toBe(md5(fs.readFileSync(file)));
  });
});

describe('scanBatch: MD5 of small packaged files in the scan read (md5Lanes)', () => {
  const blake3 = createRequire(import.meta.url)('blake3-wasm') as { createHash(): { update(b: Uint8Array): { digest(e: 'hex'): string } } };
  const b3 = (b: Uint8Array): string => blake3.createHash().update(b).digest('hex');
  const scanJob = (file: string, id: number, over: Partial<ScanJob> = {}): ScanJob => ({
    id,
    path: Buffer.from(file),
    real: Buffer.from(file),
    algos: ['blake3'],
    growing: false,
    prefixLen: null,
    md5Lanes: true,
    ...over,
  });
  const sizes = [...BOUNDARY_SIZES, 1000, 2047, 2048, 2049, 70_000];
  afterEach(() => forceScalarMd5(false));

  it.for(ENGINES)(
    '%s: every file that fits a lane gets its MD5, with the BLAKE3 and the rest of the record as without it; larger files, other entries and jobs without md5Lanes get none',
    ([, kind], ctx) => {
      const LANES = lanesOr(kind, ctx).lanes;
      forceMd5Engine(kind);
      const rnd = prng(7);
      // enough files that fit a lane to fill every lane more than twice (the sizes again, 3 bytes longer each time)
      const all: number[] = [];
      for (let k = 0; all.filter((s) => s <= READ).length <= 2 * LANES; k++) all.push(...sizes.map((s) => s + 3 * k));
      const made = shuffle(all, rnd).map((s) => ({ ...make(s), data: null as Buffer | null }));
      for (const m of made) m.data = fs.readFileSync(m.file);
      const fifo = path.join(dir, 'lanes-fifo');
      if (!fs.existsSync(fifo)) execFileSync('mkfifo', [fifo]);
      const link = path.join(dir, 'lanes-link');
      if (!fs.existsSync(link)) fs.symlinkSync(made[0]!.file, link);
      const plain = make(3000);
      let id = 0;
      const jobs = [
        ...made.map((m) => scanJob(m.file, ++id, { xattrs: true, flags: true })),
        scanJob(fifo, ++id),
        scanJob(link, ++id),
        scanJob(dir, ++id),
        scanJob(path.join(dir, 'no-such-file'), ++id),
        scanJob(plain.file, ++id, { md5Lanes: false }),
      ];
      const buf = Buffer.allocUnsafe(256 * 1024);
      const got = scanBatch(jobs, buf);
      const without = scanBatch(
        jobs.map((j) => ({ ...j, md5Lanes: false })),
        buf,
      );
      for (const [i, m] of made.entries()) {
        const r = got[i]!;
        expect(r.ok, m.file).toBe(true);
        expect(r.rec!.blake3).toBe(b3(m.data!));
        expect(r.rec!.extra?.md5).toBe(m.data!.length <= READ ? m.digest : undefined);
        // apart from the MD5, exactly the record of a scan without it
        const { extra: _, ...rest } = r.rec!;
        expect(rest).toEqual(without[i]!.rec);
      }
      expect(made.filter((m) => m.data!.length <= READ).length).toBeGreaterThan(2 * LANES); // lanes were refilled
      for (const r of got.slice(made.length)) expect(r.rec?.extra).toBeUndefined();
      expect(got.slice(made.length)).toEqual(without.slice(made.length));
    },
  );

  it('adds the MD5 to what else the job asks in the same read (SHA-256, an IOC feed digest)', () => {
    const m = make(10_000);
    const data = fs.readFileSync(m.file);
    const [r] = scanBatch([scanJob(m.file, 1, { algos: ['blake3', 'sha256'], extra: ['sha1'] })], Buffer.allocUnsafe(256 * 1024));
    expect(r!.rec).toMatchObject({
      blake3: b3(data),
      sha256: crypto.createHash('sha256').update(data).digest('hex'),
      extra: { sha1: crypto.createHash('sha1').update(data).digest('hex'), md5: m.digest },
    });
  });

  it("an IOC feed's MD5 (extra md5) with md5Lanes: the lane gives it to a file that fits one, node:crypto in the read to a larger one, each file hashed once", () => {
    const small = make(10_000);
    const large = make(READ + 5000);
    const jobs = [scanJob(small.file, 1, { extra: ['md5'] }), scanJob(large.file, 2, { extra: ['md5'] })];
    const buf = Buffer.allocUnsafe(256 * 1024);
    const spy = vi.spyOn(crypto, 'createHash');
    let got: ReturnType<typeof scanBatch>;
    let md5Made: number;
    try {
      got = scanBatch(jobs, buf);
      md5Made = spy.mock.calls.filter(([a]) => a === 'md5').length;
    } finally {
      spy.mockRestore();
    }
    expect(got.map((r) => r.rec?.extra?.md5)).toEqual([small.digest, large.digest]);
    expect(md5Made).toBe(1); // the larger file's; the small one's MD5 came from its lane alone
    // where the lanes are not available, node:crypto gives both, the same digests
    forceScalarMd5(true);
    expect(scanBatch(jobs, buf).map((r) => r.rec?.extra?.md5)).toEqual([small.digest, large.digest]);
  });

  it('gives no MD5 where the lanes are not available (the caller compares those files apart)', () => {
    forceScalarMd5(true);
    const m = make(5000);
    const [r] = scanBatch([scanJob(m.file, 1)], Buffer.allocUnsafe(256 * 1024));
    expect(r).toMatchObject({ ok: true, rec: { blake3: b3(fs.readFileSync(m.file)) } });
    expect(r!.rec!.extra).toBeUndefined();
  });

  it('reads into the lane exactly as into its own buffer: a file that grew after lstat is ECHANGED, with no digest', () => {
    const m = make(5000);
    const st = fileStatOf(fs.lstatSync(m.file, { bigint: true }));
    fs.appendFileSync(m.file, 'more');
    const j = scanJob(m.file, 1);
    const lane = Buffer.alloc(READ);
    const r = hashFile(j, st, recordFromStat(j.path, st), Buffer.allocUnsafe(256 * 1024), undefined, null, lane);
    expect(r).toMatchObject({ ok: false, code: 'ECHANGED', rec: { blake3: null } });
    // and one that did not change is read whole into it
    const st2 = fileStatOf(fs.lstatSync(m.file, { bigint: true }));
    const r2 = hashFile(j, st2, recordFromStat(j.path, st2), Buffer.allocUnsafe(256 * 1024), undefined, null, lane);
    expect(r2.ok).toBe(true);
    expect(lane.subarray(0, 5004)).toEqual(fs.readFileSync(m.file));
  });

  it('leaves no descriptor open and every lane free, even when stopped between files', () => {
    const files = Array.from({ length: 20 }, (_, i) => make(1000 * i + 1).file);
    const before = openFds();
    const buf = Buffer.allocUnsafe(256 * 1024);
    const stop = new Int32Array(new SharedArrayBuffer(4));
    setStopFlag(stop);
    try {
      Atomics.store(stop, 0, 1);
      const stopped = scanBatch(
        files.map((f, i) => scanJob(f, i + 1)),
        buf,
      );
      expect(stopped.every((r) => !r.ok && r.code === 'EINTR')).toBe(true);
      Atomics.store(stop, 0, 0);
      const again = scanBatch(
        files.map((f, i) => scanJob(f, i + 1)),
        buf,
      );
      expect(again.map((r) => r.rec?.extra?.md5)).toEqual(files.map((f) => md5(fs.readFileSync(f))));
    } finally {
      Atomics.store(stop, 0, 0);
    }
    expect(openFds()).toBe(before);
  });
});

describe.each(ENGINES)('Md5Stream through %s: files that keep coming', (_name, kind) => {
  let LANES = 0;
  let eng: () => Md5Lanes;
  beforeEach((ctx) => {
    LANES = lanesOr(kind, ctx).lanes;
    eng = () => createMd5Lanes(kind)!;
  });

  it('waits while fewer files than lanes are queued; a drain hashes the rest; each file answered once, rightly', () => {
    const rnd = prng(93);
    const files = Array.from({ length: 3 * LANES + 5 }, () => make(Math.floor(rnd() * 3 * READ)));
    const s = new Md5Stream(eng());
    const got = new Map<number, Md5Result>();
    const take = (out: Array<[number, Md5Result]>): void => {
      for (const [id, r] of out) {
        expect(got.has(id), `file ${id} answered twice`).toBe(false);
        got.set(id, r);
      }
    };
    for (let i = 0; i < LANES - 1; i++) s.add(i, files[i]!.job);
    expect(s.pump(false, Infinity), 'one lane would idle: nothing hashed').toEqual([]);
    expect(s.ready(false), 'files in lanes, one lane empty, none queued').toBe(false);
    expect(s.pending).toBe(LANES - 1);
    for (let i = LANES - 1; i < files.length; i++) {
      s.add(i, files[i]!.job);
      if (s.ready(false)) take(s.pump(false, Infinity));
    }
    // without a drain, it stops once a lane has nothing left to take
    expect(s.pending).toBeGreaterThan(0);
    expect(s.pending).toBeLessThan(LANES);
    expect(s.ready(false)).toBe(false);
    expect(s.ready(true)).toBe(true);
    take(s.pump(true, Infinity));
    expect(s.pending).toBe(0);
    expect(got.size).toBe(files.length);
    files.forEach((f, i) => expect(got.get(i), f.file).toBe(f.digest));
  });

  it('a budget returns between steps with the lanes kept; the next pump goes on where it stopped', () => {
    const files = Array.from({ length: LANES }, () => make(4 * READ + 3));
    const s = new Md5Stream(eng());
    files.forEach((f, i) => s.add(i, f.job));
    let pumps = 0;
    const got: Array<[number, Md5Result]> = [];
    while (s.pending > 0) {
      got.push(...s.pump(false, 64)); // 4 KiB a lane at a time
      pumps++;
      expect(pumps).toBeLessThan(1000);
    }
    expect(pumps, 'stopped at its budget').toBeGreaterThan(20);
    expect(new Map(got)).toEqual(new Map(files.map((f, i) => [i, f.digest])));
  });

  it('a file that changed or vanished after it was recorded is answered with why; close() shuts what is still open', () => {
    const fds = openFds();
    const files = Array.from({ length: LANES + 2 }, () => make(2 * READ));
    const s = new Md5Stream(eng());
    files.forEach((f, i) => s.add(i, f.job));
    s.add(100, { ...files[0]!.job, ctimeNs: files[0]!.job.ctimeNs + 1n });
    s.add(101, { ...files[0]!.job, real: Buffer.from(path.join(dir, 'absent')) });
    const got = new Map(s.pump(true, Infinity));
    expect(got.get(100)).toEqual(changed);
    expect(got.get(101)).toMatchObject({ code: 'ENOENT' });
    files.forEach((f, i) => expect(got.get(i)).toBe(f.digest));
    const t = new Md5Stream(eng());
    files.forEach((f, i) => t.add(i, f.job));
    t.pump(false, 1); // every lane has a file open
    expect(openFds()).toBeGreaterThanOrEqual(fds + LANES);
    t.close();
    expect(openFds()).toBe(fds);
  });

  it('without wasm SIMD (node:crypto), files are hashed one after the other, lanes or not', () => {
    const files = Array.from({ length: 3 }, () => make(READ + 5));
    const s = new Md5Stream(null);
    files.forEach((f, i) => s.add(i, f.job));
    expect(s.ready(false)).toBe(true);
    expect(new Map(s.pump(false, Infinity))).toEqual(new Map(files.map((f, i) => [i, f.digest])));
  });
});

describe('md5Stream: background workers', () => {
  const answers = (): { got: Map<number, Md5Result>; onResult: (tag: number, r: Md5Result) => void } => {
    const got = new Map<number, Md5Result>();
    return {
      got,
      onResult: (tag, r) => {
        expect(got.has(tag), `file ${tag} answered twice`).toBe(false);
        got.set(tag, r);
      },
    };
  };

  it('files added over time, a few at a time, all answered rightly by end() (2 workers at nice 19)', async () => {
    const rnd = prng(17);
    const files = Array.from({ length: 45 }, () => make(Math.floor(rnd() * 4 * READ)));
    const { got, onResult } = answers();
    const s = md5Stream<number>(2, new AbortController().signal, onResult, 19);
    for (let i = 0; i < files.length; i++) {
      s.add(files[i]!.job, i);
      if (i % 7 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    s.add({ ...files[3]!.job, mtimeNs: files[3]!.job.mtimeNs - 1n }, 1000);
    await s.end();
    expect(got.size).toBe(files.length + 1);
    files.forEach((f, i) => expect(got.get(i), f.file).toBe(f.digest));
    expect(got.get(1000)).toEqual(changed);
  });

  it('nothing added: end() resolves without starting a worker', async () => {
    const s = md5Stream<number>(2, new AbortController().signal, () => {
      throw new Error('no file');
    });
    await s.end();
  });

  it('an abort rejects end() and the workers leave with every file closed; close() stops without waiting for the rest', async () => {
    const fds = openFds();
    const files = Array.from({ length: 24 }, () => make(8 * READ));
    const ac = new AbortController();
    const s = md5Stream<number>(2, ac.signal, () => {});
    files.forEach((f, i) => s.add(f.job, i));
    ac.abort();
    await expect(s.end()).rejects.toThrow(/interrupt|abort/i);
    const t = md5Stream<number>(2, new AbortController().signal, () => {});
    files.forEach((f, i) => t.add(f.job, i));
    await t.close();
    expect(openFds()).toBe(fds);
  });

  it('a worker started at nice 19 hashes at nice 19 and goes back to its first priority for md5end', async () => {
    const tasks = (): Map<string, number> =>
      new Map(
        fs.readdirSync('/proc/self/task').map((t) => {
          const st = fs.readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
          return [t, Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[16])] as const;
        }),
      );
    const before = tasks();
    const { Worker } = await import('node:worker_threads');
    const w = new Worker(path.join(REPO, 'dist/src/scan/hash.worker.js'), { workerData: { stop: new SharedArrayBuffer(4), nice: 19 } });
    try {
      const files = Array.from({ length: MAX_LANES }, () => make(READ)); // every lane of either engine busy
      const { msg, transfer } = packMd5Jobs(files.map((f) => f.job));
      const got = new Map<number, Md5Result>();
      const drained = new Promise<void>((resolve) =>
        w.on('message', (m: { md5done?: Array<[number, Md5Result]>; md5drained?: true }) => {
          for (const [id, r] of m.md5done ?? []) got.set(id, r);
          if (m.md5drained) resolve();
        }),
      );
      w.postMessage({ md5add: msg, first: 10 }, transfer);
      let mine: string | undefined;
      for (let i = 0; i < 200 && !mine; i++) {
        mine = [...tasks()].find(([t, nice]) => !before.has(t) && nice === 19)?.[0];
        if (!mine) await new Promise((r) => setTimeout(r, 10));
      }
      expect(mine, 'a new thread at nice 19').toBeDefined();
      w.postMessage({ md5end: true });
      await drained;
      files.forEach((f, i) => expect(got.get(10 + i)).toBe(f.digest));
      if (!canRaisePriority()) {
        console.log('skipped: back to the first priority needs CAP_SYS_NICE (run as root)');
        return;
      }
      expect(tasks().get(mine!), 'back at nice 0').toBe(0);
    } finally {
      await w.terminate();
    }
  });

  it('canRaisePriority says what the kernel allows: root here, not nobody', () => {
    const probe = `import(${JSON.stringify(path.join(REPO, 'dist/src/scan/thread-priority.js'))}).then((m) => process.stdout.write(String(m.canRaisePriority())))`;
    const me = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
    expect(me.stdout).toBe(String(process.getuid?.() === 0));
    if (process.getuid?.() !== 0) return console.log('skipped: the unprivileged half needs root to drop to nobody');
    const nobody = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', probe], { encoding: 'utf8' });
    expect(nobody.stdout, nobody.stderr).toBe('false');
  });
});
