import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { integ, tmpdir } from '../helpers/cli.js';
import { loadPolicy } from '../../src/app/common.js';
import { KeepDecider } from '../../src/app/keep-content.js';
import { migrate } from '../../src/store/db.js';
import { rec } from '../helpers/build.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function setup(extra = '') {
  const dir = tmpdir();
  dirs.push(dir);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  const db = path.join(dir, 's.db');
  const policy = path.join(dir, 'p.yml');
  fs.writeFileSync(
    policy,
    `version: 1\nrules:\n  - name: tree\n    severity: high\n    paths: ["${tree}/**"]\n    keep_content: true\n    keep_content_max_bytes: 4KiB\n    keep_content_exclude: ["/**/*.key"]\n${extra}`,
  );
  const run = (cmd: string, ...a: string[]) =>
    integ([
      cmd,
      '--db',
      db,
      '--policy',
      policy,
      ...(cmd === 'check' ? ['--no-snapshot', '--jobs', '1'] : []),
      ...(cmd === 'baseline' ? ['--jobs', '1'] : []),
      ...a,
    ]);
  return { dir, tree, db, policy, run, p: (n: string) => path.join(tree, n) };
}

const kept = (db: string): Map<string, string> => {
  const d = new Database(db, { readonly: true });
  try {
    return new Map((d.prepare('SELECT path, digest FROM kept').all() as { path: Buffer; digest: string }[]).map((r) => [r.path.toString(), r.digest]));
  } finally {
    d.close();
  }
};

describe('keep_content', () => {
  it('keeps text and binary files of the rule, compressed and deduplicated, never excluded secrets or files over the limit', () => {
    const t = setup();
    const text = 'Port 22\nPermitRootLogin no\n'.repeat(20);
    fs.writeFileSync(t.p('sshd_config'), text);
    fs.writeFileSync(t.p('copy_of_sshd_config'), text);
    fs.writeFileSync(t.p('host.key'), 'PRIVATE KEY\n');
    fs.writeFileSync(t.p('big.txt'), 'x'.repeat(5000));
    expect(t.run('baseline').code).toBe(0);
    const k = kept(t.db);
    expect([...k.keys()].map((p) => path.basename(p)).sort()).toEqual(['copy_of_sshd_config', 'sshd_config']);
    expect(k.get(t.p('sshd_config'))).toBe(k.get(t.p('copy_of_sshd_config')));
    const d = new Database(t.db, { readonly: true });
    const rows = d.prepare('SELECT size, codec, length(data) AS stored FROM contents').all() as { size: number; codec: string; stored: number }[];
    d.close();
    expect(rows).toHaveLength(1); // deduplicated
    expect(rows[0]!.codec).toBe('br');
    expect(rows[0]!.size).toBe(Buffer.byteLength(text));
    expect(rows[0]!.stored).toBeLessThan(rows[0]!.size); // compressed
  });

  it('check shows a unified diff for a changed text file, "binary, N bytes differ" for a binary one, nothing for a secret', () => {
    const t = setup();
    const lines = Array.from({ length: 30 }, (_, i) => `line ${i}`);
    fs.writeFileSync(t.p('sshd_config'), `${lines.join('\n')}\n`);
    const bin = Buffer.alloc(256, 0);
    bin.write('ELF', 1);
    fs.writeFileSync(t.p('tool.bin'), bin);
    fs.writeFileSync(t.p('host.key'), 'PRIVATE KEY one\n');
    expect(t.run('baseline').code).toBe(0);
    lines[15] = 'PermitRootLogin yes';
    fs.writeFileSync(t.p('sshd_config'), `${lines.join('\n')}\n`);
    const bin2 = Buffer.from(bin);
    bin2[100] = 1;
    bin2[101] = 2;
    fs.writeFileSync(t.p('tool.bin'), bin2);
    fs.writeFileSync(t.p('host.key'), 'PRIVATE KEY two\n');
    const r = t.run('check');
    expect(r.code & 4).toBe(4);
    expect(r.stdout).toContain(`--- a${t.p('sshd_config')}\t(known-good)`);
    expect(r.stdout).toContain('-line 15');
    expect(r.stdout).toContain('+PermitRootLogin yes');
    expect(r.stdout).toMatch(/@@ -13,7 \+13,7 @@/);
    expect(r.stdout).not.toContain('line 5\n'); // bounded context: 3 lines
    expect(r.stdout).toContain('binary, 2 bytes differ (256 → 256 bytes)');
    expect(r.stdout).not.toContain('PRIVATE KEY');
    // JSON output is unchanged by diffs
    const j = JSON.parse(t.run('check', '--format', 'json').stdout);
    expect(j.changes).toHaveLength(3);
  });

  it('a very long diff is cut with a count of the lines not shown', () => {
    const t = setup();
    fs.writeFileSync(t.p('conf'), Array.from({ length: 200 }, (_, i) => `a${i}`).join('\n'));
    expect(t.run('baseline').code).toBe(0);
    fs.writeFileSync(t.p('conf'), Array.from({ length: 200 }, (_, i) => `b${i}`).join('\n'));
    const r = t.run('check');
    expect(r.stdout).toMatch(/… \d+ more diff line\(s\) not shown/);
    expect(r.stdout.split('\n').filter((l) => /^\s+[-+][ab]\d+$/.test(l)).length).toBeLessThanOrEqual(60);
  });

  it('kept rows are covered by the generation digest: editing or deleting one makes check refuse (16)', () => {
    for (const tamper of ['DELETE FROM kept', "UPDATE kept SET path = CAST('/elsewhere' AS BLOB)"]) {
      const t = setup();
      fs.writeFileSync(t.p('a.conf'), 'one\n');
      expect(t.run('baseline').code).toBe(0);
      expect(t.run('check').code).toBe(0);
      const d = new Database(t.db);
      expect(d.prepare(tamper).run().changes).toBe(1);
      d.close();
      const r = t.run('check');
      expect(r.code).toBe(16);
      expect(r.stderr).toContain('content does not match its recorded digest');
    }
  });

  it('altered compressed content is never shown as the known-good side', () => {
    const t = setup();
    fs.writeFileSync(t.p('a.conf'), 'known good\n');
    expect(t.run('baseline').code).toBe(0);
    const d = new Database(t.db);
    expect(d.prepare('UPDATE contents SET data = ?').run(zlib.brotliCompressSync(Buffer.from('forged ok\n'))).changes).toBe(1);
    d.close();
    fs.writeFileSync(t.p('a.conf'), 'now bad!!\n');
    const r = t.run('check');
    expect(r.code & 4).toBe(4);
    expect(r.stdout).not.toContain('forged');
    expect(r.stdout).toContain('does not match its digest');
  });

  it('prune drops content no generation references any more', () => {
    const t = setup();
    fs.writeFileSync(t.p('a.conf'), 'v1\n');
    expect(t.run('baseline').code).toBe(0);
    fs.writeFileSync(t.p('a.conf'), 'v2\n');
    expect(t.run('baseline').code).toBe(0);
    const count = () => {
      const d = new Database(t.db, { readonly: true });
      const n = d.prepare('SELECT count(*) FROM contents').pluck().get();
      d.close();
      return n;
    };
    expect(count()).toBe(2);
    const r = integ(['prune', '--db', t.db, '--keep', '1']);
    expect(r.code).toBe(0);
    expect(count()).toBe(1);
  });

  it('check --root BACKUP names the files in the backup that are not known-good, ignoring inode and time differences', () => {
    const t = setup();
    fs.writeFileSync(t.p('good.conf'), 'good\n');
    fs.writeFileSync(t.p('bad.conf'), 'good too\n');
    expect(t.run('baseline').code).toBe(0);
    const backup = path.join(t.dir, 'backup');
    fs.mkdirSync(path.join(backup, t.tree), { recursive: true });
    fs.copyFileSync(t.p('good.conf'), path.join(backup, t.p('good.conf')));
    fs.writeFileSync(path.join(backup, t.p('bad.conf')), 'backdoored\n');
    fs.writeFileSync(path.join(backup, t.p('new.sh')), '#!/bin/sh\n');
    fs.chmodSync(path.join(backup, t.tree), fs.statSync(t.tree).mode & 0o7777);
    const r = t.run('check', '--root', backup);
    expect(r.code & 5).toBe(5);
    const section = r.stdout.slice(r.stdout.indexOf('NOT KNOWN-GOOD'));
    expect(section).toContain(`NOT KNOWN-GOOD under ${backup} (2)`);
    expect(section).toContain(`differs          ${t.p('bad.conf')}`);
    expect(section).toContain(`not in baseline  ${t.p('new.sh')}`);
    expect(section).not.toContain('good.conf');
    const j = JSON.parse(t.run('check', '--root', backup, '--format', 'json').stdout);
    expect(j.not_known_good.map((x: { path: string }) => x.path).sort()).toEqual([t.p('bad.conf'), t.p('new.sh')]);
  });

  it('rejects a bad keep_content option with the file and line', () => {
    const t = setup();
    fs.writeFileSync(t.policy, fs.readFileSync(t.policy, 'utf8').replace('keep_content_max_bytes: 4KiB', 'keep_content_max_bytes: lots'));
    const r = t.run('baseline');
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/p\.yml:\d+:\d+: .*keep_content/);
  });
});

describe('the default policy keeps configuration, never secrets', () => {
  const keep = new KeepDecider(loadPolicy(undefined, {}));
  const yes = (p: string, rule: string) => keep.wants(rule, rec({ path: Buffer.from(p) }));
  it.each([
    ['/etc/passwd', 'identity-and-access'],
    ['/etc/ssh/sshd_config', 'identity-and-access'],
    ['/etc/ssh/ssh_host_ed25519_key.pub', 'identity-and-access'],
    ['/etc/nginx/nginx.conf', 'system-config'],
    ['/etc/crontab', 'scheduled-jobs'],
    ['/etc/systemd/system/x.service', 'system-units-and-rules'],
    ['/root/.ssh/authorized_keys', 'login-scripts-and-keys'],
  ])('keeps %s', (p, rule) => expect(yes(p, rule)).toBe(true));
  it.each([
    ['/etc/shadow', 'identity-and-access'],
    ['/etc/gshadow-', 'identity-and-access'],
    ['/etc/ssh/ssh_host_ed25519_key', 'identity-and-access'],
    ['/root/.ssh/id_rsa', 'login-scripts-and-keys'],
    ['/etc/ssl/private/site.pem', 'system-config'],
    ['/etc/nginx/site.key', 'system-config'],
    ['/etc/krb5.keytab', 'system-config'],
    ['/usr/bin/ls', 'system-binaries'],
  ])('does not keep %s', (p, rule) => expect(yes(p, rule)).toBe(false));
  it('not files over 1 MiB', () => expect(keep.wants('system-config', rec({ path: Buffer.from('/etc/big'), size: 2n * 1024n * 1024n }))).toBe(false));
});

describe('migration 4', () => {
  it('adds contents, kept, notes, evidence and restores to a version-2 store', () => {
    const db = new Database(':memory:');
    migrate(db, ':memory:', 2);
    migrate(db, ':memory:', 4);
    const t = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[]).sort();
    expect(t).toEqual(expect.arrayContaining(['contents', 'evidence', 'kept', 'notes', 'restores']));
    db.close();
  });
});

describe('keep_content across accept', () => {
  it('an accepted change becomes the kept known-good content; untouched files keep theirs', () => {
    const t = setup();
    fs.writeFileSync(t.p('a.conf'), 'version 1\n');
    fs.writeFileSync(t.p('b.conf'), 'untouched\n');
    expect(t.run('baseline').code).toBe(0);
    fs.writeFileSync(t.p('a.conf'), 'version 2\n');
    expect(t.run('check').code & 4).toBe(4);
    expect(integ(['accept', t.p('a.conf'), '--db', t.db, '--policy', t.policy, '--note', 'CHG-1']).code).toBe(0);
    const d = new Database(t.db, { readonly: true });
    const rows = d.prepare('SELECT gen, path, digest FROM kept ORDER BY gen, path').all() as { gen: number; path: Buffer; digest: string }[];
    d.close();
    expect(rows.map((r) => [r.gen, path.basename(r.path.toString())])).toEqual([
      [1, 'a.conf'],
      [1, 'b.conf'],
      [2, 'a.conf'],
      [2, 'b.conf'],
    ]);
    expect(rows[2]!.digest).not.toBe(rows[0]!.digest);
    expect(rows[3]!.digest).toBe(rows[1]!.digest);
    fs.writeFileSync(t.p('a.conf'), 'version 3\n');
    const r = t.run('check');
    expect(r.stdout).toContain('-version 2');
    expect(r.stdout).toContain('+version 3');
    // and restore brings back the accepted version
    expect(t.run('restore', t.p('a.conf'), '--note', 'back to the accepted version', '--out', path.join(t.dir, 'ev')).code).toBe(0);
    expect(fs.readFileSync(t.p('a.conf'), 'utf8')).toBe('version 2\n');
  });
});
