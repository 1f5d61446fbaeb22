import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collectCore, type CoreShared } from '../../src/evidence/collectors/core.js';
import { cleanupTmp, copyTree, ctxFor, PROC, tmpDir } from './collect-helpers.js';

afterAll(cleanupTmp);

const quick = { hiddenMargin: 64, hiddenBudgetMs: 200 };
const art = (out: Awaited<ReturnType<typeof collectCore>>, name: string): any => out.json.find((j) => j.name === name)!.data;

describe('core bracket on the fake /proc', () => {
  it('produces its five artifacts in order, with raw copies of both reads', async () => {
    const out = await collectCore(ctxFor(), {}, quick);
    expect(out.json.map((j) => j.name)).toEqual(['processes', 'sockets', 'listening', 'unix_sockets', 'core_churn']);
    expect(out.errors).toEqual([]);
    const files = out.raw.map((r) => r.file);
    for (const f of ['tcp', 'tcp6', 'udp', 'udp6', 'raw', 'raw6', 'unix', 'packet']) {
      expect(files).toContain(`proc/net/first/${f}`);
      expect(files).toContain(`proc/net/second/${f}`);
    }
    // The container's namespace is read through one of its pids.
    expect(files).toContain('proc/777/net/first/tcp');
    expect(files).toContain('proc/777/net/second/tcp');
    expect(out.raw.find((r) => r.file === 'proc/net/first/tcp')!.data.equals(fs.readFileSync(path.join(PROC, 'net/tcp')))).toBe(true);
  });

  it('lists every process and shares them with later steps', async () => {
    const shared: Partial<CoreShared> = {};
    const out = await collectCore(ctxFor(), shared, quick);
    const procs = art(out, 'processes');
    expect(procs.processes.map((p: any) => p.pid)).toEqual([1, 2, 777, 4242]);
    expect(shared.processes).toHaveLength(4);
    expect(procs.processes.find((p: any) => p.pid === 777)).toMatchObject({
      user: 'alice',
      netns: 4026532999,
      cmdline: ['python3', '-m', 'http.server', '8080'],
    });
  });

  it('maps each socket inode to the LIST of its owners, across network namespaces', async () => {
    const out = await collectCore(ctxFor(), {}, quick);
    const sockets = art(out, 'sockets');
    expect(sockets.namespaces.map((n: any) => [n.netns, n.own])).toEqual([
      [4026531840, true],
      [4026532999, false],
    ]);
    const dns = sockets.sockets.find((s: any) => s.inode === 2003);
    expect(dns).toMatchObject({ proto: 'udp', local: { addr: '0.0.0.0', port: 53 }, pids: [1, 4242], seen: 'both' });
    const tw = sockets.sockets.filter((s: any) => s.state === 'TIME_WAIT');
    expect(tw).toHaveLength(2);
    expect(tw.every((s: any) => s.inode === 0 && s.pids.length === 0)).toBe(true);
    expect(sockets.packet).toEqual([expect.objectContaining({ inode: 4001, protocol: '0x0003', pids: [4242] })]);

    const listening = art(out, 'listening').listening;
    const key = (l: any): string => `${l.proto} ${l.addr} ${l.port} ${l.owners.map((o: any) => o.pid).join(',')}`;
    expect(listening.map(key)).toEqual([
      'tcp6 :: 22 4242',
      'udp 0.0.0.0 53 1,4242',
      'tcp6 2001:db8::1:0:0:1 80 ',
      'tcp 127.0.0.1 3306 ',
      'tcp 0.0.0.0 8000 ',
      'tcp 0.0.0.0 8080 777',
    ]);
    expect(listening.find((l: any) => l.port === 8080)).toMatchObject({
      netns: 4026532999,
      owners: [{ pid: 777, exe: '../../fsroot/usr/bin/fake-sshd', user: 'alice' }],
    });
    // the connected UDP client socket is not a listening port
    expect(listening.find((l: any) => l.port === 40000)).toBeUndefined();

    const unix = art(out, 'unix_sockets').unix_sockets;
    expect(unix.find((u: any) => u.inode === 3001)).toMatchObject({ path: '/run/my socket.sock', listening: true, pids: [1] });
  });

  it('reports unowned sockets and no churn when nothing changed', async () => {
    const churn = art(await collectCore(ctxFor(), {}, quick), 'core_churn');
    expect(churn.appeared).toEqual([]);
    expect(churn.disappeared).toEqual([]);
    expect(churn.unowned.map((s: any) => s.local).sort()).toEqual(
      ['0.0.0.0:1', '0.0.0.0:8000', '10.0.2.15:40000', '127.0.0.1:3306', '[2001:db8::1:0:0:1]:80', '[::ffff:127.0.0.1]:8080'].sort(),
    );
    expect(churn.walk_complete).toBe(true);
    expect(churn.processes_listed).toBe(4);
    expect(churn.hidden_pids).toMatchObject({ hidden: [], complete: true, limit: 4242 + 64 });
    expect(typeof churn.bracket_ms).toBe('number');
  });

  it('records sockets that appeared or disappeared between the two reads', async () => {
    const root = tmpDir('churn');
    copyTree(PROC, root);
    const tcp = path.join(root, 'net/tcp');
    const lines = fs.readFileSync(tcp, 'utf8').split('\n');
    const out = await collectCore(
      ctxFor({ procRoot: root }),
      {},
      {
        ...quick,
        onBetweenReads: () => {
          // drop the 3306 listener, add a new one on 4444
          const kept = lines.filter((l) => l !== '' && !l.includes(':0CEA '));
          kept.push('   9: 00000000:115C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7777 1 0000000000000000 100 0 0 10 0');
          fs.writeFileSync(tcp, `${kept.join('\n')}\n`);
        },
      },
    );
    const churn = art(out, 'core_churn');
    expect(churn.appeared).toEqual([expect.objectContaining({ proto: 'tcp', local: '0.0.0.0:4444', state: 'LISTEN', inode: 7777 })]);
    expect(churn.disappeared).toEqual([expect.objectContaining({ proto: 'tcp', local: '127.0.0.1:3306', inode: 1001 })]);
    const sockets = art(out, 'sockets').sockets;
    expect(sockets.find((s: any) => s.inode === 1001).seen).toBe('first');
    expect(sockets.find((s: any) => s.inode === 7777).seen).toBe('second');
    // a listener that is gone is not reported as listening
    expect(art(out, 'listening').listening.map((l: any) => l.port)).toContain(4444);
    expect(art(out, 'listening').listening.map((l: any) => l.port)).not.toContain(3306);
  });

  it("a pid that changes hands during the bracket loses its fd links (they could be either holder's)", async () => {
    const root = tmpDir('reuse');
    copyTree(PROC, root);
    const stat = path.join(root, '777/stat');
    const before = fs.readFileSync(stat, 'utf8');
    const start = before.slice(before.lastIndexOf(')') + 2).split(' ')[19]!;
    const out = await collectCore(
      ctxFor({ procRoot: root }),
      {},
      {
        ...quick,
        // the fd links are read by now; the stat read before the bracket had the old start time
        onBetweenReads: () => fs.writeFileSync(stat, before.replace(` ${start} `, ` ${Number(start) + 12345} `)),
      },
    );
    expect(fs.readFileSync(stat, 'utf8')).not.toBe(before);
    const p = art(out, 'processes').processes.find((x: any) => x.pid === 777);
    expect(p).toMatchObject({ reused_after_bracket: true, fds_unattributed: true, socket_inodes: [], starttime_ticks: Number(start) });
    expect(art(out, 'listening').listening.find((l: any) => l.port === 8080).owners).toEqual([]);
  });

  it('finds a pid hidden from the listing, reads it, and credits it with its sockets', async () => {
    const out = await collectCore(ctxFor(), {}, { ...quick, hiddenMargin: 8192, listPids: () => [1, 2, 777] });
    const churn = art(out, 'core_churn');
    expect(churn.hidden_pids.hidden).toEqual([
      expect.objectContaining({ pid: 4242, name: 'evil) R 1 (x y', cmdline: ['/usr/sbin/sshd', '-D', '-o', 'Arg With Space'] }),
    ]);
    const p = art(out, 'processes').processes.find((x: any) => x.pid === 4242);
    expect(p).toMatchObject({ hidden_from_listing: true, exe: '../../fsroot/usr/bin/fake-sshd' });
    expect(
      art(out, 'listening')
        .listening.find((l: any) => l.port === 22)
        .owners.map((o: any) => o.pid),
    ).toEqual([4242]);
  });

  it('stops the walk at the deadline, still closes the bracket, and says so', async () => {
    const out = await collectCore(ctxFor({ deadline: Date.now() - 1 }), {}, quick);
    expect(out.errors.filter((e) => e.code === 'TIMEOUT').length).toBeGreaterThan(0);
    const churn = art(out, 'core_churn');
    expect(churn.walk_complete).toBe(false);
    expect(out.raw.map((r) => r.file)).toContain('proc/net/second/tcp');
  });

  it('records a permission error for a part of a process and keeps the rest', async () => {
    if (process.geteuid?.() === 0) {
      // root reads mode-000 files anyway; simulate with a dangling fd directory instead
      const root = tmpDir('perm');
      copyTree(PROC, root);
      fs.rmSync(path.join(root, '4242/fd'), { recursive: true });
      fs.writeFileSync(path.join(root, '4242/fd'), 'not a directory');
      const out = await collectCore(ctxFor({ procRoot: root }), {}, quick);
      expect(out.errors).toEqual([expect.objectContaining({ code: 'ENOTDIR', path: `${root}/4242/fd`, artifact: 'processes' })]);
      expect(art(out, 'processes').processes.find((p: any) => p.pid === 4242)).toMatchObject({
        fd_count: -1,
        cmdline: ['/usr/sbin/sshd', '-D', '-o', 'Arg With Space'],
      });
      return;
    }
    const root = tmpDir('perm');
    copyTree(PROC, root);
    fs.chmodSync(path.join(root, '4242/fd'), 0);
    const out = await collectCore(ctxFor({ procRoot: root }), {}, quick);
    fs.chmodSync(path.join(root, '4242/fd'), 0o755);
    expect(out.errors).toEqual([expect.objectContaining({ code: 'EACCES', path: `${root}/4242/fd` })]);
    expect(art(out, 'processes').processes.find((p: any) => p.pid === 4242)).toMatchObject({ fd_count: -1 });
  });
});
