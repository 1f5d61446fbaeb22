import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { PackageCheck, sharesBySize } from '../../src/app/package-check.js';
import type { Observed } from '../../src/core/types.js';
import type { PackageIndex } from '../../src/pkg/dpkg.js';
import { loadPackages } from '../../src/pkg/packages.js';
import { tmpdir, writerUnder } from '../helpers/cli.js';
import { mulberry32 as prng } from '../../bench/lib/tree.js'; // deterministic: a failure replays from its seed

const md5 = (b: string | Buffer): string => crypto.createHash('md5').update(b).digest('hex');
const silent = pino({ level: 'silent' });

describe('sharesBySize', () => {
  type F = { id: number; size: bigint };
  const files = (sizes: number[]): F[] => sizes.map((s, id) => ({ id, size: BigInt(s) }));
  const total = (share: F[]): number => share.reduce((t, f) => t + Number(f.size), 0);

  function expectPartition(shares: F[][], input: F[]): void {
    const ids = shares.flat().map((f) => f.id);
    expect(ids.length).toBe(input.length);
    expect(new Set(ids).size).toBe(input.length);
    expect([...ids].sort((a, b) => a - b)).toEqual(input.map((f) => f.id));
    for (const s of shares) {
      expect(s.length).toBeGreaterThan(0);
      for (let i = 1; i < s.length; i++) expect(s[i - 1]!.size >= s[i]!.size, `share not largest first at ${i}`).toBe(true);
    }
  }

  it('n = 2 over many random sizes: every file once, each share largest first, totals within the largest file', () => {
    for (const seed of [1, 2, 3]) {
      const rnd = prng(seed);
      // mostly small files, a few large ones, some equal sizes
      const input = files(Array.from({ length: 600 }, () => (rnd() < 0.05 ? Math.floor(rnd() * 50e6) : rnd() < 0.2 ? 4096 : Math.floor(rnd() * 200_000))));
      const shares = sharesBySize(input, 2);
      expect(shares).toHaveLength(2);
      expectPartition(shares, input);
      const largest = Math.max(...input.map((f) => Number(f.size)));
      expect(Math.abs(total(shares[0]!) - total(shares[1]!))).toBeLessThanOrEqual(largest);
    }
  });

  it('n = 2 with one file far larger than the rest: it has a share of its own', () => {
    const input = files([1_000_000, 10, 20, 30, 40]);
    const shares = sharesBySize(input, 2);
    expectPartition(shares, input);
    expect(shares.map((s) => s.map((f) => f.id))).toEqual([[0], [4, 3, 2, 1]]);
  });

  it('n = 3 and n = 8: every file once, sorted shares, none empty', () => {
    const rnd = prng(9);
    const input = files(Array.from({ length: 100 }, () => Math.floor(rnd() * 1e6)));
    for (const n of [3, 8]) {
      const shares = sharesBySize(input, n);
      expect(shares).toHaveLength(n);
      expectPartition(shares, input);
    }
    // fewer files than shares: no empty share
    const two = files([5, 7]);
    const shares = sharesBySize(two, 4);
    expect(shares).toHaveLength(2);
    expectPartition(shares, two);
  });

  it('n = 0 or 1: one share of all, largest first', () => {
    const input = files([3, 100, 0, 100, 7, 2 ** 40]);
    for (const n of [0, 1]) {
      const shares = sharesBySize(input, n);
      expect(shares).toHaveLength(1);
      expectPartition(shares, input);
      expect(shares[0]!.map((f) => Number(f.size))).toEqual([2 ** 40, 100, 100, 7, 3, 0]);
    }
  });

  it('no files: no shares', () => {
    for (const n of [0, 1, 2, 8]) expect(sharesBySize([], n)).toEqual([]);
  });
});

describe('PackageCheck', () => {
  const d = tmpdir('integ-pkgcheck-');
  afterAll(() => fs.rmSync(d, { recursive: true, force: true }));
  const R = path.join(d, 'root');
  const w = writerUnder(R);

  /** packaged files: what the package shipped (its md5 goes to md5sums) and what is on disk now */
  const shipped = new Map<string, { shipped: Buffer; disk: Buffer }>();
  const ship = (p: string, text: string | Buffer, disk: string | Buffer = text): void => {
    shipped.set(p, { shipped: Buffer.from(text), disk: Buffer.from(disk) });
    w(p.slice(1), disk);
  };
  ship('/usr/bin/tool', 'tool v1\n');
  ship('/usr/bin/other', 'other v1\n', 'other, trojaned\n');
  ship('/usr/bin/extra-ok', 'extra v1\n');
  ship('/usr/share/tool/big', crypto.randomBytes(300_000));
  const rnd = prng(77);
  const data: string[] = [];
  for (let i = 0; i < 24; i++) {
    const p = `/usr/share/tool/data${i}`;
    const content = crypto.randomBytes(1 + Math.floor(rnd() * 400_000));
    if (i % 3 === 0) {
      // one bit flipped: the same size, another content
      const edited = Buffer.from(content);
      const at = Math.floor(edited.length / 2);
      edited[at] = edited[at]! ^ 1;
      ship(p, content, edited);
    } else ship(p, content);
    data.push(p);
  }
  // a conffile (its md5 is in status, not md5sums) the admin edited
  const CONF = { shipped: 'setting = 1\n', disk: 'setting = 2\n' };
  w('etc/tool.conf', CONF.disk);
  w('usr/bin/stray', 'not from any package\n');
  fs.symlinkSync('tool', path.join(R, 'usr/bin/tool-link'));
  w(
    'var/lib/dpkg/status',
    'Package: toolpkg\nStatus: install ok installed\nVersion: 1.0-1\nArchitecture: amd64\nConffiles:\n' +
      ` /etc/tool.conf ${md5(CONF.shipped)}\n` +
      'Description: a test package\n',
  );
  w('var/lib/dpkg/info/toolpkg.md5sums', [...shipped].map(([p, f]) => `${md5(f.shipped)}  ${p.slice(1)}\n`).join(''));
  w('var/lib/dpkg/info/toolpkg.list', ['/.', '/etc', '/etc/tool.conf', '/usr', '/usr/bin', '/usr/bin/tool-link', ...shipped.keys()].join('\n') + '\n');

  let index: PackageIndex | undefined;
  const load = async (): Promise<PackageIndex> => {
    index ??= (await loadPackages(R))!;
    expect(index?.manager).toBe('dpkg');
    return index;
  };

  /** What the scan recorded for path p (as seen inside the root), from its lstat. */
  function recOf(p: string, over: Partial<Observed> = {}): Observed {
    const st = fs.lstatSync(path.join(R, p), { bigint: true });
    return {
      path: Buffer.from(p),
      type: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'unknown',
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: st.size,
      mtimeNs: st.mtimeNs,
      ctimeNs: st.ctimeNs,
      inode: st.ino,
      nlink: Number(st.nlink),
      target: st.isSymbolicLink() ? fs.readlinkSync(path.join(R, p), { encoding: 'buffer' }) : null,
      blake3: st.isFile() ? 'ab'.repeat(32) : null,
      sha256: null,
      ...over,
    };
  }
  const add = (pc: PackageCheck, p: string, over: Partial<Observed> = {}): void => pc.add(Buffer.from(p), Buffer.from(path.join(R, p)), recOf(p, over));

  const mismatch = (p: string, expected: string, actual: string, conffile = false): object => ({
    path: Buffer.from(p),
    package: { manager: 'dpkg', name: 'toolpkg', version: '1.0-1' },
    algorithm: 'md5',
    expected,
    actual,
    conffile,
  });

  it('compares queued files with their package: a differing file and an edited conffile are mismatches; unpackaged files, directories, symlinks are ignored', async () => {
    const pc = new PackageCheck(await load());
    for (const p of ['/usr/bin/other', '/usr/bin/stray', '/usr/bin', '/usr/bin/tool-link', '/usr/share/tool/big', '/etc/tool.conf', '/usr/bin/tool', '/etc'])
      add(pc, p);
    expect(pc.checked, 'nothing compared before finish()').toBe(0);
    await pc.finish(0, new AbortController().signal, silent);
    expect(pc.checked).toBe(4); // other, big, tool.conf, tool
    expect(pc.unverified).toEqual([]);
    expect(pc.mismatches).toEqual([
      mismatch('/etc/tool.conf', md5(CONF.shipped), md5(CONF.disk), true),
      mismatch('/usr/bin/other', md5('other v1\n'), md5('other, trojaned\n')),
    ]);
  });

  it('a file whose recorded ctime is off by one is unverified (ECHANGED): not compared, not counted, logged', async () => {
    const pc = new PackageCheck(await load());
    const lines: string[] = [];
    const log = pino(
      { level: 'warn' },
      new Writable({
        write(chunk, _enc, cb) {
          lines.push(String(chunk));
          cb();
        },
      }),
    );
    const other = recOf('/usr/bin/other');
    add(pc, '/usr/bin/other', { ctimeNs: other.ctimeNs + 1n }); // its content differs: compared, it would be a mismatch
    add(pc, '/usr/bin/tool');
    add(pc, '/usr/bin/extra-ok', { mtimeNs: recOf('/usr/bin/extra-ok').mtimeNs - 1n });
    await pc.finish(0, new AbortController().signal, log);
    expect(pc.checked).toBe(1);
    expect(pc.mismatches).toEqual([]);
    expect(pc.unverified).toEqual([
      { path: Buffer.from('/usr/bin/extra-ok'), code: 'ECHANGED', message: expect.any(String) },
      { path: Buffer.from('/usr/bin/other'), code: 'ECHANGED', message: expect.any(String) },
    ]);
    const warned = lines.map((l) => JSON.parse(l) as { path: string; code: string });
    expect(warned.map((l) => [l.path, l.code]).sort()).toEqual([
      ['/usr/bin/extra-ok', 'ECHANGED'],
      ['/usr/bin/other', 'ECHANGED'],
    ]);
  });

  it('a record that carries its md5 (extra.md5) is compared in add(), not read again', async () => {
    const pc = new PackageCheck(await load());
    const wrong = 'f'.repeat(32);
    // ctime off by one: were either read again, it would be ECHANGED instead of compared
    const skew = (p: string): bigint => recOf(p).ctimeNs + 1n;
    add(pc, '/usr/bin/extra-ok', { extra: { md5: wrong }, ctimeNs: skew('/usr/bin/extra-ok') }); // matches on disk; the record says otherwise
    add(pc, '/usr/bin/other', { extra: { md5: md5('other v1\n') }, ctimeNs: skew('/usr/bin/other') }); // differs on disk; the record says it matches
    add(pc, '/usr/bin/tool', { extra: { sha256: 'e'.repeat(64) } }); // a digest of another algorithm: queued for MD5
    expect(pc.checked).toBe(2);
    expect(pc.mismatches).toEqual([mismatch('/usr/bin/extra-ok', md5('extra v1\n'), wrong)]);
    await pc.finish(0, new AbortController().signal, silent);
    expect(pc.checked).toBe(3);
    expect(pc.unverified).toEqual([]);
    expect(pc.mismatches).toEqual([mismatch('/usr/bin/extra-ok', md5('extra v1\n'), wrong)]);
  });

  it('finish() in 2 worker threads gives what it gives on the main thread', async () => {
    const idx = await load();
    const run = async (jobs: number, streamed = false): Promise<PackageCheck> => {
      const pc = new PackageCheck(idx);
      if (streamed) expect(pc.stream(jobs, new AbortController().signal, silent, true)).toBe(true);
      for (const p of shipped.keys()) add(pc, p, p === data[4] ? { ctimeNs: recOf(p).ctimeNs + 1n } : {});
      add(pc, '/etc/tool.conf');
      add(pc, '/usr/bin/stray');
      await pc.finish(jobs, new AbortController().signal, silent);
      return pc;
    };
    const [inThreads, onMain, streamed] = [await run(2), await run(0), await run(2, true)];
    // the expected outcome, worked out here: the edited data files, other and the conffile differ; data4 is unverified
    const differs = [...shipped].filter(([p, f]) => p !== data[4] && !f.disk.equals(f.shipped)).map(([p]) => p);
    expect(differs.length).toBeGreaterThan(5);
    for (const pc of [inThreads, onMain, streamed]) {
      expect(pc.checked).toBe(shipped.size - 1 + 1);
      expect(pc.unverified).toEqual([{ path: Buffer.from(data[4]!), code: 'ECHANGED', message: expect.any(String) }]);
      expect(pc.mismatches.map((m) => m.path.toString())).toEqual(['/etc/tool.conf', ...differs].sort());
      for (const m of pc.mismatches) if (m.path.toString() !== '/etc/tool.conf') expect(m.actual).toBe(md5(shipped.get(m.path.toString())!.disk));
    }
    expect(inThreads.checked).toBe(onMain.checked);
    expect(inThreads.mismatches).toEqual(onMain.mismatches);
    expect(inThreads.unverified).toEqual(onMain.unverified);
    expect(streamed.mismatches).toEqual(onMain.mismatches);
    expect(streamed.unverified).toEqual(onMain.unverified);
  });

  it('stream(): the larger files are compared while the scan goes on, before finish()', async () => {
    const pc = new PackageCheck(await load());
    expect(pc.stream(0, new AbortController().signal, silent, true), 'not on the main thread').toBe(false);
    expect(pc.stream(2, new AbortController().signal, silent, true)).toBe(true);
    // 24 files without their MD5 in the record: enough to fill both workers' 8 lanes
    for (const p of data) add(pc, p);
    for (let i = 0; i < 500 && pc.checked === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(pc.checked, 'compared in the background').toBeGreaterThan(0);
    await pc.finish(2, new AbortController().signal, silent);
    expect(pc.checked).toBe(data.length);
    expect(pc.mismatches.map((m) => m.path.toString())).toEqual(data.filter((p) => !shipped.get(p)!.disk.equals(shipped.get(p)!.shipped)).sort());
  });

  it('stop() ends a stream that finish() will never see (a scan that failed)', async () => {
    const pc = new PackageCheck(await load());
    expect(pc.stream(2, new AbortController().signal, silent, true)).toBe(true);
    for (const p of data) add(pc, p);
    await pc.stop();
    await pc.stop();
  });
});
