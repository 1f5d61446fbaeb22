import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { integ, tmpdir } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
const isRoot = process.getuid?.() === 0;

function setup() {
  const dir = tmpdir();
  dirs.push(dir);
  fs.chmodSync(dir, 0o755);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'ssh'), { recursive: true });
  const db = path.join(dir, 's.db');
  const ev = path.join(dir, 'evidence');
  const policy = path.join(dir, 'p.yml');
  fs.writeFileSync(
    policy,
    `version: 1\nrules:\n  - name: tree\n    severity: high\n    paths: ["${tree}/**"]\n    keep_content: true\n    keep_content_exclude: ["/**/*.key"]\n`,
  );
  const run = (cmd: string, ...a: string[]) =>
    integ([
      cmd,
      '--db',
      db,
      ...(['restore', 'check', 'baseline'].includes(cmd) ? ['--policy', policy] : []),
      ...(cmd === 'check' ? ['--no-snapshot', '--jobs', '1'] : []),
      ...(cmd === 'restore' ? ['--out', ev] : []),
      ...a,
    ]);
  return { dir, tree, db, ev, policy, run, p: (n: string) => path.join(tree, n) };
}

const bundles = (ev: string) => (fs.existsSync(ev) ? fs.readdirSync(ev).filter((f) => f.endsWith('.tar.gz')) : []);

describe('integ restore', () => {
  it('round trip: content, mode, owner and group back; suspect copy sealed first; restore generation makes the next check clean', () => {
    const t = setup();
    const conf = t.p('ssh/sshd_config');
    fs.writeFileSync(conf, 'PermitRootLogin no\n');
    fs.chmodSync(conf, 0o640);
    if (isRoot) fs.chownSync(conf, 1234, 5678);
    fs.writeFileSync(t.p('motd'), 'welcome\n');
    expect(t.run('baseline', '--note', 'golden').code).toBe(0);

    // The attacker: new content, new mode, new owner.
    fs.writeFileSync(conf, 'PermitRootLogin yes\n# backdoor\n');
    fs.chmodSync(conf, 0o666);
    if (isRoot) fs.chownSync(conf, 0, 0);
    expect(fs.readFileSync(conf, 'utf8')).toContain('yes');
    const before = t.run('check');
    expect(before.code & 4).toBe(4);

    const r = t.run('restore', conf, '--note', 'case 42: revert sshd_config', '--format', 'json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.schema).toBe('integ.restore/1');
    expect(j.paths[0].action).toBe('restored');
    expect(j.paths[0].differed).toEqual(expect.arrayContaining(['content', 'mode', ...(isRoot ? ['uid', 'gid'] : [])]));
    expect(j.generation.kind).toBe('restore');

    const st = fs.lstatSync(conf);
    expect(fs.readFileSync(conf, 'utf8')).toBe('PermitRootLogin no\n');
    expect(st.mode & 0o7777).toBe(0o640);
    if (isRoot) expect([st.uid, st.gid]).toEqual([1234, 5678]);
    // no temp file left beside it
    expect(fs.readdirSync(t.p('ssh'))).toEqual(['sshd_config']);

    // The suspect version is in the named, verifiable bundle.
    expect(bundles(t.ev)).toHaveLength(1);
    expect(j.bundle.path).toBe(path.join(t.ev, bundles(t.ev)[0]!));
    expect(integ(['verify', j.bundle.path]).code).toBe(0);
    const x = path.join(t.dir, 'x');
    fs.mkdirSync(x);
    execFileSync('tar', ['-xzf', j.bundle.path, '-C', x]);
    const top = path.join(x, fs.readdirSync(x)[0]!);
    const suspect = JSON.parse(fs.readFileSync(path.join(top, 'restore/suspect.json'), 'utf8'));
    expect(suspect[0].path).toBe(conf);
    expect(suspect[0].now.mode).toBe('0666');
    expect(fs.readFileSync(path.join(top, suspect[0].file), 'utf8')).toBe('PermitRootLogin yes\n# backdoor\n');

    // Next check is clean; history tells the story.
    const after = t.run('check');
    expect(after.stdout).toContain('OK');
    expect(after.code).toBe(0);
    const h = JSON.parse(integ(['history', '--db', t.db, '--format', 'json']).stdout);
    const gens = h.generations ?? h;
    const last = gens[gens.length - 1];
    expect(last.kind).toBe('restore');
    expect(last.note).toBe('case 42: revert sshd_config');
    const db = new Database(t.db, { readonly: true });
    const ev = db.prepare('SELECT kind, path, sha256 FROM evidence').all() as { kind: string; path: string; sha256: string }[];
    db.close();
    expect(ev).toEqual([{ kind: 'restore', path: j.bundle.path, sha256: j.bundle.sha256 }]);
  });

  it('replaces a symlink planted at the path without writing through it, and restores a deleted file', () => {
    const t = setup();
    fs.writeFileSync(t.p('a.conf'), 'good a\n');
    fs.writeFileSync(t.p('b.conf'), 'good b\n');
    expect(t.run('baseline').code).toBe(0);
    const victim = path.join(t.dir, 'victim');
    fs.writeFileSync(victim, 'do not touch\n');
    fs.rmSync(t.p('a.conf'));
    fs.symlinkSync(victim, t.p('a.conf'));
    fs.rmSync(t.p('b.conf'));
    expect(fs.lstatSync(t.p('a.conf')).isSymbolicLink()).toBe(true);
    const r = t.run('restore', t.p('a.conf'), t.p('b.conf'), '--note', 'put back');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/restored\s+.*a\.conf.*\[was: .*type/);
    expect(fs.lstatSync(t.p('a.conf')).isFile()).toBe(true);
    expect(fs.readFileSync(t.p('a.conf'), 'utf8')).toBe('good a\n');
    expect(fs.readFileSync(t.p('b.conf'), 'utf8')).toBe('good b\n');
    expect(fs.readFileSync(victim, 'utf8')).toBe('do not touch\n');
    expect(t.run('check').code).toBe(0);
  });

  it('refuses (65) when a parent directory became a symlink, writing nothing there', () => {
    const t = setup();
    fs.writeFileSync(t.p('ssh/sshd_config'), 'good\n');
    expect(t.run('baseline').code).toBe(0);
    const elsewhere = path.join(t.dir, 'elsewhere');
    fs.mkdirSync(elsewhere);
    fs.renameSync(t.p('ssh'), path.join(t.dir, 'old-ssh'));
    fs.symlinkSync(elsewhere, t.p('ssh'));
    const r = t.run('restore', t.p('ssh/sshd_config'), '--note', 'n');
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/^integ: refusing to restore .*is a symlink or not a directory; a restore never writes through a symlink\n$/);
    expect(fs.readdirSync(elsewhere)).toEqual([]);
    expect(bundles(t.ev)).toEqual([]);
  });

  it('exit codes: 64 without --note, 65 path not in the generation, 66 content not kept, 66 unknown generation; nothing sealed', () => {
    const t = setup();
    fs.writeFileSync(t.p('a.conf'), 'a\n');
    fs.writeFileSync(t.p('server.key'), 'secret\n');
    expect(t.run('baseline').code).toBe(0);
    const noNote = t.run('restore', t.p('a.conf'));
    expect(noNote.code).toBe(64);
    expect(noNote.stderr).toMatch(/^integ: --note TEXT is required/);
    const notIn = t.run('restore', t.p('nope.conf'), '--note', 'n');
    expect(notIn.code).toBe(65);
    expect(notIn.stderr).toContain(`not in generation #1: ${t.p('nope.conf')}`);
    const notKept = t.run('restore', t.p('server.key'), '--note', 'n');
    expect(notKept.code).toBe(66);
    expect(notKept.stderr).toContain('was not kept in generation #1');
    const noGen = t.run('restore', t.p('a.conf'), '--note', 'n', '--generation', '9');
    expect(noGen.code).toBe(66);
    expect(bundles(t.ev)).toEqual([]);
  });

  it('--dry-run says what would change and changes, seals and records nothing', () => {
    const t = setup();
    fs.writeFileSync(t.p('a.conf'), 'a\n');
    expect(t.run('baseline').code).toBe(0);
    fs.writeFileSync(t.p('a.conf'), 'evil\n');
    const r = t.run('restore', t.p('a.conf'), '--note', 'n', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('would restore');
    expect(r.stdout).toContain('[was: content, size]');
    expect(fs.readFileSync(t.p('a.conf'), 'utf8')).toBe('evil\n');
    expect(bundles(t.ev)).toEqual([]);
    expect(JSON.parse(integ(['history', '--db', t.db, '--format', 'json']).stdout).generations.length).toBe(1);
  });

  it('--generation N restores an older version; --root restores into a mounted tree', () => {
    const t = setup();
    fs.writeFileSync(t.p('a.conf'), 'v1\n');
    expect(t.run('baseline').code).toBe(0);
    fs.writeFileSync(t.p('a.conf'), 'v2\n');
    expect(t.run('baseline').code).toBe(0);
    fs.writeFileSync(t.p('a.conf'), 'evil\n');
    expect(t.run('restore', t.p('a.conf'), '--note', 'back to v1', '--generation', '1').code).toBe(0);
    expect(fs.readFileSync(t.p('a.conf'), 'utf8')).toBe('v1\n');
    expect(t.run('check').code).toBe(0);

    // A mounted copy of the system, rebuilt before it boots.
    const mnt = path.join(t.dir, 'mnt');
    fs.mkdirSync(path.join(mnt, t.tree, 'ssh'), { recursive: true });
    fs.writeFileSync(path.join(mnt, t.p('a.conf')), 'evil in image\n');
    const r = t.run('restore', t.p('a.conf'), '--note', 'image', '--root', mnt);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(path.join(mnt, t.p('a.conf')), 'utf8')).toBe('v1\n');
    expect(fs.readFileSync(t.p('a.conf'), 'utf8')).toBe('v1\n');
  });

  it('refuses to restore from a store whose kept content was altered (16)', () => {
    const t = setup();
    fs.writeFileSync(t.p('a.conf'), 'good\n');
    expect(t.run('baseline').code).toBe(0);
    const db = new Database(t.db);
    expect(db.prepare("UPDATE contents SET data = X'00', size = 1").run().changes).toBe(1);
    db.close();
    fs.writeFileSync(t.p('a.conf'), 'evil\n');
    const r = t.run('restore', t.p('a.conf'), '--note', 'n');
    expect(r.code).toBe(16);
    expect(fs.readFileSync(t.p('a.conf'), 'utf8')).toBe('evil\n');
  });
});

describe('integ restore when nothing differs', () => {
  it('says so and seals, writes and records nothing', () => {
    const t = setup();
    fs.writeFileSync(t.p('a.conf'), 'a\n');
    expect(t.run('baseline').code).toBe(0);
    const r = t.run('restore', t.p('a.conf'), '--note', 'just in case');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^already known-good\s+.*a\.conf/m);
    expect(r.stdout).toContain('nothing to restore');
    expect(bundles(t.ev)).toEqual([]);
    expect(JSON.parse(integ(['history', '--db', t.db, '--format', 'json']).stdout).generations).toHaveLength(1);
  });
});

describe('integ restore: symlinks and directories', () => {
  it('puts back a symlink target and a directory mode; recreates a deleted directory the generation knows', () => {
    const t = setup();
    fs.mkdirSync(t.p('conf.d'), { mode: 0o750 });
    fs.chmodSync(t.p('conf.d'), 0o750);
    fs.writeFileSync(t.p('conf.d/x.conf'), 'x\n');
    fs.symlinkSync('conf.d/x.conf', t.p('current'));
    expect(t.run('baseline').code).toBe(0);
    fs.chmodSync(t.p('conf.d'), 0o777);
    fs.rmSync(t.p('current'));
    fs.symlinkSync('/tmp/evil', t.p('current'));
    expect(fs.readlinkSync(t.p('current'))).toBe('/tmp/evil');
    const r = t.run('restore', t.p('conf.d'), t.p('current'), '--note', 'put back');
    expect(r.code).toBe(0);
    expect(fs.statSync(t.p('conf.d')).mode & 0o7777).toBe(0o750);
    expect(fs.readlinkSync(t.p('current'))).toBe('conf.d/x.conf');
    expect(t.run('check').code).toBe(0);

    // A whole directory deleted: the file comes back with its directory's recorded mode.
    fs.rmSync(t.p('conf.d'), { recursive: true });
    const again = t.run('restore', t.p('conf.d/x.conf'), '--note', 'directory deleted');
    expect(again.code).toBe(0);
    expect(fs.readFileSync(t.p('conf.d/x.conf'), 'utf8')).toBe('x\n');
    expect(fs.statSync(t.p('conf.d')).mode & 0o7777).toBe(0o750);
    expect(again.stdout).toMatch(/^restored\s+\S*conf\.d  from generation/m);
    expect(t.run('check').code).toBe(0); // the recreated directory is in the restore generation too
  });
});
