import crypto from 'node:crypto';
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBaseline } from '../../src/app/baseline.js';
import { runCheck } from '../../src/app/check.js';
import { loadIocFeeds, parseIocText } from '../../src/core/ioc.js';
import { integ, tmpdir, writePolicy } from '../helpers/cli.js';
import { capturedLog } from '../helpers/records.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
const hash = (algo: string, s: string): string => crypto.createHash(algo).update(s).digest('hex');

describe('known-bad hash lists: parsing', () => {
  it('takes sha256, sha1 and md5 lines with optional labels; skips comments and blank lines', () => {
    const set = parseIocText(`# feed\n\n${hash('sha256', 'a').toUpperCase()}  Mirai dropper\n${hash('sha1', 'b')}\n${hash('md5', 'c')}\tkit.sh\r\n`, 'f.txt');
    expect(set.size).toBe(3);
    expect(set.algorithms()).toEqual(['sha256', 'sha1', 'md5']);
    expect(set.match({ sha256: hash('sha256', 'a') })).toEqual({ algorithm: 'sha256', digest: hash('sha256', 'a'), label: 'Mirai dropper', source: 'f.txt:3' });
    expect(set.match({ sha1: hash('sha1', 'b') })?.label).toBeNull();
    expect(set.match({ md5: hash('md5', 'c') })?.label).toBe('kit.sh');
    expect(set.match({ sha256: hash('sha256', 'x'), md5: hash('md5', 'x') })).toBeUndefined();
  });
  it('a malformed line is a data error naming file:line', async () => {
    expect(() => parseIocText(`${hash('md5', 'c')}\nnot-a-hash label\n`, 'f.txt')).toThrow(
      /^f\.txt:2: expected a sha256 \(64\), sha1 \(40\) or md5 \(32\) hex digest/,
    );
    expect(() => parseIocText('abcd\n', 'g.txt')).toThrow(/^g\.txt:1: /);
    const d = tmpdir();
    dirs.push(d);
    fs.writeFileSync(path.join(d, 'bad.txt'), `# ok\n${hash('sha256', 'a')}\n${hash('sha256', 'a')}x\n`);
    await expect(loadIocFeeds([path.join(d, 'bad.txt')])).rejects.toMatchObject({ exitCode: 65, message: expect.stringMatching(/bad\.txt:3: /) });
    await expect(loadIocFeeds([path.join(d, 'missing.txt')])).rejects.toMatchObject({ exitCode: 66 });
  });
});

describe('integ check/baseline --ioc', () => {
  const d = tmpdir();
  dirs.push(d);
  const tree = path.join(d, 'tree');
  fs.mkdirSync(tree);
  const db = path.join(d, 's.db');
  fs.writeFileSync(path.join(tree, 'implant'), 'evil payload\n');
  fs.writeFileSync(path.join(tree, 'kit'), 'rootkit\n');
  fs.writeFileSync(path.join(tree, 'clean'), 'clean\n');
  const feed = path.join(d, 'feed.txt');
  fs.writeFileSync(feed, `# test feed\n${hash('sha256', 'evil payload\n')}  Implant.Linux.A\n`);
  const feed2 = path.join(d, 'feed2.txt');
  fs.writeFileSync(feed2, `${hash('md5', 'rootkit\n')}\n${hash('sha1', 'nothing')}\n`);
  const policy = writePolicy(d, tree);
  const run = (cmd: string, ...a: string[]) => integ([cmd, '--db', db, '--policy', policy, '--jobs', '1', ...(cmd === 'check' ? ['--no-snapshot'] : []), ...a]);

  it('baseline names known-bad content (exit 32) in text and JSON; the generation is still recorded', () => {
    const b = run('baseline', '--ioc', feed, '--format', 'json');
    expect(b.code).toBe(32);
    const doc = JSON.parse(b.stdout) as { ioc_matches: Array<Record<string, unknown>>; generation: number };
    expect(doc.generation).toBe(1);
    expect(doc.ioc_matches).toEqual([
      {
        path: path.join(tree, 'implant'),
        rule: 'tree',
        algorithm: 'sha256',
        digest: hash('sha256', 'evil payload\n'),
        label: 'Implant.Linux.A',
        source: `${feed}:2`,
      },
    ]);
  });

  it('without a feed the unchanged tree checks clean (exit 0)', () => {
    expect(run('check').code).toBe(0);
  });

  it('check reports unchanged files that match (sha256 and md5 feeds, repeatable), CRITICAL section first, exit 32', () => {
    const r = run('check', '--ioc', feed, '--ioc', feed2);
    expect(r.code).toBe(32);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('CRITICAL: KNOWN-BAD CONTENT (2) — matches a known-bad hash list');
    expect(lines[1]).toBe(`  KNOWN-BAD  ${path.join(tree, 'implant')}  sha256:${hash('sha256', 'evil payload\n')}  "Implant.Linux.A"  (${feed}:2)`);
    expect(lines[2]).toBe(`  KNOWN-BAD  ${path.join(tree, 'kit')}  md5:${hash('md5', 'rootkit\n')}  (${feed2}:1)`);
    const j = JSON.parse(run('check', '--ioc', feed2, '--format', 'json').stdout) as {
      ioc_matches: Array<{ path: string; algorithm: string }>;
      exit_code: number;
    };
    expect(j.ioc_matches.map((m) => [m.path, m.algorithm])).toEqual([[path.join(tree, 'kit'), 'md5']]);
    expect(j.exit_code).toBe(32);
  });

  it('adds to the other bits: a changed file that matches is exit 4|32', () => {
    fs.writeFileSync(path.join(tree, 'clean'), 'rootkit\n');
    const r = run('check', '--ioc', feed2, '--format', 'json');
    expect(r.code).toBe(36);
    fs.writeFileSync(path.join(tree, 'clean'), 'clean\n');
  });

  it("the policy's ioc: list (relative to the policy file) is used too", () => {
    const p2 = writePolicy(d, tree, '', 'ioc: [feed.txt]\n');
    const r = integ(['check', '--db', db, '--policy', p2, '--no-snapshot', '--format', 'json']);
    expect((JSON.parse(r.stdout) as { ioc_matches: unknown[] }).ioc_matches).toHaveLength(1);
    expect(r.code & 32).toBe(32);
    fs.writeFileSync(policy, fs.readFileSync(policy, 'utf8').replace(/^ioc:.*\n/m, ''));
  });

  it('a malformed feed is exit 65 naming file:line; a missing one 66; nothing is scanned', () => {
    const bad = path.join(d, 'bad.txt');
    fs.writeFileSync(bad, `${hash('md5', 'x')}\nzzzz\n`);
    const r = run('check', '--ioc', bad);
    expect(r.code).toBe(65);
    expect(r.stderr).toBe(`integ: ${bad}:2: expected a sha256 (64), sha1 (40) or md5 (32) hex digest, optionally followed by a label; got "zzzz"\n`);
    expect(r.stdout).toBe('');
    const m = run('baseline', '--ioc', path.join(d, 'nope.txt'));
    expect(m.code).toBe(66);
    expect(m.stderr).toMatch(/^integ: known-bad hash list not found: /);
  });
});

describe('an md5 feed: files that fit an md5-lanes lane get their MD5 there, larger ones from a second read in the lanes', () => {
  it('baseline and check name a small and a large known-bad file by MD5, in worker threads and on the main thread', () => {
    const d = tmpdir();
    dirs.push(d);
    const tree = path.join(d, 'tree');
    fs.mkdirSync(tree);
    const small = 'small implant\n'.repeat(100); // 1.4 KB: in a lane
    const large = 'large implant\n'.repeat(20_000); // 280 KB: past a lane's 128 KiB
    fs.writeFileSync(path.join(tree, 'small'), small);
    fs.writeFileSync(path.join(tree, 'large'), large);
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(tree, `clean${i}`), `clean ${i}\n`.repeat(i * 50));
    const feed = path.join(d, 'md5.txt');
    fs.writeFileSync(feed, `${hash('md5', small)} small.kit\n${hash('md5', large)} large.kit\n`);
    const policy = writePolicy(d, tree);
    const db = path.join(d, 's.db');
    const matched = (stdout: string) =>
      (JSON.parse(stdout) as { ioc_matches: Array<{ path: string; algorithm: string; label: string }> }).ioc_matches.map((m) => [
        path.basename(m.path),
        m.algorithm,
        m.label,
      ]);
    const want = [
      ['large', 'md5', 'large.kit'],
      ['small', 'md5', 'small.kit'],
    ];
    // the debug log says how many files the second read took: the large one (280 KB) alone
    const debug = { env: { INTEG_LOG_LEVEL: 'debug' } };
    const secondRead = (stderr: string): number[] =>
      stderr
        .split('\n')
        .filter((l) => l.includes('MD5 of the larger files for the known-bad lists'))
        .map((l) => (JSON.parse(l) as { files: number }).files);
    const b = integ(['baseline', '--db', db, '--policy', policy, '--ioc', feed, '--format', 'json'], debug);
    expect(b.code, b.stderr).toBe(32);
    expect(matched(b.stdout)).toEqual(want);
    expect(secondRead(b.stderr)).toEqual([1]);
    // check: the baseline hashed the large file's content, so its MD5 is known (md5-cache.ts);
    // against a baseline taken without the feed, the check reads it again itself
    const db2 = path.join(d, 's2.db');
    expect(integ(['baseline', '--db', db2, '--policy', policy]).code).toBe(0);
    for (const [store, reads] of [
      [db, []],
      [db2, [1]],
    ] as const)
      for (const jobs of ['2', '0']) {
        const c = integ(['check', '--db', store, '--policy', policy, '--jobs', jobs, '--no-snapshot', '--ioc', feed, '--format', 'json'], debug);
        expect(c.code, c.stderr).toBe(32);
        expect(matched(c.stdout)).toEqual(want);
        expect(secondRead(c.stderr)).toEqual(reads);
      }
  });
});

describe('an md5 feed over many large files: they are read again in rounds, so memory stays flat', () => {
  it('baseline and check (in this process, at most 3 files queued) drain the queue mid-scan and still match every file', async () => {
    const d = tmpdir();
    dirs.push(d);
    const tree = path.join(d, 'tree');
    fs.mkdirSync(tree);
    // 400 entries (7 scan batches of 64), a large file (past a lane) every 25th
    const large: string[] = [];
    for (let i = 0; i < 400; i++) {
      const name = `f${String(i).padStart(3, '0')}`;
      const big = i % 25 === 0;
      fs.writeFileSync(path.join(tree, name), big ? crypto.randomBytes(140_000 + i) : `small ${i}\n`);
      if (big) large.push(name);
    }
    const known = [large[1]!, large[7]!, large[15]!];
    const feed = path.join(d, 'md5.txt');
    fs.writeFileSync(
      feed,
      known
        .map(
          (n) =>
            `${crypto
              .createHash('md5')
              .update(fs.readFileSync(path.join(tree, n)))
              .digest('hex')} ${n}.kit\n`,
        )
        .join(''),
    );
    const policy = writePolicy(d, tree);
    const db = path.join(d, 's.db');
    const { log, lines } = capturedLog('debug');
    const ctx = { log, signal: new AbortController().signal, env: {}, interactive: false, argv: [] };
    /** the file counts of the second reads the last run logged */
    const rounds = (): number[] =>
      lines
        .splice(0)
        .map((l) => JSON.parse(l) as { msg: string; files?: number })
        .filter((l) => l.msg === 'MD5 of the larger files for the known-bad lists')
        .map((l) => l.files!);
    const want = known.map((n) => [n, `${n}.kit`]);
    const b = await runBaseline({ db, policy, note: null, jobs: 2, ioc: [feed], packages: false, md5Queue: 3 }, ctx);
    expect(b.iocMatches.map((m) => [path.basename(m.path.toString()), m.label])).toEqual(want);
    const bRounds = rounds();
    expect(bRounds.length, `rounds ${bRounds}`).toBeGreaterThan(2);
    expect(bRounds.reduce((a, n) => a + n, 0)).toBe(large.length);
    // the baseline learned every large file's MD5 (md5-cache.ts): a check reads none of them again
    const c0 = await runCheck({ db, policy, jobs: 2, ioc: [feed], md5Queue: 3 }, ctx);
    expect(c0.iocMatches.map((m) => [path.basename(m.path.toString()), m.label])).toEqual(want);
    expect(rounds()).toEqual([]);
    // with no MD5 known, the check reads them all again, in rounds
    const sdb = new Database(db);
    expect(sdb.prepare('DELETE FROM md5_cache').run().changes).toBe(large.length);
    sdb.close();
    for (const jobs of [2, 0]) {
      const c = await runCheck({ db, policy, jobs, ioc: [feed], md5Queue: 3 }, ctx);
      expect(c.iocMatches.map((m) => [path.basename(m.path.toString()), m.label])).toEqual(want);
      expect(c.errors).toEqual([]);
      const cRounds = rounds();
      expect(cRounds.length, `rounds ${cRounds}`).toBeGreaterThan(2);
      expect(cRounds.reduce((a, n) => a + n, 0)).toBe(large.length);
    }
    // without the cap, one read after the scan takes them all
    await runCheck({ db, policy, jobs: 2, ioc: [feed] }, ctx);
    expect(rounds()).toEqual([large.length]);
  });
});
