import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { integ, tmpdir } from '../helpers/cli.js';

/** `snapshot --ioc FILE`: running executables matched against a known-bad feed. */

const dirs: string[] = [];
const kids: ChildProcess[] = [];
afterAll(() => {
  for (const k of kids) k.kill('SIGKILL');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

interface Finding {
  kind: string;
  severity: string;
  pid?: number;
  exe?: string | null;
  detail: string;
}

const skip = process.platform !== 'linux' ? 'not Linux' : process.getuid?.() !== 0 ? 'needs root (reads every process)' : null;
if (skip) console.log(`skipping snapshot --ioc tests: ${skip}`);

describe.skipIf(skip !== null)('integ snapshot --ioc', () => {
  it('a running executable whose sha256 is in the feed is a critical ioc_match, in the JSON and the triage summary', async () => {
    const d = tmpdir();
    dirs.push(d);
    // A private copy of sleep with one byte appended: its digest is ours alone, so no other
    // process on the host can match the feed and the finding is certainly this child's.
    const exeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-ioc-'));
    dirs.push(exeDir);
    const exe = path.join(exeDir, 'implant');
    fs.writeFileSync(exe, Buffer.concat([fs.readFileSync(fs.realpathSync('/bin/sleep')), crypto.randomBytes(16)]));
    fs.chmodSync(exe, 0o755);
    const sha = crypto.createHash('sha256').update(fs.readFileSync(exe)).digest('hex');
    const child = spawn(exe, ['300'], { stdio: 'ignore' });
    kids.push(child);
    await once(child, 'spawn');

    const feed = path.join(d, 'feed.txt');
    fs.writeFileSync(feed, `# test feed\n\n${'0'.repeat(64)} unrelated\n${sha.toUpperCase()} Implant.Test\n`);
    const out = path.join(d, 'ev');
    const r = integ(['snapshot', '--out', out, '--format', 'json', '--ioc', feed]);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { findings: Finding[] };
    const hit = j.findings.find((f) => f.kind === 'ioc_match' && f.pid === child.pid);
    expect(hit).toMatchObject({ severity: 'critical', exe });
    expect(hit!.detail).toContain(sha);
    expect(hit!.detail).toContain('Implant.Test');
    expect(j.findings[0]!.severity).toBe('critical');

    const t = integ(['snapshot', '--out', out, '--ioc', feed]);
    expect(t.code, t.stderr).toBe(0);
    const line = t.stdout.split('\n').find((l) => l.includes('ioc_match') && l.includes(String(child.pid)));
    expect(line, t.stdout).toBeDefined();
    expect(line).toContain(exe);

    // Without the feed the same process is no ioc_match.
    const n = integ(['snapshot', '--out', out, '--format', 'json']);
    expect(n.code, n.stderr).toBe(0);
    expect((JSON.parse(n.stdout) as { findings: Finding[] }).findings.some((f) => f.kind === 'ioc_match' && f.pid === child.pid)).toBe(false);
  });

  it('a malformed feed is 65 naming file:line before anything is collected', () => {
    const d = tmpdir();
    dirs.push(d);
    const feed = path.join(d, 'bad.txt');
    fs.writeFileSync(feed, `${'a'.repeat(64)} ok\nnot-a-digest\n`);
    const out = path.join(d, 'ev');
    const r = integ(['snapshot', '--out', out, '--ioc', feed]);
    expect(r.code).toBe(65);
    expect(r.stderr).toContain(`${feed}:2`);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(fs.existsSync(out) ? fs.readdirSync(out).filter((n) => n.endsWith('.tar.gz')) : []).toEqual([]);
  });
});
