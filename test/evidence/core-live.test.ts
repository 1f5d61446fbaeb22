/**
 * Against the real /proc: a marker child process, a listening TCP server and a bound UDP
 * socket of this test process must all be found by the core step.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectCore, type CoreShared } from '../../src/evidence/collectors/core.js';
import { collectExecutables } from '../../src/evidence/collectors/executables.js';
import { readProcess } from '../../src/evidence/collectors/processes.js';
import type { CollectContext } from '../../src/evidence/types.js';
import { cleanupTmp, tmpDir } from './collect-helpers.js';

const linux = process.platform === 'linux';
const live = (): CollectContext => ({ procRoot: '/proc', sysRoot: '/sys', fsRoot: '/', signal: new AbortController().signal, deadline: Date.now() + 10_000 });

function started(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', reject);
  });
}

describe.skipIf(!linux)('core step on the live /proc', () => {
  const marker = `integ-marker-${crypto.randomUUID()}`;
  let child: ChildProcess;
  let server: net.Server;
  let udp: dgram.Socket;
  let tcpPort = 0;
  let udpPort = 0;

  beforeAll(async () => {
    child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', marker], { stdio: 'ignore' });
    await started(child);
    server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    tcpPort = (server.address() as net.AddressInfo).port;
    udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    udpPort = udp.address().port;
  });

  afterAll(async () => {
    child?.kill('SIGKILL');
    udp?.close();
    await new Promise((resolve) => server?.close(resolve));
    cleanupTmp();
  });

  it('bounds the environments kept in all, and says so', async () => {
    const out = await collectCore(live(), {}, { hiddenBudgetMs: 100, maxEnvironTotal: 1 });
    const procs = out.json.find((j) => j.name === 'processes')!.data as { processes: Array<{ environ: string[] | null; kernel_thread: boolean }> };
    const withEnv = procs.processes.filter((p) => p.environ !== null && p.environ.length > 0);
    expect(withEnv.length).toBe(1);
    expect(out.errors).toContainEqual(
      expect.objectContaining({ code: 'ELIMIT', artifact: 'processes', message: expect.stringMatching(/environments not read beyond 1 bytes/) }),
    );
  });

  it('finds the marker process with its cmdline, and our ports with our pid among the owners', async () => {
    const shared: Partial<CoreShared> = {};
    const out = await collectCore(live(), shared, { hiddenBudgetMs: 300 });
    const data = (n: string): any => out.json.find((j) => j.name === n)!.data;

    const procs = data('processes').processes as any[];
    const found = procs.find((p) => p.pid === child.pid);
    expect(found).toBeDefined();
    expect(found.cmdline).toEqual([process.execPath, '-e', 'setInterval(() => {}, 1000)', marker]);
    expect(found.exe).toBe(fs.realpathSync(process.execPath));
    expect(found.exe_deleted).toBe(false);
    expect(found.ppid).toBe(process.pid);
    expect(procs.find((p) => p.pid === process.pid)?.socket_inodes.length).toBeGreaterThanOrEqual(2);

    const listening = data('listening').listening as any[];
    const tcp = listening.find((l) => l.proto === 'tcp' && l.port === tcpPort && l.addr === '127.0.0.1');
    expect(tcp, `tcp 127.0.0.1:${tcpPort} listening`).toBeDefined();
    expect(tcp.owners.map((o: any) => o.pid)).toContain(process.pid);
    const u = listening.find((l) => l.proto === 'udp' && l.port === udpPort && l.addr === '127.0.0.1');
    expect(u, `udp 127.0.0.1:${udpPort} bound`).toBeDefined();
    expect(u.owners.map((o: any) => o.pid)).toContain(process.pid);

    const churn = data('core_churn');
    expect(churn.hidden_pids.hidden).toEqual([]);
    expect(churn.bracket_ms).toBeGreaterThanOrEqual(0); // how short: npm run bench -- --snapshot (target ≤ 100 ms)
    expect(shared.processes!.length).toBe(procs.length);
  });
});

/** A folder we may execute from: the temp folder, unless it is mounted noexec. */
async function execDir(bin: string): Promise<string> {
  for (const base of [os.tmpdir(), path.resolve('.')]) {
    const d = base === os.tmpdir() ? tmpDir('exec') : fs.mkdtempSync(path.join(base, '.integ-exec-'));
    const probe = path.join(d, 'probe');
    fs.copyFileSync(bin, probe);
    fs.chmodSync(probe, 0o755);
    const c = spawn(probe, ['0'], { stdio: 'ignore' });
    const ok = await new Promise<boolean>((resolve) => {
      c.once('exit', () => resolve(true));
      c.once('error', () => resolve(false));
    });
    fs.rmSync(probe);
    if (ok) return d;
    fs.rmSync(d, { recursive: true, force: true });
  }
  throw new Error('no folder to execute a test binary from');
}

const SLEEP = ['/usr/bin/sleep', '/bin/sleep'].find((p) => fs.existsSync(p));

describe.skipIf(!linux || !SLEEP)('deleted executables (live)', () => {
  const children: ChildProcess[] = [];
  let dir = '';
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
    if (dir && !dir.startsWith(os.tmpdir())) fs.rmSync(dir, { recursive: true, force: true });
    cleanupTmp();
  });

  it('decides "deleted" by nlink, not by the " (deleted)" suffix, and still hashes the deleted binary', async () => {
    dir = await execDir(SLEEP!);
    const victim = path.join(dir, 'victim');
    const faker = path.join(dir, 'faker (deleted)');
    fs.copyFileSync(SLEEP!, victim);
    fs.copyFileSync(SLEEP!, faker);
    fs.chmodSync(victim, 0o755);
    fs.chmodSync(faker, 0o755);
    const a = spawn(victim, ['60'], { stdio: 'ignore' });
    const b = spawn(faker, ['60'], { stdio: 'ignore' });
    children.push(a, b);
    await Promise.all([started(a), started(b)]);
    fs.unlinkSync(victim);

    const opts = { btime: null, users: new Map<number, string>(), maxFds: 100 };
    const pa = readProcess('/proc', a.pid!, opts, [])!;
    const pb = readProcess('/proc', b.pid!, opts, [])!;
    expect(pa.exe_link).toBe(`${victim} (deleted)`);
    expect(pa.exe_deleted).toBe(true);
    expect(pa.exe).toBe(victim);
    expect(pb.exe_link).toBe(faker);
    expect(pb.exe_deleted).toBe(false);
    expect(pb.exe).toBe(faker);

    const out = await collectExecutables(live(), [pa, pb]);
    const exes = (out.json[0]!.data as any).executables as any[];
    const want = crypto.createHash('sha256').update(fs.readFileSync(SLEEP!)).digest('hex');
    expect(exes.find((e) => e.pids.includes(a.pid))).toMatchObject({ deleted: true, path: victim, sha256: want });
    expect(exes.find((e) => e.pids.includes(b.pid))).toMatchObject({ deleted: false, path: faker, sha256: want });
  });
});
