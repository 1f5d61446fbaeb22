import crypto from 'node:crypto';
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { integ, tmpdir, writerUnder } from '../helpers/cli.js';

/** A root holding a small dpkg database the test makes: one package with two binaries and a conffile. */
const md5 = (s: string): string => crypto.createHash('md5').update(s).digest('hex');
const sha256 = (s: string): string => crypto.createHash('sha256').update(s).digest('hex');

const d = tmpdir();
afterAll(() => fs.rmSync(d, { recursive: true, force: true }));
const R = path.join(d, 'root');
const w = writerUnder(R);
function packageDb(version: string, files: Record<string, string>, conf: Record<string, string>): void {
  w(
    'var/lib/dpkg/status',
    'Package: base-files\nStatus: install ok installed\nVersion: 12.4\nArchitecture: amd64\n\n' +
      `Package: toolpkg\nStatus: install ok installed\nPriority: optional\nVersion: ${version}\nArchitecture: amd64\nConffiles:\n` +
      Object.entries(conf)
        .map(([p, t]) => ` ${p} ${md5(t)}\n`)
        .join('') +
      'Description: a test package\n multi-line description\n\n' +
      'Package: gone\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n',
  );
  w(
    'var/lib/dpkg/info/toolpkg.md5sums',
    Object.entries(files)
      .map(([p, t]) => `${md5(t)}  ${p.slice(1)}\n`)
      .join(''),
  );
  w('var/lib/dpkg/info/toolpkg.list', ['/.', '/usr', '/usr/bin', ...Object.keys(files), ...Object.keys(conf)].join('\n') + '\n');
  w('var/lib/dpkg/info/gone.list', '/usr/bin/unowned\n');
}

const db = path.join(d, 's.db');
const policy = path.join(d, 'policy.yml');
fs.writeFileSync(
  policy,
  'version: 1\nrules:\n  - name: bin\n    severity: critical\n    paths: ["/usr/bin/**"]\n  - name: conf\n    severity: high\n    paths: ["/etc/**"]\n',
);
const run = (cmd: string, ...a: string[]) =>
  integ([cmd, '--db', db, '--policy', policy, ...(cmd === 'accept' ? [] : ['--root', R, '--jobs', '1']), ...(cmd === 'check' ? ['--no-snapshot'] : []), ...a]);

interface Change {
  path: string;
  kind: string;
  attributes: string[];
  package: Record<string, unknown> | null;
}

describe('package provenance (dpkg) under --root', () => {
  it('baseline names packaged files that already differ from their package; edited conffiles are a quieter category', () => {
    w('usr/bin/tool', 'tool v1\n');
    w('usr/bin/other', 'trojaned other\n');
    w('usr/bin/unowned', 'local script\n');
    w('etc/app.conf', 'edited by the admin\n');
    packageDb('1.0-1', { '/usr/bin/tool': 'tool v1\n', '/usr/bin/other': 'other v1\n' }, { '/etc/app.conf': 'shipped conf\n' });
    const j = run('baseline', '--format', 'json');
    expect(j.code).toBe(0);
    const doc = JSON.parse(j.stdout) as Record<string, unknown>;
    expect(doc.packaged_checked).toBe(3);
    expect(doc.package_mismatches).toEqual([
      {
        path: '/usr/bin/other',
        package: { manager: 'dpkg', name: 'toolpkg', version: '1.0-1' },
        algorithm: 'md5',
        expected: md5('other v1\n'),
        actual: md5('trojaned other\n'),
        conffile: false,
      },
    ]);
    expect(doc.conffiles_modified).toEqual([
      expect.objectContaining({ path: '/etc/app.conf', conffile: true, algorithm: 'md5', expected: md5('shipped conf\n') }),
    ]);
    const off = JSON.parse(run('baseline', '--no-packages', '--format', 'json').stdout) as Record<string, unknown>;
    expect(off).toMatchObject({ packaged_checked: 0, package_mismatches: [], conffiles_modified: [] });
    const t = run('baseline');
    expect(t.code).toBe(0);
    expect(t.stdout).toContain('WARNING: 1 packaged file already differs from what the package shipped');
    expect(t.stdout).toContain(`  DOES NOT MATCH  /usr/bin/other  (toolpkg 1.0-1: md5 ${md5('other v1\n')} shipped, ${md5('trojaned other\n')} now)`);
    expect(t.stdout).toContain('  edited  /etc/app.conf  (toolpkg 1.0-1)');
  });

  it('check says for each change which package owns it and whether it matches; accept --packaged takes exactly those that match', () => {
    // Patch day: toolpkg 1.0-2 ships a new tool; meanwhile someone replaced `other` and the local script.
    w('usr/bin/tool', 'tool v2\n');
    w('usr/bin/new-helper', 'helper\n');
    packageDb(
      '1.0-2',
      { '/usr/bin/tool': 'tool v2\n', '/usr/bin/other': 'other v1\n', '/usr/bin/new-helper': 'helper\n' },
      { '/etc/app.conf': 'shipped conf\n' },
    );
    w('usr/bin/other', 'trojaned other, again\n');
    w('usr/bin/unowned', 'local script, changed\n');
    const j = run('check', '--format', 'json', '--ioc', path.join(d, 'feed.txt'));
    const doc = JSON.parse(j.stdout) as { changes: Change[]; ioc_matches: Array<{ path: string }> };
    const by = (p: string) => doc.changes.find((c) => c.path === p)!;
    expect(by('/usr/bin/tool').package).toEqual({ manager: 'dpkg', name: 'toolpkg', version: '1.0-2', digest_matches: true, conffile: false });
    expect(by('/usr/bin/new-helper').package).toEqual({ manager: 'dpkg', name: 'toolpkg', version: '1.0-2', digest_matches: true, conffile: false });
    expect(by('/usr/bin/other').package).toEqual({ manager: 'dpkg', name: 'toolpkg', version: '1.0-2', digest_matches: false, conffile: false });
    expect(by('/usr/bin/unowned').package).toBeNull(); // listed only by a package that is no longer installed
    // The IOC feed matches the trojan under --root too.
    expect(doc.ioc_matches.map((m) => m.path)).toEqual(['/usr/bin/other']);
    expect(j.code).toBe(1 | 4 | 32);
    const t = run('check');
    expect(t.stdout).toContain('package: matches toolpkg 1.0-2 as shipped');
    expect(t.stdout).toContain('package: DOES NOT MATCH what toolpkg 1.0-2 shipped');

    const a = run('accept', '--packaged', '--note', 'patch day', '--format', 'json');
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    const acc = JSON.parse(a.stdout) as { accepted: Array<{ path: string }>; remaining: number };
    expect(acc.accepted.map((x) => x.path).sort()).toEqual(['/usr/bin/new-helper', '/usr/bin/tool']);
    expect(acc.remaining).toBe(2);
    const after = JSON.parse(run('check', '--format', 'json').stdout) as { changes: Change[] };
    expect(after.changes.map((c) => c.path).sort()).toEqual(['/usr/bin/other', '/usr/bin/unowned']);
    // Nothing left that a package vouches for.
    const again = run('accept', '--packaged', '--note', 'again');
    expect(again.code).toBe(64);
    expect(again.stderr).toMatch(
      /^integ: nothing to accept: no open finding of check run #\d+ has content that matches what its package shipped \(2 left for review\)\n$/,
    );
  });
});
fs.writeFileSync(path.join(d, 'feed.txt'), `${sha256('trojaned other, again\n')} Trojan.Other\n`);

/** An rpm header as rpm exports it into rpmdb.sqlite: il, dl, index entries, data. */
function rpmHeader(tags: Array<[number, 'string' | 'strings' | 'int32', string | string[] | number[]]>): Buffer {
  const entries: Buffer[] = [];
  const data: Buffer[] = [];
  let off = 0;
  for (const [tag, kind, v] of tags) {
    let b: Buffer;
    let type: number;
    let count: number;
    if (kind === 'string') [b, type, count] = [Buffer.from(`${v as string}\0`), 6, 1];
    else if (kind === 'strings') [b, type, count] = [Buffer.from((v as string[]).map((x) => `${x}\0`).join('')), 8, (v as string[]).length];
    else {
      const pad = (4 - (off % 4)) % 4;
      if (pad) {
        data.push(Buffer.alloc(pad));
        off += pad;
      }
      b = Buffer.alloc((v as number[]).length * 4);
      (v as number[]).forEach((n, i) => b.writeUInt32BE(n, i * 4));
      [type, count] = [4, (v as number[]).length];
    }
    const e = Buffer.alloc(16);
    e.writeInt32BE(tag, 0);
    e.writeUInt32BE(type, 4);
    e.writeInt32BE(off, 8);
    e.writeUInt32BE(count, 12);
    entries.push(e);
    data.push(b);
    off += b.length;
  }
  const head = Buffer.alloc(8);
  head.writeUInt32BE(entries.length, 0);
  head.writeUInt32BE(off, 4);
  return Buffer.concat([head, ...entries, ...data]);
}

describe('package provenance (dpkg): small files in the scan read, large ones after it', () => {
  it('compares both the same way: a file that fits an MD5 lane (128 KiB) and one that does not, matching or not', () => {
    const R3 = path.join(d, 'root3');
    const files: Record<string, Buffer> = {};
    const shipped: Record<string, Buffer> = {};
    for (const [name, size] of [
      ['small-ok', 1000],
      ['small-bad', 131_072],
      ['big-ok', 131_073],
      ['big-bad', 300_000],
    ] as const) {
      shipped[name] = crypto.randomBytes(size);
      files[name] = name.endsWith('bad') ? Buffer.concat([shipped[name].subarray(0, size - 1), Buffer.from([shipped[name][size - 1]! ^ 1])]) : shipped[name];
      fs.mkdirSync(path.join(R3, 'usr/bin'), { recursive: true });
      fs.writeFileSync(path.join(R3, 'usr/bin', name), files[name]);
    }
    const md5b = (b: Buffer): string => crypto.createHash('md5').update(b).digest('hex');
    fs.mkdirSync(path.join(R3, 'var/lib/dpkg/info'), { recursive: true });
    fs.writeFileSync(path.join(R3, 'var/lib/dpkg/status'), 'Package: bigpkg\nStatus: install ok installed\nVersion: 2\nArchitecture: amd64\n\n');
    fs.writeFileSync(
      path.join(R3, 'var/lib/dpkg/info/bigpkg.md5sums'),
      Object.entries(shipped)
        .map(([n, b]) => `${md5b(b)}  usr/bin/${n}\n`)
        .join(''),
    );
    for (const jobs of ['2', '0']) {
      const r = integ(['baseline', '--db', path.join(d, `s3-${jobs}.db`), '--policy', policy, '--root', R3, '--jobs', jobs, '--format', 'json']);
      expect(r.code).toBe(0);
      const doc = JSON.parse(r.stdout) as { packaged_checked: number; package_mismatches: Array<{ path: string; expected: string; actual: string }> };
      expect(doc.packaged_checked).toBe(4);
      expect(doc.package_mismatches.map((m) => [m.path, m.expected, m.actual])).toEqual(
        ['big-bad', 'small-bad'].map((n) => [`/usr/bin/${n}`, md5b(shipped[n]!), md5b(files[n]!)]),
      );
    }
    // With an md5 feed, the package check's second read of the large packaged files gives the
    // feed their MD5 too: the feeds' own second read (its debug line) takes none of them.
    const feed = path.join(d, 'md5-feed.txt');
    fs.writeFileSync(feed, `${md5b(files['big-bad']!)} big.kit\n${md5b(files['small-ok']!)} small.kit\n${md5b(files['big-ok']!)} big-ok.kit\n`);
    const r = integ(['baseline', '--db', path.join(d, 's3-feed.db'), '--policy', policy, '--root', R3, '--ioc', feed, '--format', 'json'], {
      env: { INTEG_LOG_LEVEL: 'debug' },
    });
    expect(r.code, r.stderr).toBe(32);
    const doc = JSON.parse(r.stdout) as {
      packaged_checked: number;
      package_mismatches: Array<{ path: string }>;
      ioc_matches: Array<{ path: string; label: string }>;
    };
    expect(doc.ioc_matches.map((m) => [m.path, m.label])).toEqual([
      ['/usr/bin/big-bad', 'big.kit'],
      ['/usr/bin/big-ok', 'big-ok.kit'],
      ['/usr/bin/small-ok', 'small.kit'],
    ]);
    expect(doc.packaged_checked).toBe(4);
    expect(doc.package_mismatches.map((m) => m.path)).toEqual(['/usr/bin/big-bad', '/usr/bin/small-bad']);
    expect(r.stderr).not.toContain('MD5 of the larger files for the known-bad lists');
  });
});

describe('package provenance (dpkg): a baseline reuses the MD5 of large files an earlier one hashed', () => {
  it('reads again only large packaged files whose content is new, and still compares every one with the package database', () => {
    const R4 = path.join(d, 'root4');
    const md5b = (b: Buffer): string => crypto.createHash('md5').update(b).digest('hex');
    const put = (p: string, b: Buffer | string): void => {
      fs.mkdirSync(path.dirname(path.join(R4, p)), { recursive: true });
      fs.writeFileSync(path.join(R4, p), b);
    };
    // three files past an MD5 lane (128 KiB): read again after the scan on a first baseline
    const shipped: Record<string, Buffer> = { same: crypto.randomBytes(200_000), edited: crypto.randomBytes(300_000), bad: crypto.randomBytes(150_000) };
    const onDisk: Record<string, Buffer> = { ...shipped, bad: Buffer.concat([shipped.bad!.subarray(1), Buffer.from([shipped.bad![0]! ^ 1])]) };
    for (const [n, b] of Object.entries(onDisk)) put(`usr/bin/${n}`, b);
    const md5sums = (m: Record<string, Buffer>): void =>
      put(
        'var/lib/dpkg/info/bigpkg.md5sums',
        Object.entries(m)
          .map(([n, b]) => `${md5b(b)}  usr/bin/${n}\n`)
          .join(''),
      );
    put('var/lib/dpkg/status', 'Package: bigpkg\nStatus: install ok installed\nVersion: 2\nArchitecture: amd64\n\n');
    md5sums(shipped);
    const s4 = path.join(d, 's4.db');
    const baseline = () => {
      const r = integ(['baseline', '--db', s4, '--policy', policy, '--root', R4, '--format', 'json'], { env: { INTEG_LOG_LEVEL: 'debug' } });
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout) as { packaged_checked: number; package_mismatches: Array<{ path: string; expected: string; actual: string }> };
      const second = /"files":(\d+),"msg":"comparing packaged files with their packages"/.exec(r.stderr);
      const cache = /"reused":(\d+),"learned":(\d+),"msg":"large files: MD5s reused/.exec(r.stderr);
      return {
        checked: doc.packaged_checked,
        mismatches: doc.package_mismatches.map((m) => [m.path, m.expected, m.actual]),
        readAgain: second ? Number(second[1]) : 0,
        reused: Number(cache?.[1]),
        learned: Number(cache?.[2]),
      };
    };
    const bad = ['/usr/bin/bad', md5b(shipped.bad!), md5b(onDisk.bad!)];
    expect(baseline()).toEqual({ checked: 3, mismatches: [bad], readAgain: 3, reused: 0, learned: 3 });
    // unchanged: nothing read again, the same comparison
    expect(baseline()).toEqual({ checked: 3, mismatches: [bad], readAgain: 0, reused: 3, learned: 0 });

    // one file edited (a byte flipped: new content, new digest), and the package database now
    // expecting other content for an unchanged one: the edited file alone is read again, and the
    // unchanged one is compared with its known MD5
    const edited = Buffer.from(onDisk.edited!);
    edited[1000] = edited[1000]! ^ 0xff;
    put('usr/bin/edited', edited);
    const upgraded = crypto.randomBytes(200_000);
    md5sums({ ...shipped, same: upgraded });
    expect(baseline()).toEqual({
      checked: 3,
      mismatches: [bad, ['/usr/bin/edited', md5b(shipped.edited!), md5b(edited)], ['/usr/bin/same', md5b(upgraded), md5b(shipped.same!)]],
      readAgain: 1,
      reused: 2,
      learned: 1,
    });

    // the comparison uses the known MD5 instead of a read: a row made to lie shows through
    // (it takes the trust the package database takes: README, Trust model)
    const sdb = new Database(s4);
    const n = sdb.prepare('UPDATE md5_cache SET md5 = ? WHERE md5 = ?').run('0'.repeat(32), md5b(onDisk.bad!)).changes;
    sdb.close();
    expect(n).toBe(1);
    expect(baseline().mismatches[0]).toEqual(['/usr/bin/bad', md5b(shipped.bad!), '0'.repeat(32)]);
  });
});

describe('package provenance (dpkg) with diversions', () => {
  it('baseline takes a diverted file for the diverting package’s, and the package it was diverted from at the new name', () => {
    // As on Debian with postgresql-common and libpq-dev, both shipping usr/bin/pg_config; plus a local
    // diversion (":") of a file that was changed since, and a last group cut short
    const R4 = path.join(d, 'divroot');
    const put = writerUnder(R4);
    put('usr/bin/pg_config', 'wrapper\n');
    put('usr/bin/pg_config.libpq-dev', 'real pg_config\n');
    put('usr/bin/ecpg.orig', 'trojaned ecpg\n');
    put(
      'var/lib/dpkg/status',
      'Package: postgresql-common\nStatus: install ok installed\nVersion: 248\nArchitecture: all\n\n' +
        'Package: libpq-dev\nStatus: install ok installed\nVersion: 16.3-1\nArchitecture: amd64\n',
    );
    put('var/lib/dpkg/diversions', '/usr/bin/pg_config\n/usr/bin/pg_config.libpq-dev\npostgresql-common\n/usr/bin/ecpg\n/usr/bin/ecpg.orig\n:\n/usr/bin/cut\n');
    put('var/lib/dpkg/info/postgresql-common.md5sums', `${md5('wrapper\n')}  usr/bin/pg_config\n`);
    put('var/lib/dpkg/info/libpq-dev:amd64.md5sums', `${md5('real pg_config\n')}  usr/bin/pg_config\n${md5('ecpg\n')}  usr/bin/ecpg\n`);
    const r = integ(['baseline', '--db', path.join(d, 's4.db'), '--policy', policy, '--root', R4, '--jobs', '1', '--format', 'json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { packaged_checked: number; package_mismatches: Array<Record<string, unknown>> };
    expect(doc.packaged_checked).toBe(3);
    expect(doc.package_mismatches).toEqual([
      {
        path: '/usr/bin/ecpg.orig',
        package: { manager: 'dpkg', name: 'libpq-dev', version: '16.3-1' },
        algorithm: 'md5',
        expected: md5('ecpg\n'),
        actual: md5('trojaned ecpg\n'),
        conffile: false,
      },
    ]);
  });
});

describe('package provenance (rpm, SQLite database) under --root', () => {
  // rpm's file digest algorithms (FILEDIGESTALGO, OpenPGP's numbers): SHA-256 is the default of
  // every current distribution; SHA-512 and SHA-224 are what a packager may choose instead.
  it.each([
    [8, 'sha256'],
    [10, 'sha512'],
    [11, 'sha224'],
  ] as const)(
    'baseline and check name the rpm package, compare its digests (algorithm %i: %s), and treat its config files as conffiles',
    async (algoId, algo) => {
      const { default: Database } = await import('better-sqlite3');
      const digest = (t: string): string => crypto.createHash(algo).update(t).digest('hex');
      const R2 = path.join(d, `rpmroot-${algo}`);
      const put = writerUnder(R2);
      put('usr/bin/curl', 'curl 8\n');
      put('usr/bin/wget', 'trojaned wget\n');
      put('etc/curlrc', 'edited\n');
      fs.mkdirSync(path.join(R2, 'var/lib/rpm'), { recursive: true });
      const rdb = new Database(path.join(R2, 'var/lib/rpm/rpmdb.sqlite'));
      rdb.exec('CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)');
      rdb.prepare('INSERT INTO Packages (blob) VALUES (?)').run(
        rpmHeader([
          [1000, 'string', 'curl'],
          [1001, 'string', '8.2.1'],
          [1002, 'string', '3.fc39'],
          [1003, 'int32', [1]],
          [1022, 'string', 'x86_64'],
          [1035, 'strings', [digest('curl 8\n'), digest('wget 1\n'), digest('shipped\n'), '']],
          [1037, 'int32', [0, 0, 1, 0]],
          [1116, 'int32', [0, 0, 1, 0]],
          [1117, 'strings', ['curl', 'wget', 'curlrc', 'bin']],
          [1118, 'strings', ['/usr/bin/', '/etc/', '/usr/']],
          [5011, 'int32', [algoId]],
        ]),
      );
      rdb.close();
      const db2 = path.join(d, `rpm-${algo}.db`);
      const run2 = (cmd: string, ...a: string[]) =>
        integ([cmd, '--db', db2, '--policy', policy, '--root', R2, '--jobs', '1', ...(cmd === 'check' ? ['--no-snapshot'] : []), ...a]);
      const b = JSON.parse(run2('baseline', '--format', 'json').stdout) as Record<string, unknown>;
      expect(b.packaged_checked).toBe(3);
      expect(b.package_mismatches).toEqual([
        {
          path: '/usr/bin/wget',
          package: { manager: 'rpm', name: 'curl', version: '1:8.2.1-3.fc39' },
          algorithm: algo,
          expected: digest('wget 1\n'),
          actual: digest('trojaned wget\n'),
          conffile: false,
        },
      ]);
      expect(b.conffiles_modified).toEqual([expect.objectContaining({ path: '/etc/curlrc', conffile: true })]);
      put('usr/bin/curl', 'curl 9, not from the package\n');
      put('usr/bin/wget', 'wget 1\n');
      const c = JSON.parse(run2('check', '--format', 'json').stdout) as { changes: Change[] };
      const by = (p: string) => c.changes.find((x) => x.path === p)!;
      expect(by('/usr/bin/curl').package).toEqual({ manager: 'rpm', name: 'curl', version: '1:8.2.1-3.fc39', digest_matches: false, conffile: false });
      expect(by('/usr/bin/wget').package).toEqual({ manager: 'rpm', name: 'curl', version: '1:8.2.1-3.fc39', digest_matches: true, conffile: false });
    },
  );
});
