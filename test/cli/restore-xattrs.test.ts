import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canDropToNobody, integ, tmpdir } from '../helpers/cli.js';

/**
 * restore puts back extended attributes (capabilities, ACLs, user.*) byte-exact and the inode
 * flags of the known-good version, through the CLI, as root, with the real tools checking.
 */
const dirs: string[] = [];
const immutable: string[] = [];
afterAll(() => {
  for (const f of immutable) spawnSync('chattr', ['-i', '-a', f]);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const sh = (cmd: string, ...a: string[]): string => execFileSync(cmd, a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const ok = (cmd: string, ...a: string[]): boolean => spawnSync(cmd, a, { stdio: 'ignore' }).status === 0;

/** Why these tests cannot run here, or null: root, the tools, and a temp file system with xattrs, ACLs, caps and chattr. */
function unsupported(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (setcap, chattr +i, chown)';
  for (const t of ['setcap', 'getcap', 'setfacl', 'getfacl', 'setfattr', 'getfattr', 'chattr', 'lsattr'])
    if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) return `${t} is not installed (Debian packages libcap2-bin, acl, attr, e2fsprogs)`;
  const d = tmpdir('integ-xattr-probe-');
  dirs.push(d);
  const f = path.join(d, 'probe');
  fs.writeFileSync(f, 'x');
  if (!ok('setfattr', '-n', 'user.probe', '-v', '1', f)) return `the temp file system under ${d} has no user.* extended attributes`;
  if (!ok('setfacl', '-m', 'u:nobody:r', f)) return `the temp file system under ${d} has no POSIX ACLs`;
  if (!ok('setcap', 'cap_net_raw+ep', f)) return `the temp file system under ${d} cannot store file capabilities`;
  if (!ok('chattr', '+i', f)) return `the temp file system under ${d} has no immutable flag (chattr +i)`;
  ok('chattr', '-i', f);
  return null;
}
const why = unsupported();
if (why) console.log(`restore-xattrs tests skipped: ${why}`);

function setup(base?: string) {
  const dir = base ? fs.mkdtempSync(path.join(base, 'integ-test-')) : tmpdir();
  dirs.push(dir);
  fs.chmodSync(dir, 0o755);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  const db = path.join(dir, 's.db');
  const ev = path.join(dir, 'evidence');
  const policy = path.join(dir, 'p.yml');
  fs.writeFileSync(policy, `version: 1\nrules:\n  - name: tree\n    severity: high\n    paths: ["${tree}/**"]\n    keep_content: true\n`);
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
  return { dir, tree, run, p: (n: string) => path.join(tree, n) };
}

const hex = (f: string, name: string): string | null => {
  const r = spawnSync('getfattr', ['--absolute-names', '-e', 'hex', '-n', name, f], { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout.match(new RegExp(`^${name.replace(/\./g, '\\.')}=(0x[0-9a-f]+)`, 'm'))?.[1] ?? null) : null;
};
const lsattr = (f: string): string => sh('lsattr', '-d', f).split(/\s+/)[0]!;
const facl = (f: string): string => sh('getfacl', '--absolute-names', '--omit-header', '--numeric', f);

describe.skipIf(why !== null)('integ restore: extended attributes and inode flags', () => {
  it('puts back an ACL and a user.* xattr, removes an added capability, clears an added +i; check is clean', () => {
    const t = setup();
    const tool = t.p('tool');
    fs.writeFileSync(tool, '#!/bin/sh\necho good\n');
    fs.chmodSync(tool, 0o750);
    sh('setfacl', '-m', 'u:65534:rw', tool);
    sh('setfattr', '-n', 'user.origin', '-v', 'good', tool);
    const aclGood = hex(tool, 'system.posix_acl_access');
    expect(aclGood).not.toBeNull();
    const modeGood = fs.statSync(tool).mode & 0o7777;
    expect(t.run('baseline', '--note', 'golden').code).toBe(0);

    // The attacker: new content, setuid capability, ACL removed, user xattr changed, made immutable.
    fs.writeFileSync(tool, '#!/bin/sh\nexec /bin/sh -p\n');
    sh('setcap', 'cap_setuid+ep', tool);
    sh('setfacl', '-b', tool);
    sh('setfattr', '-n', 'user.origin', '-v', 'evil', tool);
    sh('chattr', '+i', tool);
    immutable.push(tool);
    expect(sh('getcap', tool)).toMatch(/cap_setuid[=+]ep/);
    expect(facl(tool)).not.toContain('user:65534:');
    expect(hex(tool, 'system.posix_acl_access')).toBeNull();
    expect(sh('getfattr', '--absolute-names', '--only-values', '-n', 'user.origin', tool)).toBe('evil');
    expect(lsattr(tool)).toContain('i');

    const before = t.run('check', '--format', 'json');
    expect(before.code & 4).toBe(4);
    const attrs = JSON.parse(before.stdout).changes.find((f: { path: string }) => f.path === tool).attributes;
    expect(attrs).toEqual(expect.arrayContaining(['content', 'caps', 'acl', 'xattrs', 'flags']));

    const r = t.run('restore', tool, '--note', 'case 7: remove the setuid capability', '--format', 'json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.paths[0].action).toBe('restored');
    expect(j.paths[0].differed).toEqual(expect.arrayContaining(['content', 'caps', 'acl', 'xattrs', 'flags']));
    expect(j.paths[0].not_restored).toEqual([]);
    expect(j.paths[0].attributes_set).toEqual(expect.arrayContaining(['+system.posix_acl_access', '+user.origin', "suspect's +i cleared"]));

    // The suspect's extended attributes and flags are in the sealed bundle.
    const x = path.join(t.dir, 'x');
    fs.mkdirSync(x);
    execFileSync('tar', ['-xzf', j.bundle.path, '-C', x]);
    const suspect = JSON.parse(fs.readFileSync(path.join(x, fs.readdirSync(x)[0]!, 'restore/suspect.json'), 'utf8'));
    expect(JSON.parse(suspect[0].now.xattrs).map((p: [string, string]) => p[0])).toEqual(['security.capability', 'user.origin']);
    expect(suspect[0].now.flags & 0x10).toBe(0x10);
    expect(JSON.parse(suspect[0].known_good.xattrs).map((p: [string, string]) => p[0])).toEqual(['system.posix_acl_access', 'user.origin']);

    // The real tools see the known-good state.
    expect(fs.readFileSync(tool, 'utf8')).toBe('#!/bin/sh\necho good\n');
    expect(sh('getcap', tool).trim()).toBe('');
    expect(hex(tool, 'security.capability')).toBeNull();
    expect(facl(tool)).toContain('user:65534:rw-');
    expect(hex(tool, 'system.posix_acl_access')).toBe(aclGood);
    expect(sh('getfattr', '--absolute-names', '--only-values', '-n', 'user.origin', tool)).toBe('good');
    expect(lsattr(tool)).not.toContain('i');
    expect(fs.statSync(tool).mode & 0o7777).toBe(modeGood);
    expect(fs.readdirSync(t.tree)).toEqual(['tool']);

    const after = t.run('check');
    expect(after.stdout).toContain('OK');
    expect(after.code).toBe(0);
  });

  it('known-good +i and a capability are put back byte-exact on an immutable suspect; a text-only run lists what was set', () => {
    const t = setup();
    const ping = t.p('ping');
    fs.writeFileSync(ping, 'ELF good ping\n');
    fs.chmodSync(ping, 0o755);
    sh('setcap', 'cap_net_raw+ep', ping);
    const capGood = hex(ping, 'security.capability');
    expect(capGood).not.toBeNull();
    sh('chattr', '+i', ping);
    immutable.push(ping);
    expect(t.run('baseline').code).toBe(0);

    // The attacker lifts +i, swaps the binary with another capability and an extra xattr, and sets +i +a again.
    sh('chattr', '-i', ping);
    fs.writeFileSync(ping, 'ELF evil ping\n');
    sh('setcap', 'cap_setuid,cap_net_raw+ep', ping);
    sh('setfattr', '-n', 'user.payload', '-v', 'x', ping);
    sh('chattr', '+i', ping);
    expect(sh('getcap', ping)).toContain('cap_setuid');
    expect(hex(ping, 'security.capability')).not.toBe(capGood);
    expect(hex(ping, 'user.payload')).not.toBeNull();
    expect(lsattr(ping)).toContain('i');
    expect(t.run('check').code & 4).toBe(4);

    const r = t.run('restore', ping, '--note', 'case 8');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/restored\s+.*ping.*\[was: .*caps/);
    expect(r.stdout).toContain("suspect's +i cleared");
    expect(r.stdout).not.toContain('NOT restored');

    expect(fs.readFileSync(ping, 'utf8')).toBe('ELF good ping\n');
    expect(hex(ping, 'security.capability')).toBe(capGood);
    expect(sh('getcap', ping)).toMatch(/cap_net_raw[=+]ep/);
    expect(sh('getcap', ping)).not.toContain('cap_setuid');
    expect(hex(ping, 'user.payload')).toBeNull();
    expect(lsattr(ping)).toContain('i');
    expect(t.run('check').code).toBe(0);
  });

  it('a value over 4 KiB is recorded only by digest: put back from the suspect when it still has it, else reported per path (exit 8)', () => {
    // ext4 keeps a value within one block (no ea_inode): take a file system that stores 5000 bytes
    const probe = (d: string): boolean => {
      const f = path.join(fs.mkdtempSync(path.join(d, 'integ-probe-')), 'f');
      fs.writeFileSync(f, '');
      const r = ok('setfattr', '-n', 'user.big', '-v', 'A'.repeat(5000), f);
      fs.rmSync(path.dirname(f), { recursive: true });
      return r;
    };
    const base = [os.tmpdir(), '/dev/shm'].find((d) => fs.existsSync(d) && probe(d));
    if (!base) {
      console.log('skipped: no temp file system here stores a 5000-byte user.* value (ext4 without ea_inode caps values at one block)');
      return;
    }
    const t = setup(base);
    const a = t.p('a.conf');
    const b = t.p('b.conf');
    const big = 'A'.repeat(5000);
    for (const f of [a, b]) {
      fs.writeFileSync(f, 'good\n');
      sh('setfattr', '-n', 'user.big', '-v', big, f);
    }
    expect(t.run('baseline').code).toBe(0);
    // a: content changed, the big value kept (the write beside gets it from the suspect);
    // b: content and the big value changed (nothing has the known-good bytes any more).
    fs.writeFileSync(a, 'evil\n');
    fs.writeFileSync(b, 'evil\n');
    sh('setfattr', '-n', 'user.big', '-v', 'B'.repeat(5000), b);
    expect(sh('getfattr', '--absolute-names', '--only-values', '-n', 'user.big', b)).toBe('B'.repeat(5000));

    const r = t.run('restore', a, b, '--note', 'case 9', '--format', 'json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(8);
    const j = JSON.parse(r.stdout);
    const pa = j.paths.find((p: { path: string }) => p.path === a);
    const pb = j.paths.find((p: { path: string }) => p.path === b);
    expect(pa.not_restored).toEqual([]);
    expect(sh('getfattr', '--absolute-names', '--only-values', '-n', 'user.big', a)).toBe(big);
    expect(pb.not_restored).toEqual([{ attribute: 'xattrs', name: 'user.big', reason: expect.stringContaining('only its SHA-256 was recorded') }]);
    expect(fs.readFileSync(b, 'utf8')).toBe('good\n');
    expect(hex(b, 'user.big')).toBeNull();

    // The restore generation records b as it is now (without user.big): check is clean, and says so nowhere else.
    expect(t.run('check').code).toBe(0);
  });

  it('a directory restored in place gets its default ACL and user xattr back and loses an added +i; a new file drops an inherited ACL', () => {
    const t = setup();
    const pub = t.p('pub');
    fs.mkdirSync(pub, { mode: 0o755 });
    const index = path.join(pub, 'index.html');
    fs.writeFileSync(index, 'good\n');
    fs.chmodSync(index, 0o644);
    sh('setfacl', '-d', '-m', 'u:65534:rx', pub);
    sh('setfattr', '-n', 'user.dir', '-v', 'good', pub);
    const defGood = hex(pub, 'system.posix_acl_default');
    expect(defGood).not.toBeNull();
    expect(hex(index, 'system.posix_acl_access')).toBeNull();
    expect(t.run('baseline').code).toBe(0);

    sh('setfacl', '-k', pub);
    sh('setfattr', '-n', 'user.dir', '-v', 'evil', pub);
    sh('chattr', '+i', pub);
    immutable.push(pub);
    expect(hex(pub, 'system.posix_acl_default')).toBeNull();
    expect(sh('getfattr', '--absolute-names', '--only-values', '-n', 'user.dir', pub)).toBe('evil');
    expect(lsattr(pub)).toContain('i');
    const r = t.run('restore', pub, '--note', 'dir', '--format', 'json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.paths[0].differed).toEqual(expect.arrayContaining(['acl', 'xattrs', 'flags']));
    expect(hex(pub, 'system.posix_acl_default')).toBe(defGood);
    expect(sh('getfattr', '--absolute-names', '--only-values', '-n', 'user.dir', pub)).toBe('good');
    expect(lsattr(pub)).not.toContain('i');
    expect(t.run('check').code).toBe(0);

    // The file written beside inherits the directory's default ACL; its record has none.
    fs.writeFileSync(index, 'evil\n');
    const r2 = t.run('restore', index, '--note', 'file', '--format', 'json');
    expect(r2.stderr).toBe('');
    expect(r2.code).toBe(0);
    expect(JSON.parse(r2.stdout).paths[0].attributes_set).toContain('-system.posix_acl_access');
    expect(hex(index, 'system.posix_acl_access')).toBeNull();
    expect(facl(index)).not.toContain('user:65534');
    expect(fs.statSync(index).mode & 0o7777).toBe(0o644);
    expect(t.run('check').code).toBe(0);
  });

  it('restoring onto a file system without extended attributes or flags (--root on ramfs): per-path notice, exit 8, no crash', () => {
    const t = setup();
    const f = t.p('app.conf');
    fs.writeFileSync(f, 'good\n');
    sh('setfattr', '-n', 'user.origin', '-v', 'good', f);
    sh('chattr', '+a', f);
    immutable.push(f);
    expect(lsattr(f)).toContain('a');
    expect(t.run('baseline').code).toBe(0);
    const mnt = path.join(t.dir, 'ramfs');
    fs.mkdirSync(mnt);
    const m = spawnSync('mount', ['-t', 'ramfs', 'none', mnt], { encoding: 'utf8' });
    if (m.status !== 0) {
      console.log(`skipped: cannot mount a ramfs (a file system without xattrs) here: ${m.stderr.trim()}`);
      return;
    }
    try {
      fs.mkdirSync(path.join(mnt, t.tree), { recursive: true });
      const probe = path.join(mnt, 'probe');
      fs.writeFileSync(probe, '');
      expect(ok('setfattr', '-n', 'user.x', '-v', '1', probe)).toBe(false); // really no xattrs there
      const r = t.run('restore', '--root', mnt, f, '--note', 'rebuild onto ramfs');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(8);
      expect(r.stdout).toMatch(
        /NOT restored: xattrs user\.origin: (this file system \(or platform\) has no extended attributes|setting user\.origin: EOPNOTSUPP \(not supported by this file system or kernel\))\n/,
      );
      expect(r.stdout).toMatch(/NOT restored: flags \+a: this file system has no inode flags/);
      expect(fs.readFileSync(path.join(mnt, f), 'utf8')).toBe('good\n');
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it('without the privilege to set a capability: content restored, the capability listed as not restored with why (exit 8), no crash', () => {
    if (!canDropToNobody) {
      console.log('skipped: needs root, setpriv and the staged runtime to run restore as nobody');
      return;
    }
    const dir = tmpdir();
    dirs.push(dir);
    fs.chmodSync(dir, 0o755);
    const home = path.join(dir, 'nobody');
    const tree = path.join(home, 'tree');
    fs.mkdirSync(tree, { recursive: true });
    const tool = path.join(tree, 'tool');
    fs.writeFileSync(tool, 'good\n');
    fs.chmodSync(tool, 0o755);
    sh('setfattr', '-n', 'user.origin', '-v', 'good', tool);
    for (const p of [home, tree, tool]) fs.chownSync(p, 65534, 65534);
    sh('setcap', 'cap_net_raw+ep', tool); // root grants it; nobody cannot set it again
    const capGood = hex(tool, 'security.capability');
    expect(capGood).not.toBeNull();
    const policy = path.join(home, 'p.yml');
    fs.writeFileSync(policy, `version: 1\nrules:\n  - name: tree\n    severity: high\n    paths: ["${tree}/**"]\n    keep_content: true\n`);
    fs.chownSync(policy, 65534, 65534);
    const db = path.join(home, 's.db');
    const ev = path.join(home, 'ev');
    const run = (...a: string[]) => integ([...a, '--db', db, '--policy', policy], { asNobody: true });
    expect(run('baseline').code).toBe(0);

    // nobody rewrites the file: the kernel drops the capability, the user xattr is changed
    expect(
      spawnSync('setpriv', [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        '--',
        'sh',
        '-c',
        `printf 'evil\\n' > ${tool}; setfattr -n user.origin -v evil ${tool}`,
      ]).status,
    ).toBe(0);
    expect(fs.readFileSync(tool, 'utf8')).toBe('evil\n');
    expect(hex(tool, 'security.capability')).toBeNull();

    const r = run('restore', tool, '--note', 'as nobody', '--out', ev);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(8);
    expect(r.stdout).toMatch(/NOT restored: caps security\.capability: setting security\.capability: EPERM/);
    expect(r.stdout).not.toMatch(/NOT restored: xattrs/);
    expect(fs.readFileSync(tool, 'utf8')).toBe('good\n');
    expect(sh('getfattr', '--absolute-names', '--only-values', '-n', 'user.origin', tool)).toBe('good');
    expect(hex(tool, 'security.capability')).toBeNull();
    // recorded as it is now: the next check is clean
    expect(integ(['check', '--db', db, '--policy', policy, '--no-snapshot'], { asNobody: true }).code).toBe(0);

    // An immutable suspect nobody cannot unlock (no CAP_LINUX_IMMUTABLE): 73, nothing replaced, nothing left beside it.
    fs.writeFileSync(tool, 'evil again\n');
    sh('chattr', '+i', tool);
    immutable.push(tool);
    expect(lsattr(tool)).toContain('i');
    const locked = run('restore', tool, '--note', 'locked', '--out', ev);
    expect(locked.code).toBe(73);
    expect(locked.stderr).toMatch(/^integ: .*tool is \+i \(immutable\/append-only\) and cannot be replaced: .*EPERM.*nothing restored\n$/);
    expect(fs.readFileSync(tool, 'utf8')).toBe('evil again\n');
    expect(lsattr(tool)).toContain('i');
    expect(fs.readdirSync(tree)).toEqual(['tool']);
  });
});
