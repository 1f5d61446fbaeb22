import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { collectAll } from '../../src/evidence/collect.js';
import type { CollectorStep } from '../../src/evidence/collectors/index.js';
import { InterruptedError, UsageError } from '../../src/util/errors.js';
import { FSROOT, MemSink, PROC, SYS } from './collect-helpers.js';

const fixtureCtx = { procRoot: PROC, sysRoot: SYS, fsRoot: FSROOT };
const run = (sink: MemSink, extra: Partial<Parameters<typeof collectAll>[1]> = {}): ReturnType<typeof collectAll> =>
  collectAll(sink, { ctx: fixtureCtx, signal: new AbortController().signal, argv: ['node', 'integ', 'snapshot'], ...extra });

describe('collectAll on the fake host', () => {
  it('writes every artifact in collection order and lists it with size and sha256', async () => {
    const sink = new MemSink();
    const r = await run(sink);
    const names = r.artifacts.filter((a) => !a.name.startsWith('raw/')).map((a) => a.name);
    expect(names).toEqual([
      'system',
      'processes',
      'sockets',
      'listening',
      'unix_sockets',
      'core_churn',
      'sessions',
      'logins',
      'modules',
      'kernel',
      'mounts',
      'ld_so_preload',
      'routes',
      'neighbours',
      'interfaces',
      'executables',
      'config',
      'findings',
      'maps',
      'accounts',
      'persistence',
      'firewall',
    ]);
    for (const a of r.artifacts) {
      const buf = sink.files.get(a.file)!;
      expect(buf, a.file).toBeDefined();
      expect(a.size).toBe(buf.length);
      expect(a.sha256).toBe(crypto.createHash('sha256').update(buf).digest('hex'));
      expect(a.method.length).toBeGreaterThan(5);
      expect(Date.parse(a.finished_at)).toBeGreaterThanOrEqual(Date.parse(a.started_at));
    }
    // the manifest order is the order of the files written
    expect(r.artifacts.map((a) => a.file)).toEqual(sink.order);
    expect(sink.order).toContain('raw/proc/net/first/tcp');
    expect(sink.order).toContain('raw/config/etc/hosts');
    expect(r.artifacts.find((a) => a.name === 'processes')!.status).toBe('ok');
    expect(sink.json('system')).toMatchObject({
      hostname: 'fixture-host',
      boot_id: '6e2e1c7a-3f3b-4a8e-9d55-2b8f4f1d0c11',
      boot_time_s: 1763766000,
      integ: { pid: process.pid, argv: ['node', 'integ', 'snapshot'] },
      kernel: { release: '6.8.0-49-generic' },
      rtc: { readable: true, since_epoch_s: 1763769600 },
    });
    expect(typeof sink.json('system').monotonic_ns).toBe('string');
  });

  it('logs the start and end of each step in order and times them', async () => {
    const sink = new MemSink();
    const r = await run(sink);
    expect(r.steps.map((s) => [s.step, s.name, s.status])).toEqual([
      ['1', 'preflight', 'ok'],
      ['2', 'core', 'ok'],
      ['3', 'sessions', 'ok'],
      ['4', 'kernel', 'ok'],
      ['5', 'executables', 'ok'],
      ['6', 'config', 'ok'],
      ['7', 'findings', 'ok'],
      ['8', 'persistence', 'ok'],
    ]);
    expect(sink.logs.map((l) => `${l['event']}:${l['name']}`)).toEqual(
      ['preflight', 'core', 'sessions', 'kernel', 'executables', 'config', 'findings', 'persistence'].flatMap((n) => [`step_start:${n}`, `step_end:${n}`]),
    );
    expect(sink.logs[3]).toMatchObject({
      event: 'step_end',
      name: 'core',
      status: 'ok',
      artifacts: ['processes', 'sockets', 'listening', 'unix_sockets', 'core_churn'],
    });
    expect(r.timings.core_bracket_ms).toBeGreaterThan(0);
    expect(r.timings.steps_1_4_ms).toBeGreaterThanOrEqual(r.timings.core_bracket_ms);
    expect(r.timings.total_ms).toBeGreaterThanOrEqual(r.timings.steps_1_4_ms);
  });

  it('runs only the steps asked for, by step or artifact name', async () => {
    const sink = new MemSink();
    const r = await run(sink, { only: ['sessions', 'listening'] });
    expect(r.steps.map((s) => s.name)).toEqual(['core', 'sessions']);
    await expect(run(new MemSink(), { only: ['nope'] })).rejects.toThrow(UsageError);
  });

  it('marks a step that hits its time bound as timeout, keeping what it has', async () => {
    const sink = new MemSink();
    const r = await run(sink, { stepTimeoutMs: 0, only: ['core'] });
    expect(r.steps[0]!.status).toBe('timeout');
    expect(r.artifacts.find((a) => a.name === 'processes')!.status).toBe('timeout');
    expect(sink.files.has('artifacts/sockets.json')).toBe(true);
  });

  it('abandons a step that does not return, and records a failing one, then carries on', async () => {
    const hang: CollectorStep = { step: '1', name: 'hang', method: 'never returns', artifacts: ['a1'], timeoutMs: 50, run: () => new Promise(() => undefined) };
    const boom: CollectorStep = {
      step: '2',
      name: 'boom',
      method: 'throws',
      artifacts: ['a2'],
      timeoutMs: 1000,
      run: async () => Promise.reject(new Error('kaput')),
    };
    const fine: CollectorStep = {
      step: '3',
      name: 'fine',
      method: 'works',
      artifacts: ['a3'],
      timeoutMs: 1000,
      run: async () => ({
        json: [{ name: 'a3', data: { ok: 1 } }],
        raw: [{ file: 'x/y\nz', data: Buffer.from('r') }],
        errors: [{ code: 'EACCES', path: '/p', message: 'permission denied' }],
      }),
    };
    const sink = new MemSink();
    const r = await collectAll(sink, { signal: new AbortController().signal, argv: [], steps: [hang, boom, fine] });
    expect(r.steps.map((s) => [s.name, s.status])).toEqual([
      ['hang', 'timeout'],
      ['boom', 'failed'],
      ['fine', 'partial'],
    ]);
    expect(r.steps[1]!.error).toBe('kaput');
    expect(sink.json('a1')).toMatchObject({ status: 'timeout' });
    expect(r.artifacts.map((a) => [a.name, a.status])).toEqual([
      ['a1', 'timeout'],
      ['a2', 'failed'],
      ['a3', 'partial'],
      ['raw/x/y%0Az', 'ok'],
    ]);
    expect(r.artifacts[2]!.error).toMatch(/EACCES \/p: permission denied/);
  });

  it('throws InterruptedError when the run is aborted', async () => {
    const ac = new AbortController();
    ac.abort(new InterruptedError('interrupted by SIGINT'));
    await expect(run(new MemSink(), { signal: ac.signal })).rejects.toThrow(InterruptedError);
  });

  it('refuses to run off Linux with a usage error', async () => {
    const desc = Object.getOwnPropertyDescriptor(process, 'platform')!;
    Object.defineProperty(process, 'platform', { value: 'darwin' });
    try {
      await expect(run(new MemSink())).rejects.toThrow(UsageError);
      await expect(run(new MemSink())).rejects.toThrow(/Linux only/);
    } finally {
      Object.defineProperty(process, 'platform', desc);
    }
  });
});

describe('collectAll: the IOC matcher hook', () => {
  it('turns a running executable whose sha256 the matcher knows into an ioc_match finding, in findings.json and the result', async () => {
    const plain = new MemSink();
    await run(plain);
    const exes = plain.json<{ executables: Array<{ sha256: string | null; pids: number[]; path: string }> }>('executables').executables.filter((e) => e.sha256);
    expect(exes.length).toBeGreaterThan(0);
    const target = exes[0]!;
    expect(plain.json<{ findings: Array<{ kind: string }>; ioc_checked: boolean }>('findings')).toMatchObject({ ioc_checked: false });
    const seen: string[] = [];
    const sink = new MemSink();
    const r = await run(sink, {
      iocMatch: ({ sha256 }) => (seen.push(sha256), sha256 === target.sha256 ? { label: 'fixture-bad', source: 'test-feed' } : undefined),
    });
    expect(seen).toContain(target.sha256);
    const f = sink.json<{ ioc_checked: boolean; findings: Array<{ kind: string; pid?: number; detail: string }> }>('findings');
    expect(f.ioc_checked).toBe(true);
    const hits = f.findings.filter((x) => x.kind === 'ioc_match');
    expect(hits.map((h) => h.pid)).toEqual(target.pids);
    expect(hits[0]!.detail).toBe(`sha256 ${target.sha256} is known bad: fixture-bad (test-feed)`);
    expect(r.findings?.findings.filter((x) => x.kind === 'ioc_match')).toHaveLength(target.pids.length);
  });
});
