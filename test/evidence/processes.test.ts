import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listPids, parseCmdline, parseStat, probeHiddenPids, readProcess } from '../../src/evidence/collectors/processes.js';
import type { CollectError } from '../../src/evidence/types.js';
import { cleanupTmp, PROC, tmpDir } from './collect-helpers.js';

afterAll(cleanupTmp);

const users = new Map([
  [0, 'root'],
  [1000, 'alice'],
]);

describe('parseStat', () => {
  it('takes comm up to the LAST ")" so a name with spaces and ")" cannot shift the fields', () => {
    const line = fs.readFileSync(path.join(PROC, '4242/stat'), 'utf8');
    const st = parseStat(line);
    expect(st.pid).toBe(4242);
    expect(st.comm).toBe('evil) R 1 (x y');
    expect(st.state).toBe('S');
    expect(st.ppid).toBe(1);
    expect(st.session).toBe(4242);
    expect(st.num_threads).toBe(2);
    expect(st.starttime).toBe(360000);
  });

  it('rejects a line without (comm)', () => {
    expect(() => parseStat('12 S 1 2 3')).toThrow(/comm/);
  });
});

describe('parseCmdline', () => {
  it('splits on NUL without inventing a trailing empty argument', () => {
    expect(parseCmdline(Buffer.from('a\0b c\0\0d\0'))).toEqual(['a', 'b c', '', 'd']);
    expect(parseCmdline(Buffer.from('no-trailing-nul'))).toEqual(['no-trailing-nul']);
    expect(parseCmdline(Buffer.alloc(0))).toEqual([]);
  });

  it('keeps bytes that are not UTF-8, escaped', () => {
    expect(parseCmdline(Buffer.from([0x61, 0xff, 0x00]))).toEqual(['a\\xff']);
  });
});

describe('readProcess on the fake /proc', () => {
  it('reads a process whose comm has spaces and ")"', () => {
    const errors: CollectError[] = [];
    const p = readProcess(PROC, 4242, { btime: 1763766000, users, maxFds: 100 }, errors)!;
    expect(errors).toEqual([]);
    expect(p.name).toBe('evil) R 1 (x y');
    expect(p.ppid).toBe(1);
    expect(p.uid).toEqual([0, 0, 0, 0]);
    expect(p.user).toBe('root');
    expect(p.cmdline).toEqual(['/usr/sbin/sshd', '-D', '-o', 'Arg With Space']);
    expect(p.exe).toBe('../../fsroot/usr/bin/fake-sshd');
    expect(p.exe_deleted).toBe(false);
    expect(p.netns).toBe(4026531840);
    expect(p.fd_count).toBe(6);
    expect(p.socket_inodes.sort()).toEqual([2002, 2003, 2004, 4001]);
    // btime + 360000 ticks / 100
    expect(p.start_time).toBe(new Date((1763766000 + 3600) * 1000).toISOString());
    expect(p.kernel_thread).toBe(false);
  });

  it('recognises a kernel thread by PF_KTHREAD and expects no exe', () => {
    const errors: CollectError[] = [];
    const p = readProcess(PROC, 2, { btime: null, users, maxFds: 100 }, errors)!;
    expect(p.kernel_thread).toBe(true);
    expect(p.exe).toBeNull();
    expect(p.cmdline).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('returns null for a pid that is gone, without an error', () => {
    const errors: CollectError[] = [];
    expect(readProcess(PROC, 99999, { btime: null, users, maxFds: 100 }, errors)).toBeNull();
    expect(errors).toEqual([]);
  });

  it('bounds the fd links read and says so', () => {
    const errors: CollectError[] = [];
    const p = readProcess(PROC, 4242, { btime: null, users, maxFds: 2 }, errors)!;
    expect(p.fd_count).toBe(6);
    expect(errors).toEqual([expect.objectContaining({ code: 'ETOOMANY', artifact: 'processes' })]);
  });

  it('lists only numeric entries', () => {
    expect(listPids(PROC)).toEqual([1, 2, 777, 4242]);
  });
});

describe('probeHiddenPids', () => {
  /** A /proc where 10 is a process, 11 a thread of 10 and 20 a thread of hidden 30. */
  function tree(): string {
    const root = tmpDir('hidden');
    const mk = (pid: number, tgid: number, name: string): void => {
      fs.mkdirSync(path.join(root, String(pid)));
      fs.writeFileSync(path.join(root, String(pid), 'status'), `Name:\t${name}\nTgid:\t${tgid}\nPid:\t${pid}\n`);
      fs.writeFileSync(path.join(root, String(pid), 'cmdline'), `${name}\0--flag\0`);
    };
    mk(10, 10, 'listed');
    mk(11, 10, 'listed-thread');
    mk(20, 30, 'worker');
    mk(30, 30, 'hiddend');
    mk(40, 40, 'another');
    return root;
  }

  it('reports a pid that stat() finds but the listing lacks, and skips threads of listed processes', () => {
    const root = tree();
    const r = probeHiddenPids(root, new Set([10, 40]), { pidMax: 100, margin: 100, stopAt: Date.now() + 5000, relist: () => [10, 40] });
    expect(r.hidden.map((h) => h.pid)).toEqual([30]);
    expect(r.hidden[0]).toMatchObject({ name: 'hiddend', cmdline: ['hiddend', '--flag'], found_via_tid: 20 });
    expect(r.threads_seen).toBe(1);
    expect(r.complete).toBe(true);
    expect(r.probed_up_to).toBe(100);
  });

  it('does not report a process that merely started after the listing', () => {
    const root = tree();
    const r = probeHiddenPids(root, new Set([10, 30]), { pidMax: 100, margin: 100, stopAt: Date.now() + 5000, relist: () => [10, 30, 40] });
    expect(r.hidden).toEqual([]);
  });

  it('stops at its time bound and records how far it got', () => {
    const root = tree();
    const r = probeHiddenPids(root, new Set([10]), { pidMax: 4194304, margin: 4194304, stopAt: Date.now() - 1, relist: () => [10] });
    expect(r.complete).toBe(false);
    expect(r.probed_up_to).toBeLessThan(r.limit);
    expect(r.limit).toBe(4194304);
  });
});

describe('per-process helpers', () => {
  it('classifies fd targets', async () => {
    const { fdKind } = await import('../../src/evidence/collectors/processes.js');
    expect(['socket:[1]', 'pipe:[2]', '/memfd:x (deleted)', 'anon_inode:[eventfd]', '/tmp/a (deleted)', '/dev/null', '/etc/passwd'].map(fdKind)).toEqual([
      'socket',
      'pipe',
      'memfd',
      'anon',
      'deleted',
      'dev',
      'file',
    ]);
  });

  it('names the container a cgroup path belongs to', async () => {
    const { containerFromCgroup } = await import('../../src/evidence/collectors/processes.js');
    const id = 'ab'.repeat(32);
    expect(containerFromCgroup(`/system.slice/docker-${id}.scope`)).toEqual({ id, runtime: 'docker' });
    expect(containerFromCgroup(`/docker/${id}`)).toEqual({ id, runtime: 'docker' });
    expect(containerFromCgroup(`/kubepods.slice/kubepods-besteffort.slice/kubepods-pod1.slice/cri-containerd-${id}.scope`)).toEqual({
      id,
      runtime: 'containerd',
    });
    expect(containerFromCgroup(`/machine.slice/libpod-${id}.scope/container`)).toEqual({ id, runtime: 'podman' });
    expect(containerFromCgroup('/lxc.payload.web1/init.scope')).toEqual({ id: 'web1', runtime: 'lxc' });
    expect(containerFromCgroup('/user.slice/user-0.slice/session-3.scope')).toBeNull();
  });

  it('finds mount points over /proc/N (and below it) in mountinfo', async () => {
    const { procMountsFrom } = await import('../../src/evidence/collectors/processes.js');
    const mi = [
      '22 1 0:21 / /proc rw,nosuid - proc proc rw',
      '42 22 254:0 /tmp/empty /proc/6735 rw,relatime - ext4 /dev/vda rw',
      '43 22 0:21 /700 /proc/701 rw - proc proc rw',
      '44 22 0:30 / /proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw',
      '45 22 0:5 /null /proc/702/cmdline rw - devtmpfs udev rw',
    ].join('\n');
    expect(procMountsFrom(mi, '/proc').map((m) => [m.pid, m.mount_point, m.root])).toEqual([
      [6735, '/proc/6735', '/tmp/empty'],
      [701, '/proc/701', '/700'],
      [702, '/proc/702/cmdline', '/null'],
    ]);
  });

  it('probes only what can have been allocated: up to the last pid + margin, or all of pid_max after a wrap', () => {
    const root = tmpDir('probe');
    for (const p of [1, 50, 900]) fs.mkdirSync(path.join(root, String(p)));
    fs.writeFileSync(path.join(root, '900', 'status'), 'Name:\thidden\nTgid:\t900\nPid:\t900\n');
    const noWrap = probeHiddenPids(root, new Set([1, 50]), { pidMax: 4194304, margin: 16, stopAt: Date.now() + 60_000, relist: () => [1, 50], lastPid: 60 });
    expect(noWrap).toMatchObject({ limit: 76, complete: true, probed_up_to: 76, last_pid: 60 });
    expect(noWrap.hidden).toEqual([]);
    // the children walk names 900: checked whatever the range
    const viaChildren = probeHiddenPids(root, new Set([1, 50]), {
      pidMax: 4194304,
      margin: 16,
      stopAt: Date.now() + 60_000,
      relist: () => [1, 50],
      lastPid: 60,
      extra: [900],
    });
    expect(viaChildren.hidden.map((h) => h.pid)).toEqual([900]);
    // wrapped: the last pid is below the highest listed one, so any pid may be in use
    const wrapped = probeHiddenPids(root, new Set([1, 50]), { pidMax: 2000, margin: 16, stopAt: Date.now() + 60_000, relist: () => [1, 50], lastPid: 10 });
    expect(wrapped).toMatchObject({ limit: 2000, complete: true });
    expect(wrapped.limit_reason).toMatch(/wrapped/);
    expect(wrapped.hidden.map((h) => h.pid)).toEqual([900]);
  });

  it('walks the process tree through the children files', async () => {
    const { walkChildren } = await import('../../src/evidence/collectors/processes.js');
    const root = tmpDir('children');
    const kids = (pid: number, tid: number, list: number[]): void => {
      fs.mkdirSync(path.join(root, String(pid), 'task', String(tid)), { recursive: true });
      fs.writeFileSync(path.join(root, String(pid), 'task', String(tid), 'children'), list.map((c) => `${c} `).join(''));
    };
    kids(1, 1, [10]);
    kids(1, 2, [20]);
    kids(20, 20, [30]);
    kids(30, 30, []);
    const r = walkChildren(root, [1], { stopAt: Date.now() + 10_000, maxPids: 100 });
    expect([...r.pids].sort((a, b) => a - b)).toEqual([10, 20, 30]);
    expect(r).toMatchObject({ complete: true, supported: true });
  });
});

describe('bracket read, then details matched by pid + start time', () => {
  it('flags a pid reused between the two reads and keeps what the bracket read of one that exited', async () => {
    const { readProcessBracket, completeProcess } = await import('../../src/evidence/collectors/processes.js');
    const { copyTree } = await import('./collect-helpers.js');
    const root = tmpDir('reuse');
    copyTree(PROC, root);
    const errors: CollectError[] = [];
    const b = readProcessBracket(root, 4242, 100, errors)!;
    expect(b.sockets.sort()).toEqual([2002, 2003, 2004, 4001]);
    const same = completeProcess(root, b, { btime: null, users, maxFds: 100 }, errors);
    expect(same.reused_after_bracket).toBeUndefined();
    expect(same.cmdline).toEqual(['/usr/sbin/sshd', '-D', '-o', 'Arg With Space']);
    // another process now has pid 4242: other start time
    const stat = path.join(root, '4242/stat');
    fs.writeFileSync(stat, fs.readFileSync(stat, 'utf8').replace(' 360000 ', ' 999999 '));
    const reused = completeProcess(root, b, { btime: null, users, maxFds: 100 }, errors);
    // the fd links were read between the two stat reads: either holder's, so none is kept
    expect(reused).toMatchObject({ reused_after_bracket: true, fds_unattributed: true, cmdline: [], fds: [], socket_inodes: [], starttime_ticks: 360000 });
    const bounded = completeProcess(root, readProcessBracket(root, 1, 100, errors)!, { btime: null, users, maxFds: 100, bracketOnly: true }, errors);
    expect(bounded).toMatchObject({ pid: 1, cmdline: [], exe: null, environ: null });
    expect(bounded.socket_inodes.length).toBeGreaterThan(0);
    fs.rmSync(path.join(root, '4242'), { recursive: true });
    const gone = completeProcess(root, b, { btime: null, users, maxFds: 100 }, errors);
    expect(gone).toMatchObject({ exited_after_bracket: true, name: 'evil) R 1 (x y', socket_inodes: b.sockets });
    expect(errors).toEqual([]);
  });
});

describe('fd links for the bracket (getdents64 + readlinkat, or fs)', () => {
  it('reads the same fds and targets both ways, on a live process and a copied tree, and bounds the count', async () => {
    const { readFdLinks, forceFdReader, fdReaderKind } = await import('../../src/evidence/collectors/fdlinks.js');
    // koffi is a dependency with a prebuilt binary for this platform: the fast path must load
    expect(fdReaderKind()).toBe('getdents64');
    const net = await import('node:net');
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const dir = tmpDir('fdlinks');
    // a name that is not UTF-8
    const held = fs.openSync(Buffer.from(path.join(dir, 'n\xff.t'), 'latin1'), 'w');
    try {
      const both = (d: string, max: number): Array<{ n: number; links: Array<[number, string]> }> =>
        (['node', null] as const).map((w) => {
          forceFdReader(w);
          const links: Array<[number, string]> = [];
          const n = readFdLinks(d, max, links);
          return { n, links: links.sort((a, b) => a[0] - b[0]) };
        });
      const [viaFs, viaNative] = both(`/proc/${process.pid}/fd`, 1 << 16);
      // the two reads are of a live process: compare the fds both saw
      const fsMap = new Map(viaFs!.links);
      const common = viaNative!.links.filter(([fd]) => fsMap.has(fd));
      expect(common.length).toBeGreaterThan(3);
      for (const [fd, target] of common) expect(target).toBe(fsMap.get(fd));
      expect(viaNative!.links.some(([, t]) => /^socket:\[\d+\]$/.test(t))).toBe(true);
      expect(viaNative!.links.some(([fd]) => fd === held)).toBe(true);
      expect(viaNative!.links.find(([fd]) => fd === held)![1]).toContain('\uFFFD');
      // a copied tree: symlinks in a plain folder
      const [a, b] = both(path.join(PROC, '4242/fd'), 1 << 16);
      expect(b).toEqual(a);
      expect(a!.links.length).toBeGreaterThan(2);
      const [c, d] = both(path.join(PROC, '4242/fd'), 2);
      expect(d!.n).toBe(a!.n);
      expect(c!.links.length).toBe(2);
      expect(d!.links.length).toBe(2);
      for (const w of ['node', null] as const) {
        forceFdReader(w);
        expect(() => readFdLinks(path.join(dir, 'absent'), 10, [])).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      }
    } finally {
      forceFdReader(null);
      fs.closeSync(held);
      server.close();
    }
  });
});

describe('fd folders held across the bracket', () => {
  it('a held /proc/PID/fd reads as gone once its process exits; warming rewinds it; the arena keeps long targets exactly', async () => {
    const { openFdDir, warmFdDir, closeFdDir, FdLinkArena } = await import('../../src/evidence/collectors/fdlinks.js');
    const { readFdsInto } = await import('../../src/evidence/collectors/processes.js');
    const { spawn } = await import('node:child_process');
    const child = spawn('sleep', ['30'], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise((r) => child.once('spawn', r));
    // 'spawn' can come before the exec is complete, while the child's descriptors still change
    // (the exec-status pipe): wait until it runs sleep, so its fd folder holds still
    for (let k = 0; k < 200 && !/sleep$/.test(fs.readlinkSync(`/proc/${child.pid}/exe`)); k++) await new Promise((r) => setTimeout(r, 5));
    const dir = `/proc/${child.pid}/fd`;
    // the exe link changes before exec closes the close-on-exec descriptors: wait until two listings
    // 20 ms apart agree (flaked once in CI under load: 4 fds read, then 5 listed)
    const listing = (): string => fs.readdirSync(dir).sort().join(',');
    for (let k = 0, prev = listing(); k < 100; k++) {
      await new Promise((r) => setTimeout(r, 20));
      const now = listing();
      if (now === prev) break;
      prev = now;
    }
    const held = openFdDir(dir);
    expect(held).not.toBeNull();
    try {
      expect(warmFdDir(held!, dir, 100)).toBe(true);
      const errors: CollectError[] = [];
      const arena = new FdLinkArena();
      // after warming, the held folder still lists every fd (it was rewound)
      const n = readFdsInto('/proc', child.pid!, 100, errors, arena, held);
      expect(n).toBe(fs.readdirSync(dir).length);
      expect(
        arena
          .take(0, arena.size)
          .fdLinks.map(([fd]) => fd)
          .sort(),
      ).toEqual(fs.readdirSync(dir).map(Number).sort());
      expect(warmFdDir(held!, dir, 100)).toBe(true);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      // reaped: the pid may be reused, the held folder still belongs to the dead process
      expect(readFdsInto('/proc', child.pid!, 100, errors, new FdLinkArena(), held)).toBeNull();
      expect(errors).toEqual([]);
    } finally {
      closeFdDir(held!);
      child.kill('SIGKILL');
    }

    const tree = tmpDir('arena');
    const fdDir = path.join(tree, '5/fd');
    fs.mkdirSync(fdDir, { recursive: true });
    fs.writeFileSync(path.join(tree, '5/stat'), '5 (x) S 1 5 5 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n');
    const targets = Array.from({ length: 120 }, (_, i) => (i % 3 === 0 ? `socket:[${1000 + i}]` : `/${String(i).padStart(3, '0')}${'y'.repeat(3000)}`));
    targets.forEach((t, i) => fs.symlinkSync(t, path.join(fdDir, String(i))));
    const arena = new FdLinkArena();
    expect(readFdsInto(tree, 5, 1000, [], arena)).toBe(120);
    const got = arena.take(0, arena.size);
    expect(new Map(got.fdLinks)).toEqual(new Map(targets.map((t, i) => [i, t])));
    expect(got.sockets.sort()).toEqual(
      targets
        .filter((t) => t.startsWith('socket'))
        .map((t) => Number(t.slice(8, -1)))
        .sort(),
    );
  });
});
