import { describe, expect, it } from 'vitest';
import { deriveFindings, type IocMatcher } from '../../src/evidence/findings.js';
import { suspiciousMaps } from '../../src/evidence/collectors/maps.js';

const proc = (pid: number, over: Record<string, unknown> = {}): Record<string, unknown> => ({
  pid,
  name: 'x',
  exe: `/usr/bin/p${pid}`,
  exe_link: `/usr/bin/p${pid}`,
  exe_deleted: false,
  environ: [],
  ...over,
});

function arts(parts: Record<string, unknown>): Map<string, unknown> {
  return new Map(Object.entries({ system: { integ: { pid: 9999, euid: 0 } }, ...parts }));
}

describe('deriveFindings', () => {
  it('derives every kind from the artifacts, most severe first', () => {
    const a = arts({
      processes: {
        processes: [
          proc(10, { exe: '/tmp/x', exe_link: '/tmp/x' }),
          proc(11, { exe: '/usr/sbin/old', exe_link: '/usr/sbin/old (deleted)', exe_deleted: true }),
          proc(12, { exe: '/memfd:payload (deleted)', exe_link: '/memfd:payload (deleted)', exe_deleted: true }),
          proc(13, { environ: ['HOME=/root', 'LD_PRELOAD=/lib/evil.so'] }),
          proc(14, { identity_mismatch: { stat_pid: 10, status_pid: 10, tgid: 10 } }),
          proc(9999, { exe: '/tmp/integ' }),
        ],
      },
      core_churn: {
        hidden_pids: {
          hidden: [{ pid: 77, found_via_tid: null, name: 'rk', cmdline: ['rk', '-d'], exe: '/usr/bin/rk' }],
          complete: false,
          probed_up_to: 5000,
          limit: 4194304,
          limit_reason: 'wrapped',
        },
        children_walk: { supported: true },
        proc_mounts: [{ pid: 55, mount_point: '/proc/55', root: '/empty', fs_type: 'tmpfs', source: 'tmpfs' }],
        proc_dev_mismatch: [{ pid: 55, dev: 40, proc_dev: 22 }],
      },
      ld_so_preload: { present: true, path: '/etc/ld.so.preload', entries: ['/lib/libhide.so'] },
      listening: {
        listening: [
          { proto: 'tcp', addr: '0.0.0.0', port: 31337, netns: 1, inode: 555, uid: 0, owners: [] },
          { proto: 'tcp', addr: '::', port: 22, netns: 1, inode: 556, uid: 0, owners: [{ pid: 1 }] },
        ],
      },
      modules: { only_in_proc_modules: [], only_in_sys_module: ['diamorphine'] },
      executables: {
        executables: [
          { pids: [11], path: '/usr/sbin/old', sha256: 'ab'.repeat(32) },
          { pids: [10], path: '/tmp/x', sha256: 'cd'.repeat(32) },
        ],
      },
    });
    const bad: IocMatcher = ({ sha256 }) => (sha256 === 'ab'.repeat(32) ? { label: 'test-trojan', source: 'feed.txt' } : undefined);
    const { findings, notes } = deriveFindings(a, { iocMatch: bad });
    const got = findings.map((f) => `${f.severity} ${f.kind} ${f.pid ?? f.path}`);
    expect(got).toEqual([
      'critical hidden_process 14',
      'critical hidden_process 55',
      'critical hidden_process 77',
      'critical masquerade 14',
      'critical ioc_match 11',
      'critical memfd_executable 12',
      'critical module_mismatch diamorphine',
      'critical preload /etc/ld.so.preload',
      'high preload 13',
      'high deleted_executable 11',
      'high executable_in_tmp 10',
      'high unowned_listener tcp 0.0.0.0:31337',
    ]);
    expect(findings.find((f) => f.kind === 'hidden_process' && f.pid === 55)!.detail).toMatch(/mount point.*; \/proc\/55 is on device 40/);
    expect(findings.find((f) => f.kind === 'ioc_match')!.detail).toContain('test-trojan (feed.txt)');
    expect(findings.find((f) => f.kind === 'masquerade')!.detail).toContain('reports pid 10');
    expect(notes.join('\n')).toMatch(/hidden-pid probe incomplete: stat\(\)ed pids 1\.\.5000 of 4194304/);
  });

  it('no matcher, no ioc_match; integ itself and a clean host give nothing', () => {
    const a = arts({
      processes: { processes: [proc(1), proc(9999, { exe: '/tmp/integ', exe_link: '/tmp/integ' })] },
      core_churn: { hidden_pids: { hidden: [], complete: true }, proc_mounts: [], proc_dev_mismatch: [] },
      executables: { executables: [{ pids: [1], path: '/usr/bin/p1', sha256: 'ab'.repeat(32) }] },
    });
    expect(deriveFindings(a)).toEqual({ findings: [], notes: [] });
  });

  it('unowned listeners are low severity without root (owners are unreadable then)', () => {
    const a = new Map<string, unknown>([
      ['system', { integ: { pid: 1, euid: 1000 } }],
      ['listening', { listening: [{ proto: 'udp', addr: '0.0.0.0', port: 53, inode: 5, owners: [] }] }],
    ]);
    const r = deriveFindings(a);
    expect(r.findings).toEqual([expect.objectContaining({ kind: 'unowned_listener', severity: 'low' })]);
    expect(r.notes.join(' ')).toMatch(/not run as root/);
  });
});

describe('suspiciousMaps', () => {
  it('keeps deleted, memfd and anonymous executable mappings, not ordinary ones', () => {
    const text = [
      '55d0-55d1 r-xp 00000000 fd:00 123 /usr/bin/sleep',
      '7f00-7f01 r-xp 00000000 00:01 9 /memfd:x (deleted)',
      '7f02-7f03 rwxp 00000000 00:00 0 ',
      '7f04-7f05 r-xp 00000000 fd:00 77 /tmp/gone (deleted)',
      '7ffd-7ffe r-xp 00000000 00:00 0 [vdso]',
    ].join('\n');
    expect(suspiciousMaps(text)).toEqual([text.split('\n')[1], text.split('\n')[2], text.split('\n')[3]]);
  });
});
