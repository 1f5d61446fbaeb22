import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canDropToNobody, integ, tmpdir } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
const fresh = (): string => {
  const d = tmpdir('integ-drill-test-');
  dirs.push(d);
  return d;
};

if (!canDropToNobody) console.log('drill.test: not root, no setpriv or no staged runtime: the drill is not exercised as an unprivileged user');

interface Drill {
  schema: string;
  planted: number;
  detected: number;
  evidence_verified: boolean;
  restored: boolean;
  seconds: number;
  steps: { step: string; ok: boolean; detail: string }[];
  plants: { name: string; path: string; expect: string; detected: boolean }[];
  sandbox: string | null;
  bundle: { path: string; sha256: string } | null;
  exit_code: number;
}

describe('integ drill', () => {
  it('plants at least five realistic tamperings, detects them all, verifies the evidence, exit 0; leaves nothing behind', () => {
    const tmp = fresh();
    const r = integ(['drill', '--format', 'json', '--tmp', tmp]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as Drill;
    expect(j.schema).toBe('integ.drill/1');
    expect(j.planted).toBeGreaterThanOrEqual(5);
    expect(j.detected).toBe(j.planted);
    expect(j.evidence_verified).toBe(true);
    expect(j.restored).toBe(true);
    expect(typeof j.seconds).toBe('number');
    expect(j.steps.every((s) => s.ok)).toBe(true);
    expect(j.steps.map((s) => s.step)).toEqual([
      'build a sandbox tree and policy',
      'baseline',
      'clean check before tampering (no false alarm)',
      'plant tamperings',
      'check detects every tampering and seals evidence',
      'verify the sealed bundle',
      'restore the changed configuration from kept content',
      'note and timeline',
    ]);
    expect(j.plants.map((p) => p.path).sort()).toEqual([
      '/etc/cron.d/0sysupdate',
      '/etc/ld.so.preload',
      '/etc/ssh/sshd_config',
      '/root/.ssh/authorized_keys',
      '/usr/bin/ls',
      '/usr/local/bin/.sshd-helper',
    ]);
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  it('text output: a PASS line per step and READY', () => {
    const r = integ(['drill', '--tmp', fresh()]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('PASS  '))).toHaveLength(8);
    expect(lines.filter((l) => l.startsWith('FAIL'))).toEqual([]);
    expect(lines[lines.length - 1]).toMatch(/^READY: 6\/6 detected, evidence verified, restore ok, [\d.]+ s$/);
  });

  it('--keep leaves the sandbox: its bundle verifies and its timeline lists the tamperings', () => {
    const tmp = fresh();
    const j = JSON.parse(integ(['drill', '--format', 'json', '--keep', '--tmp', tmp]).stdout) as Drill;
    expect(j.sandbox).not.toBeNull();
    expect(path.dirname(j.sandbox!)).toBe(tmp);
    expect(fs.statSync(j.sandbox!).mode & 0o777).toBe(0o700);
    expect(integ(['verify', j.bundle!.path]).code).toBe(0);
    const csv = fs.readFileSync(path.join(j.sandbox!, 'timeline.csv'), 'utf8');
    for (const p of j.plants) expect(csv).toContain(p.path);
    const t = integ(['timeline', '--db', path.join(j.sandbox!, 'integ.db'), '--format', 'json']);
    expect(JSON.parse(t.stdout).events.some((e: { source: string }) => e.source === 'note')).toBe(true);
  });

  it.runIf(canDropToNobody)('runs as an unprivileged user and touches nothing outside its sandbox', () => {
    const tmp = fresh();
    fs.chmodSync(tmp, 0o1777); // sticky, like /tmp: evidence folders below must not be renamable by others
    const home = path.join(tmp, 'home');
    fs.mkdirSync(home, { mode: 0o777 });
    fs.chmodSync(home, 0o1777);
    const sandboxes = path.join(tmp, 'sandboxes');
    fs.mkdirSync(sandboxes, { mode: 0o777 });
    fs.chmodSync(sandboxes, 0o1777);
    const r = integ(['drill', '--format', 'json', '--tmp', sandboxes], { asNobody: true, env: { HOME: home } });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as Drill;
    expect(j.detected).toBe(j.planted);
    expect(j.evidence_verified).toBe(true);
    expect(fs.readdirSync(home)).toEqual([]); // no store or evidence in the user's state folder
    expect(fs.readdirSync(sandboxes)).toEqual([]);
  });
});
