import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integ, tmpdir } from '../helpers/cli.js';
import { RSYSLOGD, startRsyslog, type Rsyslog } from '../helpers/rsyslog.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A tree baselined with blake3+sha256, then: one file edited, one chmod'ed, one removed, one added. */
function scenario(): { dir: string; tree: string; db: string; policy: string; args: string[] } {
  const dir = tmpdir();
  dirs.push(dir);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  for (const n of ['edit', 'chmod', 'gone']) fs.writeFileSync(path.join(tree, n), `${n}\n`);
  const policy = path.join(dir, 'policy.yml');
  fs.writeFileSync(policy, `version: 1\nhash: [blake3, sha256]\nrules:\n  - name: tree\n    severity: high\n    paths: ["${tree}/**"]\n`);
  const db = path.join(dir, 's.db');
  expect(integ(['baseline', '--db', db, '--policy', policy]).code).toBe(0);
  fs.appendFileSync(path.join(tree, 'edit'), 'tampered\n');
  fs.chmodSync(path.join(tree, 'chmod'), 0o600);
  fs.rmSync(path.join(tree, 'gone'));
  fs.writeFileSync(path.join(tree, 'new'), 'new\n');
  return { dir, tree, db, policy, args: ['check', '--db', db, '--policy', policy, '--no-snapshot'] };
}

const parseLines = (s: string): Record<string, any>[] =>
  s
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));

describe('check --format ndjson', () => {
  it('one compact object per line: each finding, then a summary', () => {
    const s = scenario();
    const r = integ([...s.args, '--format', 'ndjson']);
    expect(r.code).toBe(7);
    expect(
      r.stdout
        .split('\n')
        .filter(Boolean)
        .every((l) => !l.includes('\n') && l.startsWith('{"')),
    ).toBe(true);
    const lines = parseLines(r.stdout);
    expect(lines.map((l) => l.type)).toEqual(['finding', 'finding', 'finding', 'finding', 'summary']);
    const byPath = Object.fromEntries(lines.filter((l) => l.type === 'finding').map((l) => [path.basename(l.path), l]));
    expect(byPath.edit).toMatchObject({ kind: 'changed', rule: 'tree', severity: 'high', schema: 'integ.event/1' });
    expect(byPath.edit!.attributes).toContain('content');
    expect(byPath.gone!.kind).toBe('removed');
    expect(byPath.new!.kind).toBe('added');
    const sum = lines.at(-1)!;
    expect(sum.summary).toMatchObject({ added: 1, removed: 1, changed: 2 });
    expect(sum.exit_code).toBe(7);
    expect(sum.baseline.digest).toMatch(/^blake3:[0-9a-f]{64}$/);
  });
});

describe('check --format ecs', () => {
  it('Elastic Common Schema events with Auditbeat-style actions, and one run event', async () => {
    const s = scenario();
    const r = integ([...s.args, '--format', 'ecs']);
    expect(r.code).toBe(7);
    const ev = parseLines(r.stdout);
    expect(ev).toHaveLength(5);
    for (const e of ev) {
      expect(e['@timestamp']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(e.ecs.version).toBe('9.4.0');
      expect(e.event.module).toBe('integ');
      expect(e.event.category).toEqual(['file']);
      expect(e.host.name).toBeTruthy();
    }
    const findings = ev.filter((e) => e.event.dataset === 'integ.check');
    const act = Object.fromEntries(findings.map((e) => [e.file.path.split('/').pop(), e]));
    expect(act.edit!.event.action).toBe('updated');
    expect(act.edit!.event.type).toEqual(['change']);
    expect(act.chmod!.event.action).toBe('attributes_modified');
    expect(act.chmod!.file.mode).toBe('0600');
    expect(act.gone!.event).toMatchObject({ action: 'deleted', type: ['deletion'] });
    expect(act.new!.event).toMatchObject({ action: 'created', type: ['creation'], kind: 'alert', severity: 73 });
    const sha = (await import('node:crypto')).createHash('sha256').update('new\n').digest('hex');
    expect(act.new!.file).toMatchObject({ path: path.join(s.tree, 'new'), type: 'file', uid: '0', gid: '0', owner: 'root', size: 4, hash: { sha256: sha } });
    expect(act.new!.file.inode).toBe(String(fs.statSync(path.join(s.tree, 'new')).ino));
    expect(act.new!.file.mtime).toMatch(/Z$/);
    expect(act.new!.rule.name).toBe('tree');
    const run = ev.at(-1)!;
    expect(run.event).toMatchObject({ kind: 'event', action: 'check', dataset: 'integ.run', outcome: 'success' });
    expect(run.integ).toMatchObject({ exit_code: 7, summary: { added: 1, removed: 1, changed: 2 } });
  });
});

describe('a failing run still writes one machine-readable event', () => {
  it('66 (no baseline), 65 (bad policy), 16 (tampered store) and 75 (store busy) in ndjson and ecs', async () => {
    const s = scenario();
    const bad = path.join(s.dir, 'bad.yml');
    fs.writeFileSync(bad, 'version: 1\nrules: []\n');
    const tampered = path.join(s.dir, 'tampered.db');
    fs.copyFileSync(s.db, tampered);
    const Database = (await import('better-sqlite3')).default;
    const t = new Database(tampered);
    expect(t.prepare('UPDATE entries SET blake3 = ? WHERE path = ?').run('00'.repeat(32), Buffer.from(path.join(s.tree, 'edit'))).changes).toBe(1);
    t.close();
    const cases: [string[], number][] = [
      [['check', '--db', path.join(s.dir, 'none.db'), '--policy', s.policy], 66],
      [['check', '--db', s.db, '--policy', bad], 65],
      [['check', '--db', tampered, '--policy', s.policy, '--no-snapshot'], 16],
    ];
    // --format json gets one failure document instead of an empty stdout
    const j = integ([...cases[2]![0], '--format', 'json']);
    expect(j.code).toBe(16);
    expect(JSON.parse(j.stdout)).toMatchObject({ schema: 'integ.failure/1', command: 'check', exit_code: 16, error: { type: 'TrustError' } });
    for (const [args, code] of cases) {
      for (const format of ['ndjson', 'ecs']) {
        const r = integ([...args, '--format', format], { env: { INTEG_LOG_LEVEL: 'warn' } });
        expect(r.code).toBe(code);
        const lines = parseLines(r.stdout);
        expect(lines).toHaveLength(1);
        if (format === 'ndjson') expect(lines[0]).toMatchObject({ type: 'failure', command: 'check', exit_code: code });
        else {
          expect(lines[0]!.event).toMatchObject({ outcome: 'failure', action: 'check', module: 'integ' });
          expect(lines[0]!.integ.exit_code).toBe(code);
          expect(lines[0]!.error.message).toBeTruthy();
        }
        // The error once: no log line repeating it (INTEG_LOG_LEVEL=warn shows warnings and errors).
        const first = r.stderr.split('\n')[0]!.replace(/^integ: /, '');
        expect(r.stderr.split(first).length - 1).toBe(1);
        expect(r.stderr).not.toMatch(/"level":/);
        if (code === 16) expect(r.stderr).toMatch(/ — to recover: keep this store as evidence, .*integ diff OLD\.db THIS\.db.*\n$/);
      }
    }
    // 75: another process holds the store's write lock.
    const lock = new Database(s.db);
    lock.exec('BEGIN IMMEDIATE');
    try {
      const r = integ([...s.args, '--format', 'ecs']);
      expect(r.code).toBe(75);
      expect(parseLines(r.stdout)[0]!.integ.exit_code).toBe(75);
    } finally {
      lock.exec('ROLLBACK');
      lock.close();
    }
  });

  it('a bad --format or --syslog target is a usage error (64)', () => {
    const s = scenario();
    expect(integ([...s.args, '--format', 'xml']).code).toBe(64);
    const r = integ([...s.args, '--syslog', 'ftp://x:1']);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/expected unix:\/dev\/log, udp:\/\/HOST:PORT or tcp:\/\/HOST:PORT/);
  });
});

const hasRsyslog = fs.existsSync(RSYSLOGD);
if (!hasRsyslog) console.log(`skipping the syslog tests: ${RSYSLOGD} is absent (Debian package rsyslog)`);

describe.runIf(hasRsyslog)('--syslog into a real rsyslogd (RFC 5424)', () => {
  let rs: Rsyslog;
  let dir: string;
  beforeAll(async () => {
    dir = tmpdir('integ-rsyslog-');
    dirs.push(dir);
    rs = await startRsyslog(dir);
  }, 30_000);
  afterAll(async () => {
    await rs?.stop();
  });

  for (const via of ['udp', 'tcp', 'unix'] as const) {
    it(`findings with structured data and one summary over ${via}`, async () => {
      const s = scenario();
      const target = via === 'unix' ? `unix:${rs.sock}` : `${via}://127.0.0.1:${via === 'udp' ? rs.udp : rs.tcp}`;
      const input = { udp: 'imudp', tcp: 'imtcp', unix: 'imuxsock' }[via];
      const r = integ([...s.args, '--syslog', target], { env: { INTEG_SYSLOG_FACILITY: 'local3' } });
      expect(r.code).toBe(7);
      expect(r.stderr).toBe('');
      const mine = (l: string[]): string[] =>
        l.filter(
          (x) =>
            (x.startsWith(`${input}|`) && x.includes(s.tree.split('/').pop()!)) ||
            (x.startsWith(`${input}|`) && x.includes('|summary|') && x.includes(`exit_code="7"`)),
        );
      const lines = mine(await rs.waitFor((l) => mine(l).some((x) => x.includes('|summary|'))));
      const edit = lines.find((x) => x.includes(`path="${path.join(s.tree, 'edit')}"`));
      expect(edit).toBeDefined();
      const [, pri, app, msgid, sd, msg] = edit!.split('|');
      expect(pri).toBe('local3.err');
      expect(app).toBe('integ');
      expect(msgid).toBe('finding');
      expect(sd).toMatch(/^\[integ@32473 path="[^"]+" kind="changed" rule="tree" severity="high" attributes="content,[a-z,]+"\]$/);
      expect(msg).toMatch(/^CHANGED .*edit \[content/);
      expect(lines.filter((x) => x.split('|')[3] === 'finding')).toHaveLength(4);
      expect(lines.some((x) => /\|summary\|\[integ@32473 scanned="\d+" added="1" removed="1" changed="2"/.test(x))).toBe(true);
    }, 30_000);
  }

  it('the syslog target and facility can come from the configuration file', async () => {
    const s = scenario();
    const conf = path.join(s.dir, 'integ.yml');
    fs.writeFileSync(conf, `syslog:\n  target: tcp://127.0.0.1:${rs.tcp}\n  facility: local5\n`);
    const r = integ(s.args, { env: { INTEG_CONFIG: conf } });
    expect(r.code).toBe(7);
    const want = (l: string[]): string | undefined => l.find((x) => x.startsWith('imtcp|local5.') && x.includes(path.join(s.tree, 'new')));
    expect(want(await rs.waitFor((l) => Boolean(want(l))))).toMatch(/^imtcp\|local5\.err\|integ\|finding\|\[integ@32473 path="[^"]+\/new" kind="added"/);
  }, 30_000);

  it('a failing run sends one failure message', async () => {
    const s = scenario();
    const r = integ(['check', '--db', path.join(s.dir, 'none.db'), '--policy', s.policy, '--syslog', `udp://127.0.0.1:${rs.udp}`]);
    expect(r.code).toBe(66);
    const want = (l: string[]): string | undefined => l.find((x) => x.includes('|failure|') && x.includes(path.join(s.dir, 'none.db')));
    const line = want(await rs.waitFor((l) => Boolean(want(l))));
    expect(line).toMatch(/^imudp\|daemon\.err\|integ\|failure\|\[integ@32473 command="check" exit_code="66"\]\|check failed \(exit 66\): no baseline yet/);
  }, 30_000);
});

describe('logs', () => {
  it('pino lines carry hostname and program name; one run-summary event; a failure is logged once', async () => {
    const os = await import('node:os');
    const s = scenario();
    const log = path.join(s.dir, 'integ.log');
    expect(integ([...s.args, '--log', log], { env: { INTEG_LOG_LEVEL: 'info' } }).code).toBe(7);
    const lines = parseLines(fs.readFileSync(log, 'utf8'));
    for (const l of lines) expect(l).toMatchObject({ name: 'integ', hostname: os.hostname() });
    const sum = lines.filter((l) => l.event === 'run-summary');
    expect(sum).toHaveLength(1);
    expect(sum[0]).toMatchObject({ command: 'check', added: 1, removed: 1, changed: 2, exit_code: 7, msg: 'check finished' });
    const blog = path.join(s.dir, 'baseline.log');
    expect(integ(['baseline', '--db', path.join(s.dir, 'b.db'), '--policy', s.policy, '--log', blog], { env: { INTEG_LOG_LEVEL: 'info' } }).code).toBe(0);
    expect(parseLines(fs.readFileSync(blog, 'utf8')).filter((l) => l.event === 'run-summary')).toEqual([
      expect.objectContaining({ command: 'baseline', msg: 'baseline finished', exit_code: 0, name: 'integ' }),
    ]);
    const log2 = path.join(s.dir, 'fail.log');
    const r = integ(['check', '--db', path.join(s.dir, 'none.db'), '--policy', s.policy, '--log', log2], { env: { INTEG_LOG_LEVEL: 'info' } });
    expect(r.code).toBe(66);
    const failed = parseLines(fs.readFileSync(log2, 'utf8')).filter((l) => l.level === 50);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ event: 'run-failed', exit_code: 66, command: 'check' });
    expect(r.stderr.match(/no baseline yet/g)).toHaveLength(1);
  });
});

describe('snapshot and verify in the line formats', () => {
  it('snapshot --format ecs: one run event naming the bundle and its sha256; verify --format ndjson: one line per problem, then the summary', async () => {
    const dir = tmpdir();
    dirs.push(dir);
    const s = integ(['snapshot', '--out', dir, '--format', 'ecs']);
    expect(s.code).toBe(0);
    const ev = parseLines(s.stdout);
    expect(ev).toHaveLength(1);
    expect(ev[0]!.event).toMatchObject({ action: 'snapshot', outcome: 'success', module: 'integ' });
    const bundle = ev[0]!.file.path as string;
    const sha = (await import('node:crypto')).createHash('sha256').update(fs.readFileSync(bundle)).digest('hex');
    expect(ev[0]!.file.hash.sha256).toBe(sha);
    const ok = integ(['verify', bundle, '--format', 'ndjson']);
    expect(ok.code).toBe(0);
    expect(parseLines(ok.stdout)).toEqual([expect.objectContaining({ type: 'summary', command: 'verify', ok: true, exit_code: 0, problems: 0 })]);
    // tamper with one file of the extracted bundle
    const x = path.join(dir, 'x');
    fs.mkdirSync(x);
    const { spawnSync } = await import('node:child_process');
    expect(spawnSync('tar', ['-xzf', bundle, '-C', x]).status).toBe(0);
    const top = path.join(x, fs.readdirSync(x)[0]!);
    const victim = path.join(top, 'manifest.json');
    const before = fs.readFileSync(victim, 'utf8');
    fs.writeFileSync(victim, before.replace('"hostname"', '"hostnamE"'));
    expect(fs.readFileSync(victim, 'utf8')).not.toBe(before);
    const bad = integ(['verify', top, '--format', 'ndjson']);
    expect(bad.code).toBe(16);
    const lines = parseLines(bad.stdout);
    expect(lines.filter((l) => l.type === 'problem').length).toBeGreaterThan(0);
    expect(lines.at(-1)).toMatchObject({ type: 'summary', ok: false, exit_code: 16 });
    const ecs = parseLines(integ(['verify', top, '--format', 'ecs']).stdout);
    expect(ecs.at(-1)!.event).toMatchObject({ action: 'verify', outcome: 'failure' });
    expect(ecs[0]!.event).toMatchObject({ kind: 'alert', action: 'bundle-tampered' });
    // a missing bundle still writes one failure event
    const gone = integ(['verify', path.join(dir, 'none.tar.gz'), '--format', 'ecs']);
    expect(gone.code).toBe(66);
    expect(parseLines(gone.stdout)[0]!.integ).toMatchObject({ kind: 'failure', command: 'verify', exit_code: 66 });
  }, 60_000);
});
