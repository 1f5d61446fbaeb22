import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integ, tmpdir } from '../helpers/cli.js';
import { modeString } from '../../src/report/timeline-report.js';
import { parseWhen } from '../../src/app/timeline.js';

/**
 * One incident through the real CLI: baseline, tampering, check (alert + bundle), note,
 * restore, clean check; then the timeline in every format.
 */
let dir: string;
let db: string;
let conf: string;
let mtimeNs: bigint;
let tBeforeNote: string;
const run = (...a: string[]) => integ(a);

beforeAll(() => {
  dir = tmpdir();
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  db = path.join(dir, 's.db');
  const ev = path.join(dir, 'ev');
  const policy = path.join(dir, 'p.yml');
  fs.writeFileSync(policy, `version: 1\nrules:\n  - name: tree\n    severity: critical\n    paths: ["${tree}/**"]\n    keep_content: true\n`);
  conf = path.join(tree, 'sshd|config');
  fs.writeFileSync(conf, 'PermitRootLogin no\n');
  expect(run('baseline', '--db', db, '--policy', policy, '--note', 'golden').code).toBe(0);
  fs.writeFileSync(conf, 'PermitRootLogin yes\n');
  fs.utimesSync(conf, new Date('2026-01-02T03:04:05Z'), new Date('2026-01-02T03:04:05Z'));
  mtimeNs = fs.statSync(conf, { bigint: true }).mtimeNs;
  // the snapshot on alert runs the real collectors; keep its copy of changed files only
  const c = run('check', '--db', db, '--policy', policy, '--out', ev, '--jobs', '1');
  expect(c.code & 4).toBe(4);
  tBeforeNote = new Date().toISOString();
  expect(run('note', '--db', db, 'isolated the host, calling the CSIRT').code).toBe(0);
  expect(run('restore', conf, '--db', db, '--policy', policy, '--out', ev, '--note', 'revert sshd').code).toBe(0);
  expect(run('check', '--db', db, '--policy', policy, '--no-snapshot').code).toBe(0);
}, 120_000);

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Ev {
  datetime: string;
  timestamp: number;
  timestamp_desc: string;
  source: string;
  message: string;
  path: string | null;
  sha256: string | null;
}

describe('integ timeline', () => {
  it('json: every source, in time order', () => {
    const r = run('timeline', '--db', db, '--format', 'json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { schema: string; events: Ev[]; notes_head: string };
    expect(j.schema).toBe('integ.timeline/1');
    const ts = j.events.map((e) => e.timestamp);
    expect([...ts].sort((a, b) => a - b)).toEqual(ts);
    const order = (pred: (e: Ev) => boolean) => j.events.findIndex(pred);
    const file = order((e) => e.source === 'file' && e.timestamp_desc.includes('mtime'));
    const baseline = order((e) => e.timestamp_desc === 'Baseline recorded');
    const alert = order((e) => e.timestamp_desc === 'Check alert');
    const finding = order((e) => e.source === 'finding' && e.path === conf);
    const sealed = order((e) => e.source === 'evidence' && e.message.startsWith('alert bundle'));
    const note = order((e) => e.source === 'note');
    const restoredGen = order((e) => e.timestamp_desc === 'Known-good restored');
    const restoredPath = order((e) => e.timestamp_desc === 'File restored' && e.path === conf);
    const restoreBundle = order((e) => e.source === 'evidence' && e.message.startsWith('restore bundle'));
    const clean = order((e) => e.timestamp_desc === 'Check clean');
    // the planted mtime (January) predates everything integ did
    expect(file).toBe(0);
    expect(j.events[0]!.datetime).toBe('2026-01-02T03:04:05.000000000Z');
    expect([baseline, alert, finding, sealed, note, restoredGen, restoredPath, restoreBundle, clean].every((i) => i > 0)).toBe(true);
    expect(
      baseline < alert && alert < finding && finding < sealed && sealed < note && note < restoredGen && restoredGen < restoredPath && restoredPath < clean,
    ).toBe(true);
    expect(j.events[sealed]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(j.events[restoreBundle]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(j.events[note]!.message).toContain('isolated the host, calling the CSIRT');
    expect(j.notes_head).toMatch(/^blake3:/);
  });

  it('--since / --until filter; bad values are usage errors', () => {
    const all = JSON.parse(run('timeline', '--db', db, '--format', 'json').stdout).events as Ev[];
    const late = JSON.parse(run('timeline', '--db', db, '--format', 'json', '--since', tBeforeNote).stdout).events as Ev[];
    expect(late.length).toBeGreaterThan(0);
    expect(late.length).toBeLessThan(all.length);
    expect(late.every((e) => e.datetime >= tBeforeNote.slice(0, 19))).toBe(true);
    expect(late[0]!.source).toBe('note');
    const early = JSON.parse(run('timeline', '--db', db, '--format', 'json', '--until', '2026-01-03').stdout).events as Ev[];
    // utimes set the mtime back to January; the ctime stays at the time of the tampering
    expect(early.map((e) => [e.source, e.timestamp_desc])).toEqual([['file', 'Content modification time (mtime)']]);
    for (const bad of [
      ['--since', 'yesterday'],
      ['--until', '2026-13-45'],
      ['--format', 'xml'],
    ]) {
      const r = run('timeline', '--db', db, ...bad);
      expect(r.code).toBe(64);
      expect(r.stderr).toMatch(/^integ: /);
    }
    expect(run('timeline', '--db', path.join(dir, 'none.db')).code).toBe(66);
  });

  it('csv has Timesketch columns, RFC 4180 quoting', () => {
    const r = run('timeline', '--db', db, '--format', 'csv');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\r\n');
    expect(lines[0]).toBe('message,datetime,timestamp_desc,timestamp,source,host,user,path,generation,run,severity,sha256,digest');
    const noteLine = lines.find((l) => l.includes('isolated the host'))!;
    expect(noteLine.startsWith('"isolated the host, calling the CSIRT')).toBe(true); // comma in the message: quoted
    const rows = lines.slice(1).filter(Boolean);
    const json = JSON.parse(run('timeline', '--db', db, '--format', 'json').stdout).events as Ev[];
    expect(rows).toHaveLength(json.length);
  });

  it('bodyfile is the Sleuth Kit mactime format', () => {
    const r = run('timeline', '--db', db, '--format', 'bodyfile');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    for (const l of lines) expect(l.split('|')).toHaveLength(11);
    const f = lines.find((l) => l.startsWith(`0|${conf.replace('|', '\\x7c')}|`))!;
    expect(f).toBeDefined();
    const cols = f.split('|');
    expect(cols[3]).toBe('r/rrw-r--r--');
    expect(cols[8]).toBe((mtimeNs / 1_000_000_000n).toString());
    expect(lines.some((l) => l.includes('[integ] Note: isolated the host'))).toBe(true);
  });

  it('text shows one line per event and the notes head', () => {
    const r = run('timeline', '--db', db);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Baseline recorded\s+generation #1 \(baseline\)/);
    expect(r.stdout).toMatch(/event\(s\); notes head blake3:[0-9a-f]{64}\n$/);
  });
});

describe('timeline helpers', () => {
  it('modeString writes modes as TSK does', () => {
    expect(modeString('file', 0o644)).toBe('r/rrw-r--r--');
    expect(modeString('file', 0o4755)).toBe('r/rrwsr-xr-x');
    expect(modeString('dir', 0o1777)).toBe('d/drwxrwxrwt');
    expect(modeString('symlink', 0o777)).toBe('l/lrwxrwxrwx');
  });
  it('parseWhen takes dates, times and ages', () => {
    expect(parseWhen('--since', '2026-11-21')).toBe(BigInt(Date.parse('2026-11-21T00:00:00Z')) * 1_000_000n);
    expect(parseWhen('--since', '2026-11-21T23:00')).toBe(BigInt(Date.parse('2026-11-21T23:00:00Z')) * 1_000_000n);
    expect(parseWhen('--since', '2h', 10_000_000)).toBe(BigInt(10_000_000 - 7_200_000) * 1_000_000n);
    expect(() => parseWhen('--since', 'soon')).toThrow(/ISO-8601/);
  });
});

describe('timeline: triage findings inside recorded bundles, and --help', () => {
  it('lists the triage findings of a recorded bundle at its seal time', async () => {
    const d = tmpdir();
    try {
      const store = path.join(d, 's.db');
      expect(integ(['note', '--db', store, 'start']).code).toBe(0);
      const { BundleWriter } = await import('../../src/evidence/bundle-writer.js');
      const w = await BundleWriter.create({ outDir: path.join(d, 'ev'), hostname: 'web1' });
      await w.addFile(
        'artifacts/findings.json',
        JSON.stringify({
          count: 1,
          ioc_checked: false,
          findings: [{ kind: 'deleted-exe', severity: 'critical', pid: 4242, exe: '/tmp/.x', detail: 'process runs a deleted binary /tmp/.x' }],
          notes: [],
        }),
      );
      const sealed = await w.seal({ manifest: { artifacts: [] } });
      const Database = (await import('better-sqlite3')).default;
      const db = new Database(store);
      const { EvidenceRepo } = await import('../../src/store/record-repo.js');
      new EvidenceRepo(db).add({
        sealedAt: '2026-11-30T10:00:00.000Z',
        kind: 'snapshot',
        path: sealed.path,
        sha256: sealed.sha256,
        size: sealed.size,
        run: null,
        gen: null,
        note: null,
      });
      db.close();
      const j = JSON.parse(integ(['timeline', '--db', store, '--format', 'json']).stdout) as { events: Ev[] };
      const t = j.events.find((e) => e.source === 'triage')!;
      expect(t).toBeDefined();
      expect(t.datetime).toBe('2026-11-30T10:00:00.000Z');
      expect(t.message).toBe('deleted-exe pid 4242: process runs a deleted binary /tmp/.x');
      expect(j.events.find((e) => e.source === 'evidence')!.sha256).toBe(sealed.sha256);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('--help lists the recovery commands', () => {
    const r = integ(['--help']);
    for (const c of ['restore', 'note', 'timeline', 'report', 'drill']) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
  });
});

describe('snapshot bundles in the record', () => {
  it.runIf(process.platform === 'linux')(
    'integ snapshot --db records the bundle with its sha256; the timeline lists it',
    () => {
      const d = tmpdir();
      try {
        const store = path.join(d, 's.db');
        const s = integ(['snapshot', '--db', store, '--out', path.join(d, 'ev'), '--note', 'case 42', '--format', 'json']);
        expect(s.code).toBe(0);
        const snap = JSON.parse(s.stdout) as { bundle: string; sha256: string };
        const j = JSON.parse(integ(['timeline', '--db', store, '--format', 'json']).stdout) as { events: Ev[] };
        const e = j.events.find((x) => x.source === 'evidence')!;
        expect(e.message).toBe(`snapshot bundle ${snap.bundle} sha256 ${snap.sha256}`);
        expect(e.sha256).toBe(snap.sha256);
      } finally {
        fs.rmSync(d, { recursive: true, force: true });
      }
    },
    60_000,
  );
});
