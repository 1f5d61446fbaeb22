import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integ, tmpdir, writePolicy } from '../helpers/cli.js';

interface Change {
  path: string;
  path_b64?: string;
  kind: string;
  attributes: string[];
  rule: string;
  severity: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

let dir: string;
const dirs: string[] = [];

function fresh(): { dir: string; tree: string; db: string; policy: string; run: (cmd: string, ...a: string[]) => ReturnType<typeof integ> } {
  const d = tmpdir();
  dirs.push(d);
  const tree = path.join(d, 'tree');
  fs.mkdirSync(tree);
  const db = path.join(d, 's.db');
  const policy = writePolicy(d, tree);
  const run = (cmd: string, ...a: string[]) => integ([cmd, '--db', db, '--policy', policy, '--jobs', '1', ...(cmd === 'check' ? ['--no-snapshot'] : []), ...a]);
  return { dir: d, tree, db, policy, run };
}

afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('integ check: the tampering matrix', () => {
  const t = fresh();
  const p = (n: string) => path.join(t.tree, n);
  let changes: Change[] = [];
  let report: Record<string, unknown>;
  let code = -1;

  beforeAll(() => {
    dir = t.dir;
    for (const n of ['content', 'mode', 'owner', 'truncate', 'append', 'rename-me', 'remove-me', 'typechange', 'linked'])
      fs.writeFileSync(p(n), `original ${n}\n`);
    fs.symlinkSync('/usr/bin/true', p('link'));
    fs.mkdirSync(p('dir'));
    const b = t.run('baseline', '--note', 'matrix');
    expect(b.stderr).toBe('');
    expect(b.code).toBe(0);
    // content changed, then mtime put back
    execFileSync('touch', ['-r', p('content'), path.join(t.dir, 'ref')]); // nanosecond-exact copy of the times
    fs.writeFileSync(p('content'), 'tampered content\n');
    execFileSync('touch', ['-r', path.join(t.dir, 'ref'), p('content')]);
    fs.chmodSync(p('mode'), 0o4755);
    fs.chownSync(p('owner'), 1234, 1234);
    fs.truncateSync(p('truncate'), 3);
    fs.appendFileSync(p('append'), 'more\n');
    fs.renameSync(p('rename-me'), p('renamed'));
    fs.rmSync(p('remove-me'));
    fs.rmSync(p('typechange'));
    fs.mkdirSync(p('typechange'));
    fs.linkSync(p('linked'), p('hardlink'));
    fs.rmSync(p('link'));
    fs.symlinkSync('/tmp/evil', p('link'));
    fs.writeFileSync(p('added'), 'new\n');
    const r = t.run('check', '--format', 'json');
    code = r.code;
    report = JSON.parse(r.stdout) as Record<string, unknown>;
    changes = report.changes as Change[];
  });

  const find = (n: string) => changes.find((c) => c.path === p(n));

  it('exits 1|2|4 = 7 and says so in the report', () => {
    expect(code).toBe(7);
    expect(report.exit_code).toBe(7);
    expect(report.summary).toMatchObject({ added: 3, removed: 2, errors: 0 });
  });

  it('catches content changed with mtime restored (content and ctime, not mtime)', () => {
    expect(find('content')).toMatchObject({ kind: 'changed', attributes: ['content', 'ctime'], rule: 'tree', severity: 'high' });
  });

  it('catches mode, owner, truncate and append', () => {
    expect(find('mode')?.attributes).toEqual(['mode', 'ctime']);
    expect(find('mode')?.after).toMatchObject({ mode: '4755' });
    expect(find('owner')?.attributes).toEqual(['uid', 'gid', 'ctime']);
    expect(find('truncate')?.attributes).toEqual(expect.arrayContaining(['content', 'size']));
    expect(find('append')?.attributes).toEqual(expect.arrayContaining(['content', 'size', 'mtime']));
  });

  it('catches a symlink retargeted, a file turned directory, a hard link added', () => {
    expect(find('link')?.attributes).toContain('target');
    expect(find('link')?.after).toMatchObject({ type: 'symlink', target: '/tmp/evil' });
    expect(find('typechange')).toMatchObject({ kind: 'changed' });
    expect(find('typechange')?.attributes).toContain('type');
    expect(find('linked')?.attributes).toEqual(expect.arrayContaining(['nlink', 'ctime']));
    expect(find('hardlink')).toMatchObject({ kind: 'added' });
  });

  it('shows a rename as removed + added, and plain additions and removals', () => {
    expect(find('rename-me')).toMatchObject({ kind: 'removed', after: null });
    expect(find('renamed')).toMatchObject({ kind: 'added', before: null });
    expect(find('remove-me')).toMatchObject({ kind: 'removed' });
    expect(find('added')).toMatchObject({ kind: 'added' });
  });

  it("follows the contract's JSON shape", () => {
    expect(report).toMatchObject({ schema: 'integ.check/1', tool: { name: 'integ' }, evidence: null, errors: [] });
    expect(report.baseline).toMatchObject({ generation: 1, note: 'matrix', signed: false });
    expect((report.baseline as { digest: string }).digest).toMatch(/^blake3:[0-9a-f]{64}$/);
    expect(String(report.started_at)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const c = find('content')!;
    expect(Object.keys(c.before!)).toEqual([
      'type',
      'mode',
      'uid',
      'gid',
      'size',
      'mtime',
      'ctime',
      'inode',
      'nlink',
      'target',
      'blake3',
      'sha256',
      'xattrs',
      'caps',
      'acl',
      'label',
      'flags',
    ]);
    expect(c.before!.blake3).not.toBe(c.after!.blake3);
  });

  it('records every run in the store', async () => {
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(t.db, { readonly: true });
    const runs = db.prepare('SELECT exit_code, added, removed, changed, baseline_digest FROM runs').all() as Array<Record<string, unknown>>;
    db.close();
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ exit_code: 7, added: 3, removed: 2, baseline_digest: (report.baseline as { digest: string }).digest });
  });

  it('prints a text report grouped by severity with a summary line', () => {
    const r = t.run('check');
    expect(r.code).toBe(7);
    // chmod 4755 is a new set-uid file: the RISK section comes first, then the severity groups.
    expect(r.stdout).toMatch(/^RISK \(1\)\n  CHANGED  \S+\/mode  \[mode, ctime\]  \(tree, high\)  risk: setuid\n[\s\S]*^HIGH \(\d+\)\n/m);
    expect(r.stdout).toContain(`  CHANGED  ${p('content')}  [content, ctime]  (tree)`);
    expect(r.stdout).toMatch(/ALERT \d+ scanned, 3 added, 2 removed, \d+ changed, 0 unreadable — baseline #1 blake3:[0-9a-f]{64} — exit 7\n$/);
    expect(dir).toBeTruthy();
  });
});

describe('integ check: exit codes one at a time', () => {
  it.each([
    ['clean', 0, () => undefined],
    ['added', 1, (tree: string) => fs.writeFileSync(path.join(tree, 'c'), 'c')],
    ['removed', 2, (tree: string) => fs.rmSync(path.join(tree, 'b'))],
    ['renamed', 3, (tree: string) => fs.renameSync(path.join(tree, 'a'), path.join(tree, 'a2'))],
    ['changed', 4, (tree: string) => fs.chmodSync(path.join(tree, 'a'), 0o600)],
  ] as const)('%s → exit %i', (_name, want, tamper) => {
    const t = fresh();
    fs.writeFileSync(path.join(t.tree, 'a'), 'a');
    fs.writeFileSync(path.join(t.tree, 'b'), 'b');
    expect(t.run('baseline').code).toBe(0);
    tamper(t.tree);
    expect(t.run('check').code).toBe(want);
  });

  it('reports a name that is not UTF-8 losslessly and one with a newline intact', () => {
    const t = fresh();
    const bad = Buffer.concat([Buffer.from(`${t.tree}/x`), Buffer.from([0xff]), Buffer.from('y')]);
    expect(t.run('baseline').code).toBe(0);
    fs.writeFileSync(bad, '1');
    fs.writeFileSync(path.join(t.tree, 'evil\nOK 0 scanned'), '1');
    const r = t.run('check', '--format', 'json');
    expect(r.code).toBe(1);
    const ch = (JSON.parse(r.stdout) as { changes: Change[] }).changes;
    const b = ch.find((c) => c.path_b64);
    expect(b?.path).toBe(`${t.tree}/x\\xffy`);
    expect(Buffer.from(b!.path_b64!, 'base64').equals(bad)).toBe(true);
    expect(ch.some((c) => c.path === `${t.tree}/evil\nOK 0 scanned`)).toBe(true);
    const text = t.run('check').stdout;
    expect(text).toContain(`${t.tree}/evil\\nOK 0 scanned`);
    expect(text).toContain(`${t.tree}/x\\xffy`);
  });

  it('merge-joins names whose byte order differs from depth-first order without false findings', () => {
    const t = fresh();
    for (const d of ['a', 'a/b', 'a-b', 'a.b', 'a0']) fs.mkdirSync(path.join(t.tree, d), { recursive: true });
    for (const f of ['a/x', 'a/b/y', 'a-b/z', 'a!', 'a.b/w', 'a0/v']) fs.writeFileSync(path.join(t.tree, f), f);
    expect(t.run('baseline').code).toBe(0);
    expect(t.run('check').code).toBe(0);
    fs.writeFileSync(path.join(t.tree, 'a/b/new'), 'n');
    fs.rmSync(path.join(t.tree, 'a-b/z'));
    fs.writeFileSync(path.join(t.tree, 'a.b/w'), 'changed');
    const r = t.run('check', '--format', 'json');
    expect(r.code).toBe(7);
    const ch = (JSON.parse(r.stdout) as { changes: Change[] }).changes.map((c) => [c.kind, c.path.slice(t.tree.length)]);
    expect(ch.sort()).toEqual([
      ['added', '/a/b/new'],
      ['changed', '/a.b/w'],
      ['removed', '/a-b/z'],
    ]);
  });

  it('lets a growing log grow but flags one that shrank or was rewritten', () => {
    const t = fresh();
    const pol = writePolicy(t.dir, t.tree, '    check: [type, mode, uid, gid, growing]\n');
    const run = (cmd: string, ...a: string[]) =>
      integ([cmd, '--db', t.db, '--policy', pol, '--jobs', '0', ...(cmd === 'check' ? ['--no-snapshot', '--format', 'json'] : []), ...a]);
    const log = path.join(t.tree, 'app.log');
    fs.writeFileSync(log, 'one\ntwo\n');
    expect(run('baseline').code).toBe(0);
    fs.appendFileSync(log, 'three\n');
    expect(run('check').code).toBe(0);
    fs.writeFileSync(log, 'ONE\ntwo\nthree\n');
    const r = run('check');
    expect(r.code).toBe(4);
    expect((JSON.parse(r.stdout) as { changes: Change[] }).changes[0]?.attributes).toEqual(['content']);
    fs.writeFileSync(log, 'one\n');
    expect((JSON.parse(run('check').stdout) as { changes: Change[] }).changes[0]?.attributes).toEqual(['size']);
  });

  it('--root reads under DIR and reports paths as the policy names them', () => {
    const t = fresh();
    fs.mkdirSync(path.join(t.tree, 'etc'));
    fs.writeFileSync(path.join(t.tree, 'etc', 'passwd'), 'root:x:0:0\n');
    const pol = path.join(t.dir, 'root.yml');
    fs.writeFileSync(pol, 'version: 1\nrules:\n  - name: etc\n    paths: ["/etc/passwd"]\n');
    expect(integ(['baseline', '--db', t.db, '--policy', pol, '--root', t.tree]).code).toBe(0);
    fs.appendFileSync(path.join(t.tree, 'etc', 'passwd'), 'evil:x:0:0\n');
    const r = integ(['check', '--db', t.db, '--policy', pol, '--root', t.tree, '--no-snapshot', '--format', 'json']);
    expect(r.code).toBe(4);
    expect((JSON.parse(r.stdout) as { changes: Change[] }).changes.map((c) => c.path)).toEqual(['/etc/passwd']);
  });
});
