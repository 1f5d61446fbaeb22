import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { integ, tmpdir, writePolicy } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function dir(): string {
  const d = tmpdir();
  dirs.push(d);
  return d;
}
const sha256 = (p: string) => crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');

describe.runIf(process.platform === 'linux')('integ snapshot', () => {
  it('seals a private bundle, prints its path and SHA-256, and verify accepts it', () => {
    const d = dir();
    const out = path.join(d, 'evidence');
    const r = integ(['snapshot', '--out', out, '--note', 'case 42', '--format', 'json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { schema: string; bundle: string; sha256: string; timings: { core_bracket_ms: number }; steps: Array<{ name: string }> };
    expect(j.schema).toBe('integ.snapshot/1');
    expect(path.basename(j.bundle)).toMatch(/^integ-[A-Za-z0-9._-]+-\d{8}T\d{6}Z\.tar\.gz$/);
    expect(sha256(j.bundle)).toBe(j.sha256);
    expect(fs.statSync(j.bundle).mode & 0o777).toBe(0o600);
    expect(fs.statSync(out).mode & 0o777).toBe(0o700);
    expect(fs.readdirSync(out)).toEqual([path.basename(j.bundle)]); // no .partial, no staging left
    expect(j.steps.map((s) => s.name)).toEqual(['preflight', 'core', 'sessions', 'kernel', 'executables', 'config', 'findings', 'persistence']);
    expect(j.timings.core_bracket_ms).toBeGreaterThanOrEqual(0); // how short it is: npm run bench -- --only snapshot
    const v = integ(['verify', j.bundle]);
    expect(v.code).toBe(0);
    const text = integ(['snapshot', '--out', out]);
    expect(text.stdout).toMatch(/^bundle: .*\.tar\.gz\nsha256: [0-9a-f]{64}\ntriage: (no findings|\d+ findings?)\n/m);
  });

  it('two bundles in the same second get distinct names (-2), decided by the O_EXCL reservation, not by waiting', () => {
    const d = dir();
    const out = path.join(d, 'ev');
    fs.mkdirSync(out, { mode: 0o700 });
    const host =
      os
        .hostname()
        .replace(/[^A-Za-z0-9._-]+/g, '_')
        .replace(/^[.]+/, '')
        .slice(0, 64) || 'unknown';
    // Occupy the plain name of every second the run could start in, so the collision is certain.
    const start = Math.floor(Date.now() / 1000) - 1;
    const planted = new Set<string>();
    for (let t = start; t < start + 60; t += 1) {
      const name = `integ-${host}-${new Date(t * 1000)
        .toISOString()
        .replace(/\.\d{3}Z$/, 'Z')
        .replace(/[-:]/g, '')}.tar.gz`;
      fs.writeFileSync(path.join(out, name), 'an earlier bundle\n');
      planted.add(name);
    }
    const r = integ(['snapshot', '--out', out, '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const name = path.basename((JSON.parse(r.stdout) as { bundle: string }).bundle);
    expect(name).toMatch(/-2\.tar\.gz$/);
    expect(planted.has(name.replace(/-2\.tar\.gz$/, '.tar.gz'))).toBe(true);
    for (const p of planted) expect(fs.readFileSync(path.join(out, p), 'utf8')).toBe('an earlier bundle\n');
  });

  it('exits 73 when the output cannot be created and leaves nothing behind', () => {
    const d = dir();
    fs.writeFileSync(path.join(d, 'file'), '');
    const r = integ(['snapshot', '--out', path.join(d, 'file', 'evidence')]);
    expect(r.code).toBe(73);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(fs.readdirSync(d)).toEqual(['file']);
  });

  it('diff: a snapshot equals itself; a new listening port shows up by port and executable, not pid', async () => {
    const d = dir();
    const out = path.join(d, 'ev');
    const a = JSON.parse(integ(['snapshot', '--out', out, '--format', 'json']).stdout) as { bundle: string };
    expect(integ(['diff', a.bundle, a.bundle]).code).toBe(0);
    const child = spawn(process.execPath, ['-e', 'require("net").createServer().listen(0, "127.0.0.1", function () { console.log(this.address().port) })']);
    const port = await new Promise<number>((res) => child.stdout.once('data', (b: Buffer) => res(Number(b.toString().trim()))));
    try {
      // Same second or not, the second bundle gets its own name (a -N suffix within one second).
      const b = JSON.parse(integ(['snapshot', '--out', out, '--format', 'json']).stdout) as { bundle: string };
      expect(b.bundle).not.toBe(a.bundle);
      const r = integ(['diff', a.bundle, b.bundle, '--format', 'json']);
      expect(r.code).toBe(1);
      const j = JSON.parse(r.stdout) as { same: boolean; sections: Array<{ name: string; added: Array<Record<string, unknown>> }> };
      const listening = j.sections.find((s) => s.name === 'listening')!;
      expect(JSON.stringify(listening.added)).toContain(`"port":${port}`);
      expect(JSON.stringify(listening.added)).not.toMatch(/"pids?"/);
    } finally {
      child.kill();
    }
  });
});

describe.runIf(process.platform === 'linux')('integ check: evidence on alert', () => {
  function setup(top = '') {
    const d = dir();
    const tree = path.join(d, 'tree');
    fs.mkdirSync(tree);
    fs.writeFileSync(path.join(tree, 'sshd_config'), 'PermitRootLogin no\n');
    const policy = writePolicy(d, tree, '', top);
    const db = path.join(d, 's.db');
    const out = path.join(d, 'ev');
    expect(integ(['baseline', '--db', db, '--policy', policy, '--jobs', '0']).code).toBe(0);
    const check = (...a: string[]) => integ(['check', '--db', db, '--policy', policy, '--jobs', '0', '--out', out, '--format', 'json', ...a]);
    return { d, tree, out, check };
  }
  type Report = { evidence: { bundle: string; sha256: string; reused: boolean } | null; exit_code: number };

  it('seals a bundle with the report and a copy of the changed file; the same alert again reuses it; a new one does not', async () => {
    const s = setup();
    fs.writeFileSync(path.join(s.tree, 'sshd_config'), 'PermitRootLogin yes\n');
    const r1 = s.check();
    expect(r1.code).toBe(4);
    const j1 = JSON.parse(r1.stdout) as Report;
    expect(j1.evidence).toMatchObject({ reused: false });
    expect(sha256(j1.evidence!.bundle)).toBe(j1.evidence!.sha256);
    const { readBundle } = await import('../../src/evidence/bundle-reader.js');
    const b = await readBundle(j1.evidence!.bundle);
    const report = JSON.parse(b.files.get('check/report.json')!.toString()) as { schema: string; summary: { changed: number } };
    expect(report).toMatchObject({ schema: 'integ.check/1', summary: { changed: 1 } });
    const copy = [...b.files.entries()].find(([f]) => f.startsWith('changed-files/'));
    expect(copy?.[1].toString()).toBe('PermitRootLogin yes\n');
    expect(b.manifest).toMatchObject({ trigger: { kind: 'check' } });
    expect(integ(['verify', j1.evidence!.bundle]).code).toBe(0);

    const j2 = JSON.parse(s.check().stdout) as Report;
    expect(j2.evidence).toEqual({ ...j1.evidence, reused: true });

    fs.writeFileSync(path.join(s.tree, 'planted'), 'x');
    const j3 = JSON.parse(s.check().stdout) as Report;
    expect(j3.exit_code).toBe(5);
    expect(j3.evidence?.reused).toBe(false);
    expect(j3.evidence?.bundle).not.toBe(j1.evidence!.bundle);
  });

  it('--no-snapshot and on_alert.snapshot: false capture nothing; a clean check captures nothing', () => {
    const s = setup();
    expect((JSON.parse(s.check().stdout) as Report).evidence).toBeNull();
    fs.writeFileSync(path.join(s.tree, 'new'), 'x');
    expect((JSON.parse(s.check('--no-snapshot').stdout) as Report).evidence).toBeNull();
    expect(fs.existsSync(s.out)).toBe(false);
    const off = setup('on_alert: {snapshot: false}\n');
    fs.writeFileSync(path.join(off.tree, 'new'), 'x');
    expect((JSON.parse(off.check().stdout) as Report).evidence).toBeNull();
    expect((JSON.parse(off.check('--snapshot').stdout) as Report).evidence).not.toBeNull();
  });

  it('retention removes the oldest check bundles beyond the policy limit', async () => {
    const s = setup('retention: {max_bundles: 1}\n');
    fs.writeFileSync(path.join(s.tree, 'a'), 'x');
    const first = (JSON.parse(s.check().stdout) as Report).evidence!.bundle;
    fs.writeFileSync(path.join(s.tree, 'b'), 'x');
    const r = s.check();
    const second = JSON.parse(r.stdout) as Report & { notices: string[] };
    expect(fs.existsSync(first)).toBe(false);
    expect(fs.existsSync(second.evidence!.bundle)).toBe(true);
    expect(second.notices.join(' ')).toMatch(/retention removed 1 old evidence bundle/);
  });
});
