import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collectAll } from '../../src/evidence/collect.js';
import { diffSnapshots, normaliseKernelThreadName } from '../../src/evidence/snapshot-diff.js';
import { cleanupTmp, copyTree, FSROOT, MemSink, PROC, SYS, tmpDir } from './collect-helpers.js';
import { editText } from '../helpers/tamper.js';

afterAll(cleanupTmp);

interface P {
  pid: number;
  exe: string | null;
  cmdline: string[];
  user?: string;
  name?: string;
  kernel_thread?: boolean;
}
interface L {
  proto: string;
  addr: string;
  port: number;
  owners: Array<{ pid: number; exe: string | null }>;
}

/** A snapshot as artifact maps read back from a bundle, built from a few facts. */
function snap(o: {
  procs?: P[];
  listening?: L[];
  exes?: Array<{ pids: number[]; sha256: string | null }>;
  sessions?: Array<{ user: string; line: string; host: string }>;
  logind?: Array<{ user: string; tty: string | null; remote_host: string | null }>;
  modules?: string[];
  hiddenModules?: string[];
  preload?: string | null;
  integPid?: number;
}): Map<string, unknown> {
  const m = new Map<string, unknown>();
  m.set('system', { integ: { pid: o.integPid ?? 99999 } });
  m.set('processes', { processes: (o.procs ?? []).map((p) => ({ user: 'root', name: p.cmdline[0] ?? 'x', kernel_thread: false, ...p })) });
  m.set('listening', { listening: o.listening ?? [] });
  m.set('sockets', { namespaces: [{ netns: 1, own: true }], sockets: [] });
  if (o.exes) m.set('executables', { executables: o.exes });
  m.set('sessions', { current: o.sessions ?? [], logind: o.logind ?? [] });
  m.set('modules', { modules: (o.modules ?? []).map((name) => ({ name })), only_in_sys_module: o.hiddenModules ?? [] });
  m.set('ld_so_preload', o.preload === undefined || o.preload === null ? { present: false, content: null } : { present: true, content: o.preload });
  return m;
}

const sshd = (pid: number): P => ({ pid, exe: '/usr/sbin/sshd', cmdline: ['sshd: /usr/sbin/sshd -D'] });
const nginx = (pid: number): P => ({ pid, exe: '/usr/sbin/nginx', cmdline: ['nginx: worker process'], user: 'www-data' });
const listen22 = (pid: number): L => ({ proto: 'tcp', addr: '0.0.0.0', port: 22, owners: [{ pid, exe: '/usr/sbin/sshd' }] });
const section = (d: ReturnType<typeof diffSnapshots>, name: string) => d.sections.find((s) => s.name === name)!;

describe('diffSnapshots', () => {
  it('ignores pids: the same processes and ports under other pids are no difference', () => {
    const a = snap({
      procs: [sshd(100), nginx(200), nginx(201)],
      listening: [listen22(100)],
      exes: [
        { pids: [100], sha256: 'aa' },
        { pids: [200, 201], sha256: 'bb' },
      ],
      integPid: 1,
    });
    const b = snap({
      procs: [sshd(3100), nginx(3200), nginx(3201), { pid: 2, exe: '/usr/bin/integ', cmdline: ['node', 'integ', 'snapshot', '--out', '/y'] }],
      listening: [listen22(3100)],
      exes: [
        { pids: [3100], sha256: 'aa' },
        { pids: [3200, 3201], sha256: 'bb' },
      ],
      integPid: 2,
    });
    const d = diffSnapshots(a, b);
    expect(d.sections.map((s) => [s.name, s.added.length, s.removed.length])).toEqual([
      ['listening', 0, 0],
      ['connections', 0, 0],
      ['processes', 0, 0],
      ['kernel_threads', 0, 0],
      ['sessions', 0, 0],
      ['modules', 0, 0],
      ['ld_so_preload', 0, 0],
    ]);
    expect(d.same).toBe(true);
    expect(d.skipped).toEqual([]);
  });

  it('reports a new listening port with its executable', () => {
    const a = snap({ procs: [sshd(100)], listening: [listen22(100)] });
    const b = snap({
      procs: [sshd(100), { pid: 666, exe: '/tmp/.x/nc', cmdline: ['nc', '-lp', '4444'] }],
      listening: [listen22(100), { proto: 'tcp', addr: '0.0.0.0', port: 4444, owners: [{ pid: 666, exe: '/tmp/.x/nc' }] }],
    });
    const d = diffSnapshots(a, b);
    expect(d.same).toBe(false);
    expect(section(d, 'listening')).toEqual({
      name: 'listening',
      added: [{ netns: 'host', proto: 'tcp', addr: '0.0.0.0', port: 4444, exe: '/tmp/.x/nc' }],
      removed: [],
    });
    expect(section(d, 'processes').added).toEqual([{ exe: '/tmp/.x/nc', exe_sha256: null, cmdline: ['nc', '-lp', '4444'], user: 'root', instances: 1 }]);
  });

  it('sees a port now served by another executable as one gone and one new', () => {
    const a = snap({ listening: [listen22(100)] });
    const b = snap({ listening: [{ proto: 'tcp', addr: '0.0.0.0', port: 22, owners: [{ pid: 100, exe: '/tmp/sshd' }] }] });
    const s = section(diffSnapshots(a, b), 'listening');
    expect(s.added).toEqual([{ netns: 'host', proto: 'tcp', addr: '0.0.0.0', port: 22, exe: '/tmp/sshd' }]);
    expect(s.removed).toEqual([{ netns: 'host', proto: 'tcp', addr: '0.0.0.0', port: 22, exe: '/usr/sbin/sshd' }]);
  });

  it('tells a replaced binary at the same path by its sha256, and counts extra instances', () => {
    const a = snap({
      procs: [sshd(100), nginx(200)],
      exes: [
        { pids: [100], sha256: 'aa' },
        { pids: [200], sha256: 'bb' },
      ],
    });
    const b = snap({
      procs: [sshd(100), nginx(200), nginx(201), nginx(202)],
      exes: [
        { pids: [100], sha256: 'evil' },
        { pids: [200, 201, 202], sha256: 'bb' },
      ],
    });
    const s = section(diffSnapshots(a, b), 'processes');
    expect(s.removed).toEqual([{ exe: '/usr/sbin/sshd', exe_sha256: 'aa', cmdline: ['sshd: /usr/sbin/sshd -D'], user: 'root', instances: 1 }]);
    expect(s.added).toHaveLength(2);
    expect(s.added).toEqual(
      expect.arrayContaining([
        { exe: '/usr/sbin/sshd', exe_sha256: 'evil', cmdline: ['sshd: /usr/sbin/sshd -D'], user: 'root', instances: 1 },
        { exe: '/usr/sbin/nginx', exe_sha256: 'bb', cmdline: ['nginx: worker process'], user: 'www-data', instances: 2 },
      ]),
    );
  });

  it('does not take a hash missing on one side for a new process', () => {
    const a = snap({ procs: [sshd(100)], exes: [{ pids: [100], sha256: 'aa' }] });
    const b = snap({ procs: [sshd(200)], exes: [{ pids: [200], sha256: null }] });
    expect(section(diffSnapshots(a, b), 'processes')).toEqual({ name: 'processes', added: [], removed: [] });
  });

  it('compares sessions, modules (including sysfs-only ones) and ld.so.preload', () => {
    const a = snap({ sessions: [{ user: 'alice', line: 'pts/0', host: '203.0.113.9' }], modules: ['nf_tables'] });
    const b = snap({
      logind: [
        { user: 'alice', tty: 'pts/0', remote_host: '203.0.113.9' },
        { user: 'mallory', tty: null, remote_host: '192.0.2.66' },
      ],
      modules: ['nf_tables'],
      hiddenModules: ['diamorphine'],
      preload: '/lib/libhide.so\n',
    });
    const d = diffSnapshots(a, b);
    expect(section(d, 'sessions')).toEqual({ name: 'sessions', added: [{ user: 'mallory', line: '', host: '192.0.2.66' }], removed: [] });
    expect(section(d, 'modules').added).toEqual([{ name: 'diamorphine' }]);
    expect(section(d, 'ld_so_preload')).toEqual({
      name: 'ld_so_preload',
      added: [{ present: true, content: '/lib/libhide.so\n' }],
      removed: [{ present: false, content: null }],
    });
  });

  it('compares kernel threads by the shape of their names', () => {
    expect(normaliseKernelThreadName('kworker/u8:3-events_unbound')).toBe('kworker/u#:#-events_unbound');
    const kt = (pid: number, name: string): P => ({ pid, exe: null, cmdline: [], name, kernel_thread: true });
    const a = snap({ procs: [kt(10, 'kworker/0:1'), kt(11, 'ksoftirqd/0')] });
    const b = snap({ procs: [kt(20, 'kworker/1:2'), kt(21, 'ksoftirqd/0'), kt(22, 'evil_kthread')] });
    const s = section(diffSnapshots(a, b), 'kernel_threads');
    expect(s.added).toEqual([{ name: 'evil_kthread' }]);
    expect(s.removed).toEqual([]);
  });

  it('does not call snapshots the same when one lacks an artifact', () => {
    const a = snap({});
    const b = snap({});
    b.delete('modules');
    const d = diffSnapshots(a, b);
    expect(d.same).toBe(false);
    expect(d.skipped).toEqual([{ name: 'modules', reason: 'artifact "modules" missing or unusable in the second snapshot' }]);
    a.delete('modules');
    expect(diffSnapshots(a, b).same).toBe(true);
  });
});

describe('diffSnapshots on two collections of the fake host', () => {
  /** Renumber pid 4242 to 5151 in a copy of the fixture /proc (beside a link to fsroot, for the exe links). */
  function renumbered(): string {
    const top = tmpDir('renum');
    const root = path.join(top, 'proc');
    copyTree(PROC, root);
    fs.symlinkSync(FSROOT, path.join(top, 'fsroot'));
    fs.renameSync(path.join(root, '4242'), path.join(root, '5151'));
    const stat = path.join(root, '5151/stat');
    editText(stat, (t) => t.replace(/^4242 /, '5151 '));
    const status = path.join(root, '5151/status');
    editText(status, (t) => t.replace(/\t4242\n/g, '\t5151\n'));
    return root;
  }
  const collect = async (procRoot: string): Promise<Map<string, unknown>> => {
    const sink = new MemSink();
    await collectAll(sink, {
      ctx: { procRoot, sysRoot: SYS, fsRoot: FSROOT },
      signal: new AbortController().signal,
      argv: [],
      only: ['core', 'sessions', 'kernel', 'executables'],
    });
    return sink.artifactMap();
  };

  it('finds no difference when only pids changed, and a new listener when one appears', async () => {
    const a = await collect(PROC);
    const root = renumbered();
    const b = await collect(root);
    expect((b.get('processes') as any).processes.map((p: any) => p.pid)).toContain(5151);
    const same = diffSnapshots(a, b);
    expect(same.sections.filter((s) => s.added.length || s.removed.length)).toEqual([]);
    expect(same.same).toBe(true);

    fs.appendFileSync(
      path.join(root, 'net/tcp'),
      '   9: 00000000:115C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7777 1 0000000000000000 100 0 0 10 0\n',
    );
    fs.symlinkSync('socket:[7777]', path.join(root, '5151/fd/9'));
    const c = await collect(root);
    const d = diffSnapshots(a, c);
    expect(d.same).toBe(false);
    expect(d.sections.find((s) => s.name === 'listening')!.added).toEqual([
      { netns: 'host', proto: 'tcp', addr: '0.0.0.0', port: 4444, exe: '../../fsroot/usr/bin/fake-sshd' },
    ]);
  });
});

describe('diffSnapshots: namespaces, connections, exact command lines, persistence', () => {
  const base = (): Map<string, unknown> => snap({});
  const sock = (o: Record<string, unknown>): Record<string, unknown> => ({ proto: 'tcp', netns: 1, state: 'ESTABLISHED', seen: 'both', ...o });

  it('keys listeners with their network namespace: host, a container, another namespace', () => {
    const a = base();
    const b = base();
    b.set('processes', {
      processes: [{ pid: 7, exe: '/usr/bin/python3', cmdline: ['python3'], user: 'root', netns: 5, container: { id: 'c'.repeat(64), runtime: 'docker' } }],
    });
    b.set('listening', {
      listening: [
        { proto: 'tcp', addr: '0.0.0.0', port: 8080, netns: 1, owners: [] },
        { proto: 'tcp', addr: '0.0.0.0', port: 8080, netns: 5, owners: [{ pid: 7, exe: '/usr/bin/python3' }] },
        { proto: 'tcp', addr: '0.0.0.0', port: 8080, netns: 9, owners: [] },
      ],
    });
    expect(section(diffSnapshots(a, b), 'listening').added.map((x: any) => x.netns)).toEqual([`container:${'c'.repeat(12)}`, 'host', 'netns:9']);
  });

  it('compares established connections by remote endpoint (outbound) or local port + remote address (inbound), not ephemeral ports or pids', () => {
    const a = base();
    const b = base();
    const procs = (pid: number) => ({
      processes: [
        { pid, exe: '/usr/bin/curl', cmdline: ['curl'], user: 'root' },
        { pid: pid + 1, exe: '/usr/sbin/sshd', cmdline: ['sshd'], user: 'root' },
      ],
    });
    a.set('processes', procs(10));
    b.set('processes', procs(20));
    const l22 = { listening: [{ proto: 'tcp', addr: '0.0.0.0', port: 22, netns: 1, owners: [] }] };
    a.set('listening', l22);
    b.set('listening', l22);
    a.set('sockets', {
      namespaces: [{ netns: 1, own: true }],
      sockets: [
        sock({ local: { addr: '10.0.0.5', port: 40001 }, remote: { addr: '198.51.100.7', port: 443 }, pids: [10] }),
        sock({ local: { addr: '10.0.0.5', port: 22 }, remote: { addr: '192.0.2.50', port: 51000 }, pids: [11] }),
      ],
    });
    b.set('sockets', {
      namespaces: [{ netns: 1, own: true }],
      sockets: [
        sock({ local: { addr: '10.0.0.5', port: 40999 }, remote: { addr: '198.51.100.7', port: 443 }, pids: [20] }),
        sock({ local: { addr: '10.0.0.5', port: 22 }, remote: { addr: '192.0.2.50', port: 52000 }, pids: [21] }),
        sock({ local: { addr: '10.0.0.5', port: 40002 }, remote: { addr: '203.0.113.9', port: 4444 }, pids: [20] }),
        sock({ local: { addr: '10.0.0.5', port: 40003 }, remote: { addr: '203.0.113.10', port: 80 }, state: 'TIME_WAIT', pids: [] }),
      ],
    });
    const s = section(diffSnapshots(a, b), 'connections');
    expect(s.added).toEqual([{ netns: 'host', proto: 'tcp', direction: 'outbound', remote: '203.0.113.9:4444', exe: '/usr/bin/curl' }]);
    expect(s.removed).toEqual([]);
  });

  it('two command lines that render alike but differ in bytes are different processes', () => {
    const a = base();
    const b = base();
    // "\xff" typed as four characters vs the byte 0xff: the text is the same, the bytes are not
    a.set('processes', { processes: [{ pid: 5, exe: '/bin/x', cmdline: ['x', '\\xff'], user: 'root' }] });
    b.set('processes', {
      processes: [{ pid: 5, exe: '/bin/x', cmdline: ['x', '\\xff'], cmdline_b64: { 1: Buffer.from([0xff]).toString('base64') }, user: 'root' }],
    });
    const s = section(diffSnapshots(a, b), 'processes');
    expect(s.added).toEqual([expect.objectContaining({ cmdline: ['x', '\\xff'], cmdline_b64: { 1: '/w==' } })]);
    expect(s.removed).toEqual([expect.objectContaining({ cmdline: ['x', '\\xff'] })]);
  });

  it('persistence, accounts and findings: new or changed entries, skipped quietly against an older bundle', () => {
    const a = base();
    const b = base();
    a.set('persistence', { entries: [{ path: '/root/.ssh/authorized_keys', category: 'authorized_keys', type: 'file', sha256: 'aa', symlink_target: null }] });
    b.set('persistence', {
      entries: [
        { path: '/root/.ssh/authorized_keys', category: 'authorized_keys', type: 'file', sha256: 'bb', symlink_target: null },
        { path: '/etc/cron.d/x', category: 'cron', type: 'file', sha256: 'cc', symlink_target: null },
      ],
    });
    a.set('accounts', { accounts: [{ name: 'root', uid: 0, gid: 0, home: '/root', shell: '/bin/bash', password: 'hash', hash_fingerprint: '1' }] });
    b.set('accounts', {
      accounts: [
        { name: 'root', uid: 0, gid: 0, home: '/root', shell: '/bin/bash', password: 'hash', hash_fingerprint: '1' },
        { name: 'toor', uid: 0, gid: 0, home: '/', shell: '/bin/sh', password: 'empty', hash_fingerprint: null },
      ],
    });
    b.set('findings', { findings: [{ kind: 'preload', severity: 'critical', path: '/etc/ld.so.preload', detail: 'x' }] });
    const d = diffSnapshots(a, b);
    expect(section(d, 'persistence').added.map((x: any) => `${x.path} ${x.sha256}`)).toEqual(['/etc/cron.d/x cc', '/root/.ssh/authorized_keys bb']);
    expect(section(d, 'persistence').removed.map((x: any) => x.sha256)).toEqual(['aa']);
    expect(section(d, 'accounts').added).toEqual([expect.objectContaining({ name: 'toor', uid: 0, password: 'empty' })]);
    expect(d.sections.find((s) => s.name === 'findings')).toBeUndefined();
    expect(d.skipped).toEqual([{ name: 'findings', reason: 'artifact "findings" in one snapshot only (made by an older integ)' }]);
  });
});
