import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { integ as run } from '../helpers/cli.js';
import { tamperDb } from '../helpers/tamper.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The shared helper, with the exit status under the name these tests use. */
const integ = (...args: string[]) => {
  const r = run(args);
  return { ...r, status: r.code };
};

let dir: string;
let policy: string;
const root1 = () => path.join(dir, 'web1');
const root2 = () => path.join(dir, 'web2');
const baseline = (db: string, root: string, note = 'x') => integ('baseline', '--db', db, '--policy', policy, '--root', root, '--jobs', '0', '--note', note);

// Two "hosts" of one role: the same /srv/app tree under two --root folders (same mtimes, different inodes and ctimes).
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-diff-'));
  const app = path.join(root1(), 'srv', 'app');
  fs.mkdirSync(path.join(app, 'lib'), { recursive: true });
  fs.writeFileSync(path.join(app, 'app.conf'), 'port=80\n');
  fs.writeFileSync(path.join(app, 'lib', 'x.so'), 'x');
  fs.writeFileSync(path.join(app, 'gone'), 'g');
  fs.cpSync(root1(), root2(), { recursive: true });
  // Same whole-second mtimes on both (copies keep times only to the microsecond).
  const t = new Date('2026-11-01T00:00:00Z');
  for (const root of [root1(), root2()])
    for (const rel of ['srv/app/app.conf', 'srv/app/lib/x.so', 'srv/app/gone', 'srv/app/lib', 'srv/app']) fs.utimesSync(path.join(root, rel), t, t);
  policy = path.join(dir, 'p.yml');
  fs.writeFileSync(policy, 'version: 1\nrules:\n  - name: app\n    paths: ["/srv/app/**"]\n');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('integ diff A B (two stores)', () => {
  it('two hosts of one role: only host-independent attributes by default (exit 0, said in the header); --compare restores inode, ctime …', () => {
    const a = path.join(dir, 'web1.db');
    const b = path.join(dir, 'web2.db');
    expect(baseline(a, root1()).status).toBe(0);
    expect(baseline(b, root2()).status).toBe(0);
    const same = integ('diff', a, b);
    expect(same.status, same.stdout).toBe(0);
    expect(same.stdout).toMatch(/^SAME no differences \(5 entries each, compared: content type mode uid gid size target xattrs caps acl label flags\)/m);
    expect(same.stdout).toMatch(/^A: .*web1\.db {2}generation #1 .* blake3:[0-9a-f]{64}$/m);
    expect(same.stdout).toMatch(
      /^note: A and B come from different roots \(.*:.* vs .*:.*\): comparing only host-independent attributes; not inode, ctime, mtime, nlink \(--compare inode,ctime,mtime,nlink compares them too\)$/m,
    );
    const full = integ('diff', a, b, '--compare', 'inode,ctime', '--format', 'json');
    expect(full.status).toBe(1);
    const j = JSON.parse(full.stdout);
    expect(j.schema).toBe('integ.diff/1');
    expect(j.attributes).toEqual(expect.arrayContaining(['content', 'type', 'mode', 'uid', 'gid', 'size', 'ctime', 'inode', 'target']));
    expect(j.attributes).not.toContain('mtime');
    expect(j.attributes).not.toContain('nlink');
    expect(j.differences.every((d: { kind: string; attributes: string[] }) => d.kind === 'changed' && d.attributes.includes('inode'))).toBe(true);
    expect(integ('diff', a, b, '--compare', 'all').status).toBe(1);
    expect(integ('diff', a, b, '--compare', 'colour').status).toBe(64);
  });

  it('"diff 1 4" without --generation says how to compare generations', () => {
    const r = integ('diff', '1', '4');
    expect(r.status).toBe(64);
    expect(r.stderr).toBe(
      'integ: "1" and "4" look like generation numbers: integ diff --generation 1 4 [--db F] compares two generations of one store (integ diff A B compares two store files)\n',
    );
  });

  it('lists each differing path with the attributes that differ, and paths only in A or only in B (exit 1)', () => {
    const a = path.join(dir, 'w1.db');
    const b = path.join(dir, 'w2.db');
    expect(baseline(a, root1()).status).toBe(0);
    const r2app = path.join(root2(), 'srv', 'app');
    fs.writeFileSync(path.join(r2app, 'app.conf'), 'port=8080\n');
    fs.chmodSync(path.join(r2app, 'lib', 'x.so'), 0o755);
    fs.rmSync(path.join(r2app, 'gone'));
    fs.writeFileSync(path.join(r2app, 'extra'), 'e');
    expect(baseline(b, root2()).status).toBe(0);
    const r = integ('diff', a, b, '--ignore', 'inode,ctime,mtime', '--format', 'json');
    expect(r.status).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j.differences.map((d: { path: string; kind: string; attributes: string[] }) => [d.path, d.kind, d.attributes])).toEqual([
      ['/srv/app/app.conf', 'changed', ['content', 'size']],
      ['/srv/app/extra', 'added', []],
      ['/srv/app/gone', 'removed', []],
      ['/srv/app/lib/x.so', 'changed', ['mode']],
    ]);
    expect(j.summary).toEqual({ added: 1, removed: 1, changed: 2, entries_a: 5, entries_b: 5 });
    expect(j.a.digest).toMatch(/^blake3:/);
    expect(j.exit_code).toBe(1);
    const t = integ('diff', a, b, '--ignore', 'inode,ctime,mtime');
    expect(t.stdout).toMatch(/CHANGED {2}\/srv\/app\/lib\/x\.so {2}\[mode\]\n +mode 644→755/);
    expect(t.stdout).toMatch(/ADDED {4}\/srv\/app\/extra {2}\(only in B\)/);
    expect(t.stdout).toMatch(/DIFFERENT 4 paths differ: 1 only in B, 1 only in A, 2 changed/);
  });

  it('says so when the two sides hash with different algorithms (content cannot be compared)', () => {
    const a = path.join(dir, 'web1.db');
    const b = path.join(dir, 'sha.db');
    const shaPolicy = path.join(dir, 'sha.yml');
    fs.writeFileSync(shaPolicy, 'version: 1\nhash: sha256\nrules:\n  - name: app\n    paths: ["/srv/app/**"]\n');
    expect(integ('baseline', '--db', b, '--policy', shaPolicy, '--root', root1(), '--jobs', '0').status).toBe(0);
    const j = JSON.parse(integ('diff', a, b, '--format', 'json').stdout);
    expect(j.notices).toEqual([expect.stringMatching(/A hashes with blake3 and B with sha256: file content cannot be compared/)]);
    expect(integ('diff', a, b, '--ignore', 'content').stdout).not.toMatch(/note:/);
  });

  it('usage and input errors: unknown attribute, one argument, a bundle against a store, a missing store', () => {
    const a = path.join(dir, 'web1.db');
    expect(integ('diff', a, a, '--ignore', 'colour').status).toBe(64);
    expect(integ('diff', a).status).toBe(64);
    const mixed = integ('diff', a, path.join(dir, 'integ-web1-20261121T230000Z.tar.gz'));
    expect(mixed.status).toBe(64);
    expect(mixed.stderr).toMatch(/cannot compare an evidence bundle with a store/);
    expect(integ('diff', a, path.join(dir, 'nope.db')).status).toBe(66);
  });

  it('two bundles go to the bundle diff, never to the store code', () => {
    const r = integ('diff', path.join(dir, 'x.tar.gz'), path.join(dir, 'y.tar.gz'));
    expect(r.stderr).not.toMatch(/no baseline yet|store/);
    expect(r.status).toBe(66);
    expect(r.stderr).toBe(`integ: bundle ${path.join(dir, 'x.tar.gz')} not found\n`);
  });
});

describe('integ diff --generation N M', () => {
  it('compares two generations of one store; same generation is exit 0; missing or pruned generations are 66', () => {
    const db = path.join(dir, 'gens.db');
    const r1 = path.join(dir, 'gens');
    fs.cpSync(root1(), r1, { recursive: true });
    expect(baseline(db, r1, 'one').status).toBe(0);
    fs.writeFileSync(path.join(r1, 'srv', 'app', 'app.conf'), 'port=443\n');
    expect(baseline(db, r1, 'two').status).toBe(0);
    fs.writeFileSync(path.join(r1, 'srv', 'app', 'new'), 'n');
    expect(baseline(db, r1, 'three').status).toBe(0);

    const r = integ('diff', '--generation', '1', '3', '--db', db, '--format', 'json');
    expect(r.status, r.stderr).toBe(1);
    const j = JSON.parse(r.stdout);
    expect([j.a.generation, j.b.generation]).toEqual([1, 3]);
    // /srv/app itself got a new child: its mtime/size/nlink moved, which is directory noise, not a difference.
    expect(j.differences.map((d: { path: string; kind: string }) => [d.path, d.kind])).toEqual([
      ['/srv/app/app.conf', 'changed'],
      ['/srv/app/new', 'added'],
    ]);
    expect(integ('diff', '--generation', '2', '2', '--db', db).status).toBe(0);
    const missing = integ('diff', '--generation', '1', '9', '--db', db);
    expect(missing.status).toBe(66);
    expect(missing.stderr).toMatch(/has no generation #9/);
    expect(integ('diff', '--generation', '1', '--db', db).status).toBe(64);
    expect(integ('prune', '--keep', '2', '--db', db).status).toBe(0);
    const pruned = integ('diff', '--generation', '1', '3', '--db', db);
    expect(pruned.status).toBe(66);
    expect(pruned.stderr).toMatch(/generation #1 of .* was pruned/);
  });

  it('re-hashes the generations it reads: a tampered old generation is 16, nothing compared', () => {
    const db = path.join(dir, 'old.db');
    const r1 = path.join(dir, 'old');
    fs.cpSync(root1(), r1, { recursive: true });
    expect(baseline(db, r1, 'one').status).toBe(0);
    expect(baseline(db, r1, 'two').status).toBe(0);
    expect(integ('diff', '--generation', '1', '2', '--db', db).status).toBe(0);
    tamperDb(db, 'UPDATE entries SET mode = 511 WHERE gen = 1');
    const r = integ('diff', '--generation', '1', '2', '--db', db);
    expect(r.status).toBe(16);
    expect(r.stderr).toMatch(/generation #1: content does not match its recorded digest/);
    expect(r.stdout).toBe('');
  });
});
