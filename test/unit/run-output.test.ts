import { afterEach, describe, expect, it, vi } from 'vitest';
import { emitFailure, setRunOutput } from '../../src/output/run-output.js';
import { formatRfc5424, octetFrame, parseSyslogTarget, sdEscape } from '../../src/output/syslog.js';
import { ecsAction } from '../../src/report/ecs.js';
import { CantCreateError, IoError } from '../../src/util/errors.js';

describe('failure events', () => {
  const out: string[] = [];
  afterEach(() => {
    vi.restoreAllMocks();
    out.length = 0;
  });
  it('73 and 74 (cannot create / I/O error) write one ndjson line or one ECS event, like every failure', async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    for (const [err, code] of [
      [new CantCreateError('cannot create /x'), 73],
      [new IoError('no space left on device'), 74],
    ] as const) {
      setRunOutput({ command: 'check', format: 'ndjson', syslog: null, env: {} });
      await emitFailure(err, code);
      setRunOutput({ command: 'check', format: 'ecs', syslog: null, env: {} });
      await emitFailure(err, code);
    }
    expect(out).toHaveLength(4);
    const lines = out.map((l) => JSON.parse(l));
    expect(out.every((l) => l.endsWith('\n') && l.trimEnd().split('\n').length === 1)).toBe(true);
    expect(lines[0]).toMatchObject({ type: 'failure', exit_code: 73, error: { type: 'CantCreateError', message: 'cannot create /x' } });
    expect(lines[1]).toMatchObject({ event: { outcome: 'failure' }, error: { message: 'cannot create /x', code: '73' }, integ: { exit_code: 73 } });
    expect(lines[2]).toMatchObject({ type: 'failure', exit_code: 74 });
    expect(lines[3]).toMatchObject({ integ: { exit_code: 74 } });
    // the text report gets nothing extra on stdout (stderr has the message)
    setRunOutput({ command: 'check', format: 'text', syslog: null, env: {} });
    await emitFailure(new IoError('x'), 74);
    expect(out).toHaveLength(4);
  });
});

describe('RFC 5424', () => {
  it('escapes ", \\ and ] in structured-data values and frames TCP by octet count (bytes, not characters)', () => {
    expect(sdEscape('a"b\\c]d')).toBe('a\\"b\\\\c\\]d');
    const line = formatRfc5424(
      { severity: 'err', msgid: 'finding', params: [['path', '/etc/ä"]']], text: 'CHANGED /etc/ä' },
      { facility: 3, hostname: 'web1', time: new Date('2026-12-01T00:00:00Z'), pid: 42 },
    );
    expect(line).toBe('<27>1 2026-12-01T00:00:00.000Z web1 integ 42 finding [integ@32473 path="/etc/ä\\"\\]"] CHANGED /etc/ä');
    const framed = octetFrame(line);
    const sp = framed.indexOf(0x20);
    expect(Number(framed.subarray(0, sp).toString())).toBe(Buffer.byteLength(line));
  });
  it('parses targets; anything else is a usage error', () => {
    expect(parseSyslogTarget('unix:/dev/log')).toEqual({ kind: 'unix', path: '/dev/log' });
    expect(parseSyslogTarget('udp://127.0.0.1:514')).toEqual({ kind: 'udp', host: '127.0.0.1', port: 514 });
    expect(parseSyslogTarget('tcp://[::1]:601')).toEqual({ kind: 'tcp', host: '::1', port: 601 });
    for (const bad of ['unix:dev/log', 'udp://h', 'tcp://h:0', 'tcp://h:70000', 'http://h:1']) expect(() => parseSyslogTarget(bad)).toThrow(/--syslog/);
  });
});

describe('ECS event.action as Auditbeat file_integrity', () => {
  it('created, deleted, updated for data, attributes_modified for metadata only', () => {
    expect(ecsAction({ kind: 'added', attributes: [] })).toBe('created');
    expect(ecsAction({ kind: 'removed', attributes: [] })).toBe('deleted');
    expect(ecsAction({ kind: 'changed', attributes: ['content', 'mtime'] })).toBe('updated');
    expect(ecsAction({ kind: 'changed', attributes: ['target'] })).toBe('updated');
    expect(ecsAction({ kind: 'changed', attributes: ['mode', 'uid', 'ctime'] })).toBe('attributes_modified');
  });
});

describe('ECS events are typed with @elastic/ecs', () => {
  it('the compiler rejects a misspelt ECS field in an integ event', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const { spawnSync } = await import('node:child_process');
    const { REPO, tmpdir } = await import('../helpers/cli.js');
    const dir = tmpdir();
    const file = path.join(dir, 'probe.ts');
    const src = (field: string) =>
      `import type { IntegEcsEvent } from '${path.join(REPO, 'src/report/ecs.js')}';\n` +
      `export const e: IntegEcsEvent = { '@timestamp': 'x', ecs: { version: '9.4.0' }, file: { ${field}: '/etc/passwd' }, integ: { command: 'check' } };\n`;
    const tsc = path.join(REPO, 'node_modules/typescript/bin/tsc');
    const compile = () =>
      spawnSync(
        process.execPath,
        [
          tsc,
          '--noEmit',
          '--strict',
          '--skipLibCheck',
          '--module',
          'nodenext',
          '--moduleResolution',
          'nodenext',
          '--types',
          'node',
          '--typeRoots',
          path.join(REPO, 'node_modules/@types'),
          file,
        ],
        { encoding: 'utf8', cwd: REPO },
      );
    // The correct spelling compiles as part of the project's own build (src/report/ecs.ts); one probe with a typo here.
    expect(src('path')).toContain("file: { path: '/etc/passwd' }");
    fs.writeFileSync(file, src('pathh'));
    const bad = compile();
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toMatch(/'pathh' does not exist in type 'EcsFile'/);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 120_000);
});

describe('--syslog target resolution', () => {
  it('--syslog alone is unix:/dev/log; a value wins over $INTEG_SYSLOG (the configuration); none means no syslog', async () => {
    const { resolveSyslog } = await import('../../src/output/run-output.js');
    expect(resolveSyslog(true, {})).toBe('unix:/dev/log');
    expect(resolveSyslog('udp://127.0.0.1:514', { INTEG_SYSLOG: 'tcp://h:1' })).toBe('udp://127.0.0.1:514');
    expect(resolveSyslog(undefined, { INTEG_SYSLOG: 'tcp://h:1' })).toBe('tcp://h:1');
    expect(resolveSyslog(undefined, {})).toBeNull();
    expect(() => resolveSyslog(undefined, { INTEG_SYSLOG: 'nope' })).toThrow(/expected unix:\/dev\/log/);
  });
});
