import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { PackageCheck } from '../../src/app/package-check.js';
import type { Observed } from '../../src/core/types.js';
import type { PackageIndex } from '../../src/pkg/dpkg.js';
import { loadPackages } from '../../src/pkg/packages.js';
import { MAX_LANES } from '../../src/scan/md5-lanes.js';
import { tmpdir, writerUnder } from '../helpers/cli.js';
import { capturedLog, recordOf } from '../helpers/records.js';
import { mulberry32 as prng } from '../../bench/lib/tree.js'; // deterministic: a failure replays from its seed

const md5 = (b: string | Buffer): string => crypto.createHash('md5').update(b).digest('hex');
const silent = pino({ level: 'silent' });

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
  // enough to fill the lanes of two workers (stream() below)
  for (let i = 0; i < 2 * MAX_LANES + 8; i++) {
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
  const recOf = (p: string, over: Partial<Observed> = {}): Observed => recordOf(path.join(R, p), p, over);
  const add = (pc: PackageCheck, p: string, over: Partial<Observed> = {}): boolean => pc.add(Buffer.from(p), Buffer.from(path.join(R, p)), recOf(p, over));

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
    const { log, lines } = capturedLog('warn');
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

  it("add() with `then`: a queued file's MD5 (or why it has none) is handed on as well, for a feed's match without a third read", async () => {
    const pc = new PackageCheck(await load());
    const told = new Map<string, unknown>();
    const then = (p: string) => (r: unknown) => told.set(p, r);
    const big = '/usr/share/tool/big';
    expect(pc.add(Buffer.from(big), Buffer.from(path.join(R, big)), recOf(big), undefined, then(big)), 'queued').toBe(true);
    const other = '/usr/bin/other';
    expect(pc.add(Buffer.from(other), Buffer.from(path.join(R, other)), recOf(other, { ctimeNs: recOf(other).ctimeNs + 1n }), undefined, then(other))).toBe(
      true,
    );
    // compared at once (its MD5 came with the record), or not packaged: not queued, `then` never told
    const tool = '/usr/bin/tool';
    expect(pc.add(Buffer.from(tool), Buffer.from(path.join(R, tool)), recOf(tool, { extra: { md5: md5('tool v1\n') } }), undefined, then(tool))).toBe(false);
    const stray = '/usr/bin/stray';
    expect(pc.add(Buffer.from(stray), Buffer.from(path.join(R, stray)), recOf(stray), undefined, then(stray))).toBe(false);
    await pc.finish(2, new AbortController().signal, silent);
    expect([...told.keys()].sort()).toEqual([other, big]);
    expect(told.get(big)).toBe(md5(shipped.get(big)!.disk));
    expect(told.get(other)).toMatchObject({ code: 'ECHANGED' });
    expect(pc.checked).toBe(2); // tool (at once) and big
  });

  it('with `known` MD5s: a file whose content digest is known is compared at once (and `then` told), the others are read and their MD5 learned', async () => {
    const learned = new Map<string, string>();
    const asked: string[] = [];
    const wrong = 'e'.repeat(32);
    const known = {
      keyOf: (rec: Observed) => (rec.blake3 ? `blake3:${rec.blake3}` : null),
      get: (key: string) => {
        asked.push(key);
        return key === 'blake3:known' ? wrong : null;
      },
      put: (key: string, m: string) => void learned.set(key, m),
    };
    const pc = new PackageCheck(await load(), undefined, known);
    const told = new Map<string, unknown>();
    const then = (p: string) => (r: unknown) => told.set(p, r);
    const big = '/usr/share/tool/big';
    const other = '/usr/bin/other';
    // ctime off by one: were it read again, it would be ECHANGED instead of compared
    const rec = recOf(big, { blake3: 'known', ctimeNs: recOf(big).ctimeNs + 1n });
    expect(pc.add(Buffer.from(big), Buffer.from(path.join(R, big)), rec, undefined, then(big))).toBe(true);
    expect(told.get(big), 'told at once').toBe(wrong);
    expect(pc.checked).toBe(1);
    expect(pc.add(Buffer.from(other), Buffer.from(path.join(R, other)), recOf(other, { blake3: 'new' }), undefined, then(other))).toBe(true);
    // no content digest (an error row, or a policy without one): no key, read as before
    const tool = '/usr/bin/tool';
    expect(pc.add(Buffer.from(tool), Buffer.from(path.join(R, tool)), recOf(tool, { blake3: null, sha256: null }))).toBe(true);
    await pc.finish(0, new AbortController().signal, silent);
    expect(asked).toEqual(['blake3:known', 'blake3:new']);
    expect(pc.reused).toBe(1);
    expect(pc.checked).toBe(3);
    expect(told.get(other)).toBe(md5('other, trojaned\n'));
    expect([...learned]).toEqual([['blake3:new', md5('other, trojaned\n')]]);
    expect(pc.mismatches).toEqual([
      mismatch('/usr/bin/other', md5('other v1\n'), md5('other, trojaned\n')),
      mismatch(big, md5(shipped.get(big)!.shipped), wrong),
    ]);
  });

  it('at most maxQueued files wait: backlogged says when to drain(), which compares those; finish() the rest', async () => {
    const pc = new PackageCheck(await load(), 4);
    const queued = data.slice(0, 6);
    for (const [i, p] of queued.entries()) {
      expect(pc.backlogged, `before file ${i}`).toBe(i >= 4);
      add(pc, p);
    }
    expect(pc.backlogged).toBe(true);
    await pc.drain(2, new AbortController().signal, silent);
    expect(pc.checked).toBe(6);
    expect(pc.backlogged).toBe(false);
    add(pc, '/usr/share/tool/big');
    await pc.finish(0, new AbortController().signal, silent);
    expect(pc.checked).toBe(7);
    const differs = [...queued, '/usr/share/tool/big'].filter((p) => !shipped.get(p)!.disk.equals(shipped.get(p)!.shipped)).sort();
    expect(pc.mismatches.map((m) => m.path.toString())).toEqual(differs);
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
    // files without their MD5 in the record: enough to fill both workers' lanes (a worker gets MAX_LANES at a time)
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
