import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integ, tmpdir, writePolicy } from '../helpers/cli.js';

/**
 * Tamperings that only show in extended attributes, ACLs, capabilities and inode flags, and a
 * file created and removed again inside a directory: each must be reported with the exact
 * attribute and names. Needs root and the tools setcap (libcap2-bin), setfacl (acl),
 * setfattr (attr) and chattr/lsattr (e2fsprogs).
 */

interface Change {
  path: string;
  kind: string;
  risk: string[];
  attributes: string[];
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

const has = (tool: string): boolean => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const isRoot = process.getuid?.() === 0;
const missing = ['setcap', 'getcap', 'setfacl', 'getfacl', 'setfattr', 'getfattr', 'chattr', 'lsattr'].filter((t) => !has(t));
const sh = (cmd: string, ...args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });

const dirs: string[] = [];
const immutables: string[] = [];
afterAll(() => {
  for (const f of immutables) spawnSync('chattr', ['-i', '-a', f]);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Whether inode flags can be set where the test trees live (tmpfs on older kernels cannot). */
function flagsSupported(dir: string): boolean {
  const f = path.join(dir, 'probe');
  fs.writeFileSync(f, 'x');
  const ok = spawnSync('chattr', ['+d', f]).status === 0 && /^-*d/.test(sh('lsattr', f));
  spawnSync('chattr', ['-d', f]);
  fs.rmSync(f);
  return ok;
}

const why = !isRoot
  ? 'needs root (setcap, chattr, trusted xattrs)'
  : missing.length
    ? `missing tools: ${missing.join(', ')} (install libcap2-bin acl attr e2fsprogs)`
    : '';
if (why) console.warn(`skipping xattr/caps/ACL/flags CLI tests: ${why}`);

describe.skipIf(Boolean(why))('integ check: xattrs, capabilities, ACLs, labels, inode flags, directory traces', () => {
  const d = tmpdir();
  dirs.push(d);
  const tree = path.join(d, 'tree');
  const db = path.join(d, 's.db');
  const p = (n: string): string => path.join(tree, n);
  let policy = '';
  let changes: Change[] = [];
  let text = '';
  let code = -1;
  let flagsOk = false;
  const byPath = (n: string): Change | undefined => changes.find((c) => c.path === p(n));
  const run = (cmd: string, ...a: string[]) => integ([cmd, '--db', db, '--policy', policy, '--jobs', '1', ...(cmd === 'check' ? ['--no-snapshot'] : []), ...a]);

  beforeAll(() => {
    fs.mkdirSync(tree);
    for (const n of ['python3', 'acl-file', 'mask-file', 'xattr-file', 'immutable', 'append-only', 'quiet', 'has-xattr', 'has-acl'])
      fs.writeFileSync(p(n), `${n}\n`);
    for (const n of ['cron.d', 'default-acl', 'quiet-dir', 'busy']) fs.mkdirSync(p(n));
    fs.writeFileSync(p('cron.d/job'), '* * * * * root true\n');
    fs.symlinkSync('python3', p('link'));
    // Pre-existing attributes that must stay quiet on an unchanged tree.
    sh('setfattr', '-n', 'user.origin', '-v', 'vendor', p('has-xattr'));
    sh('setfacl', '-m', 'u:nobody:r', p('has-acl'));
    sh('setfacl', '-m', 'u:nobody:rwx', p('mask-file'));
    flagsOk = flagsSupported(d);
    if (!flagsOk) console.warn(`inode flags not supported on ${d}: the chattr cases are skipped`);
    policy = writePolicy(d, tree);
    const b = run('baseline', '--note', 'before');
    expect(b.stderr).toBe('');
    expect(b.code).toBe(0);
  });

  it('an unchanged tree with xattrs and ACLs checks clean (exit 0)', () => {
    const r = run('check');
    expect(r.stdout).toMatch(/^OK /m);
    expect(r.code).toBe(0);
  });

  describe('after the tamperings', () => {
    beforeAll(() => {
      sh('setcap', 'cap_setuid+ep', p('python3'));
      expect(sh('getcap', p('python3'))).toMatch(/cap_setuid[=+]ep/);
      sh('setfacl', '-m', 'u:nobody:rwx', p('acl-file'));
      expect(sh('getfacl', '-c', p('acl-file'))).toMatch(/user:nobody:rwx/);
      sh('setfacl', '-m', 'm::r', p('mask-file'));
      expect(sh('getfacl', '-c', p('mask-file'))).toMatch(/^mask::r--$/m);
      sh('setfacl', '-d', '-m', 'u:nobody:rx', p('default-acl'));
      expect(sh('getfacl', '-c', p('default-acl'))).toMatch(/default:user:nobody:r-x/);
      sh('setfattr', '-n', 'user.payload', '-v', 'x', p('xattr-file'));
      expect(sh('getfattr', '-d', p('xattr-file'))).toMatch(/user.payload="x"/);
      sh('setfattr', '-n', 'user.origin', '-v', 'attacker', p('has-xattr'));
      if (flagsOk) {
        sh('chattr', '+i', p('immutable'));
        immutables.push(p('immutable'));
        sh('chattr', '+a', p('append-only'));
        immutables.push(p('append-only'));
        expect(sh('lsattr', p('immutable'))).toMatch(/^-*i/);
        expect(sh('lsattr', p('append-only'))).toMatch(/^-*a/);
      }
      // A payload dropped into cron.d and deleted: only the directory's times remember it.
      const before = fs.statSync(p('cron.d'), { bigint: true });
      fs.writeFileSync(p('cron.d/payload'), '* * * * * root /tmp/x\n');
      fs.rmSync(p('cron.d/payload'));
      const after = fs.statSync(p('cron.d'), { bigint: true });
      expect(after.mtimeNs).not.toBe(before.mtimeNs);
      // An added file explains its directory's new mtime: no `entries` for busy/.
      fs.writeFileSync(p('busy/new'), 'new\n');
      fs.writeFileSync(p('busy/suid'), '#!/bin/sh\n');
      fs.chmodSync(p('busy/suid'), 0o4755);
      fs.chmodSync(p('quiet'), 0o666);
      const r = run('check', '--format', 'json');
      code = r.code;
      const doc = JSON.parse(r.stdout) as { changes: Change[] };
      changes = doc.changes;
      text = run('check').stdout;
    });

    it('a new capability is named as caps, decoded', () => {
      const c = byPath('python3')!;
      expect(c.attributes).toContain('caps');
      expect(c.before!.caps).toBeNull();
      expect(c.after!.caps).toBe('cap_setuid=ep');
      expect(text).toContain('caps (none)→cap_setuid=ep');
    });

    it('an ACL entry and the mask it brings are named, with "ACL present" next to mode', () => {
      const c = byPath('acl-file')!;
      expect(c.attributes).toEqual(expect.arrayContaining(['acl', 'mode']));
      expect(c.after!.acl).toEqual(expect.arrayContaining(['user:nobody:rwx', 'mask::rwx']));
      expect(text).toMatch(/acl-file.*\n.*mode 644→674 \(ACL present\).*acl \+user:nobody:rwx \+mask::rwx/);
    });

    it('a mask change is an acl change, not mistaken for a group permission change', () => {
      const c = byPath('mask-file')!;
      expect(c.attributes).toContain('acl');
      expect(text).toMatch(/mask-file.*\n.*\(ACL present\).*acl \+mask::r-- -mask::rwx/);
    });

    it('a default ACL on a directory is reported', () => {
      const c = byPath('default-acl')!;
      expect(c.attributes).toEqual(['acl']);
      expect(c.after!.acl).toEqual(expect.arrayContaining(['default:user:nobody:r-x', 'default:mask::r-x']));
    });

    it('user.* xattrs that appear or change are named', () => {
      expect(byPath('xattr-file')!.attributes).toContain('xattrs');
      expect(text).toContain('xattrs +user.payload');
      expect(byPath('has-xattr')!.attributes).toContain('xattrs');
      expect(byPath('has-xattr')!.after!.xattrs).toEqual({ 'user.origin': '"attacker"' });
      expect(text).toContain('xattrs ~user.origin');
    });

    it('chattr +i and +a are reported as flags with their names', (ctx) => {
      if (!flagsOk) ctx.skip();
      expect(byPath('immutable')!.attributes).toContain('flags');
      expect(byPath('immutable')!.after!.flags).toEqual(['+i']);
      expect(byPath('append-only')!.after!.flags).toEqual(['+a']);
      expect(text).toContain('flags +i');
      expect(text).toContain('flags +a');
    });

    it('a file created and removed in a directory leaves an `entries` trace; an added file explains its directory', () => {
      expect(byPath('cron.d')!.attributes).toEqual(['entries']);
      expect(text).toMatch(/cron\.d.*\[entries\][\s\S]*entries created and removed since the baseline/);
      expect(byPath('busy')).toBeUndefined();
      expect(byPath('busy/new')!.kind).toBe('added');
    });

    it('risk tags: set-uid, capability, immutable/append-only, world-writable; risky findings first, ADDED lines show type, mode and owner', () => {
      expect(byPath('busy/suid')!.risk).toContain('setuid');
      expect(byPath('python3')!.risk).toEqual(['capability']);
      expect(byPath('quiet')!.risk).toEqual(['world-writable']);
      expect(byPath('busy/new')!.risk).toEqual([]);
      expect(byPath('acl-file')!.risk).toEqual([]);
      if (flagsOk) {
        expect(byPath('immutable')!.risk).toEqual(['immutable']);
        expect(byPath('append-only')!.risk).toEqual(['append-only']);
      }
      const firstPlain = changes.findIndex((c) => c.risk.length === 0);
      expect(changes.slice(firstPlain).every((c) => c.risk.length === 0)).toBe(true);
      expect(text.split('\n')[0]).toMatch(/^RISK \(\d+\)$/);
      expect(text).toContain(`ADDED    ${p('busy/suid')}  file 4755 root:root  (tree, high)  risk: setuid`);
    });

    it('nothing else is reported (no false positives), exit 4|1', () => {
      const expected = [
        'python3',
        'acl-file',
        'mask-file',
        'default-acl',
        'xattr-file',
        'has-xattr',
        'cron.d',
        'busy/new',
        'busy/suid',
        'quiet',
        ...(flagsOk ? ['immutable', 'append-only'] : []),
      ];
      expect(changes.map((c) => path.relative(tree, c.path)).sort()).toEqual(expected.sort());
      expect(code).toBe(5);
    });
  });
});

describe('directory traces after accept', () => {
  it("accepting an added file also records its directory's new times: the next check is clean", () => {
    const d = tmpdir();
    dirs.push(d);
    const tree = path.join(d, 'tree');
    fs.mkdirSync(path.join(tree, 'sub'), { recursive: true });
    const db = path.join(d, 's.db');
    const policy = writePolicy(d, tree);
    const run = (cmd: string, ...a: string[]) =>
      integ([cmd, '--db', db, '--policy', policy, ...(cmd === 'accept' ? [] : ['--jobs', '0']), ...(cmd === 'check' ? ['--no-snapshot'] : []), ...a]);
    expect(run('baseline').code).toBe(0);
    fs.writeFileSync(path.join(tree, 'sub/new'), 'x');
    const c = run('check', '--format', 'json');
    expect(c.code).toBe(1);
    expect((JSON.parse(c.stdout) as { changes: Change[] }).changes.map((x) => [path.relative(tree, x.path), x.kind])).toEqual([['sub/new', 'added']]);
    expect(run('accept', '--all', '--note', 'ok').code).toBe(0);
    const again = run('check');
    expect(again.stdout).toMatch(/^OK /m);
    expect(again.code).toBe(0);
  });
});

describe('directory traces stay quiet where the policy cannot see every child', () => {
  it('a directory holding an excluded file that is rewritten by rename is not reported', () => {
    const d = tmpdir();
    dirs.push(d);
    const tree = path.join(d, 'tree');
    fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'etc/kept'), 'k');
    fs.writeFileSync(path.join(tree, 'etc/state.cache'), 'v1');
    const db = path.join(d, 's.db');
    const policy = writePolicy(d, tree, `    exclude: ["${tree}/etc/*.cache"]\n`);
    const run = (cmd: string) => integ([cmd, '--db', db, '--policy', policy, '--jobs', '0', ...(cmd === 'check' ? ['--no-snapshot', '--format', 'json'] : [])]);
    expect(run('baseline').code).toBe(0);
    const before = fs.statSync(path.join(tree, 'etc'), { bigint: true }).mtimeNs;
    fs.writeFileSync(path.join(tree, 'etc/.state.tmp'), 'v2');
    fs.renameSync(path.join(tree, 'etc/.state.tmp'), path.join(tree, 'etc/state.cache'));
    expect(fs.statSync(path.join(tree, 'etc'), { bigint: true }).mtimeNs).not.toBe(before);
    const c = run('check');
    expect((JSON.parse(c.stdout) as { changes: unknown[] }).changes).toEqual([]);
    expect(c.code).toBe(0);
  });
});

describe.skipIf(!has('setfattr'))('a store from before these attributes (schema 2)', () => {
  it('compares them as not recorded: no change reported, and the old digest still verifies', async () => {
    const { default: Database } = await import('better-sqlite3');
    const { computeGenerationDigest } = await import('../../src/store/generation-digest.js');
    const { BaselineRepo } = await import('../../src/store/baseline-repo.js');
    const d = tmpdir();
    dirs.push(d);
    const tree = path.join(d, 'tree');
    fs.mkdirSync(tree);
    fs.writeFileSync(path.join(tree, 'f'), 'x');
    const db = path.join(d, 's.db');
    const policy = writePolicy(d, tree);
    const run = (cmd: string, ...a: string[]) =>
      integ([cmd, '--db', db, '--policy', policy, '--jobs', '0', ...(cmd === 'check' ? ['--no-snapshot'] : []), ...a]);
    expect(run('baseline').code).toBe(0);
    // Turn the store into what integ wrote before migration 3: no xattrs/flags columns, user_version 2.
    const s = new Database(db);
    for (const t of ['entries', 'run_findings']) for (const c of ['xattrs', 'flags']) s.exec(`ALTER TABLE ${t} DROP COLUMN ${c}`);
    const g = new BaselineRepo(s).current()!;
    s.prepare('UPDATE generations SET digest = ? WHERE id = ?').run(computeGenerationDigest(s, g).digest, g.id);
    // ...and without the tables later migrations add: the store guard accepts exactly schema 2's objects.
    const schema2 = new Set(['generations', 'entries', 'runs', 'run_findings', 'run_errors', 'pruned', 'accepts', 'accepted_paths']);
    const later = (s.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as Array<{ name: string }>).filter(
      (t) => !schema2.has(t.name),
    );
    expect(later.length).toBeGreaterThan(0);
    for (const t of later) s.exec(`DROP TABLE "${t.name}"`);
    s.pragma('user_version = 2');
    s.close();
    sh('setfattr', '-n', 'user.added', '-v', 'later', path.join(tree, 'f'));
    const r = run('check', '--format', 'json');
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout) as { changes: Change[] };
    // ctime moved with the setfattr; the xattr itself is "not recorded" in that baseline.
    expect(doc.changes.map((c) => c.attributes)).toEqual([['ctime']]);
    expect(doc.changes[0]!.before!.xattrs).toBeNull();
    expect(doc.changes[0]!.after!.xattrs).toEqual({ 'user.added': '"later"' });
    // The store was migrated; a new baseline records the attributes, and the next check is clean.
    expect(run('baseline').code).toBe(0);
    expect(run('check').code).toBe(0);
  });
});

describe.skipIf(!fs.existsSync('/proc/sys'))('a file system without inode flags', () => {
  it('records flags as "unsupported", never an error, and checks clean', () => {
    const d = tmpdir();
    dirs.push(d);
    const db = path.join(d, 's.db');
    const policy = path.join(d, 'p.yml');
    fs.writeFileSync(policy, 'version: 1\nrules:\n  - name: p\n    paths: ["/proc/sys"]\n');
    const b = integ(['baseline', '--db', db, '--policy', policy]);
    expect(b.stderr).toBe('');
    expect(b.code).toBe(0);
    const show = JSON.parse(integ(['show', '/proc/sys', '--db', db, '--format', 'json']).stdout) as { generations: Array<{ record: Record<string, unknown> }> };
    expect(show.generations[0]!.record.flags).toBe('unsupported');
    expect(integ(['check', '--db', db, '--policy', policy, '--no-snapshot']).code).toBe(0);
  });
});
