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
