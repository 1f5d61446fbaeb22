import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readBundle } from '../../src/evidence/bundle-reader.js';
import { integ, tmpdir } from '../helpers/cli.js';

/**
 * The classic tricks against /proc, played for real (root, mount --bind), and what
 * `integ snapshot` makes of them: findings.json and the triage summary of the text output.
 */

const isRoot = process.getuid?.() === 0;
const dirs: string[] = [];
const kids: ChildProcess[] = [];
const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
  for (const k of kids) k.kill('SIGKILL');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function mountPermitted(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (!isRoot) return 'needs root (mount --bind over /proc/PID)';
  const d = tmpdir();
  dirs.push(d);
  const probe = spawn('sleep', ['30'], { stdio: 'ignore' });
  kids.push(probe);
  const r = spawnSync('mount', ['--bind', d, `/proc/${probe.pid}`]);
  if (r.status !== 0) return `mount --bind not permitted here: ${(r.stderr?.toString() || r.error?.message || '').trim()}`;
  spawnSync('umount', [`/proc/${probe.pid}`]);
  probe.kill('SIGKILL');
  return null;
}
const skipReason = mountPermitted();
if (skipReason) console.log(`skipping snapshot findings tests: ${skipReason}`);

function bindMount(src: string, dst: string): void {
  const r = spawnSync('mount', ['--bind', src, dst]);
  if (r.status !== 0) throw new Error(`mount --bind ${src} ${dst}: ${r.stderr.toString()}`);
  mounts.push(dst);
}
function unmount(dst: string): void {
  spawnSync('umount', [dst]);
  const i = mounts.indexOf(dst);
  if (i >= 0) mounts.splice(i, 1);
}
async function started(c: ChildProcess): Promise<number> {
  kids.push(c);
  await once(c, 'spawn'); // emitted once the program has been executed
  expect(c.pid).toBeGreaterThan(0);
  return c.pid!;
}

interface Finding {
  kind: string;
  severity: string;
  pid?: number;
  path?: string;
  exe?: string | null;
  detail: string;
}

describe.skipIf(skipReason !== null)('integ snapshot findings against /proc tricks (root)', () => {
  it('bind-mount hide, masquerade and a deleted executable: in findings.json, the JSON output and the triage summary', async () => {
    const d = tmpdir();
    dirs.push(d);
    const empty = path.join(d, 'empty');
    fs.mkdirSync(empty);
    // 1. hidden: an empty directory mounted over /proc/HID
    const hid = await started(spawn('sleep', ['300'], { stdio: 'ignore' }));
    // 2. masquerade: /proc/A mounted over /proc/B
    const a = await started(spawn('sleep', ['301'], { stdio: 'ignore' }));
    const b = await started(spawn('sleep', ['302'], { stdio: 'ignore' }));
    // 3. a deleted executable: a copy of sleep, run, then deleted
    const exeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-del-'));
    dirs.push(exeDir);
    const copy = path.join(exeDir, 'sleepy');
    fs.copyFileSync(fs.realpathSync('/bin/sleep'), copy);
    fs.chmodSync(copy, 0o755);
    const sleepSha = crypto.createHash('sha256').update(fs.readFileSync(copy)).digest('hex');
    const del = await started(spawn(copy, ['303'], { stdio: 'ignore' }));
    fs.rmSync(copy);
    expect(fs.readlinkSync(`/proc/${del}/exe`)).toBe(`${copy} (deleted)`);

    // 4. a hidden multi-threaded server: its threads' /proc/TID still show it, so its listener keeps its owner
    const srv = spawn(process.execPath, ['-e', 'require("net").createServer().listen(0, "127.0.0.1", function () { console.log(this.address().port) })'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    kids.push(srv);
    const port = await new Promise<number>((res) => srv.stdout!.once('data', (x: Buffer) => res(Number(x.toString().trim()))));
    expect(fs.readdirSync(`/proc/${srv.pid}/task`).length).toBeGreaterThan(1);

    bindMount(empty, `/proc/${srv.pid}`);
    bindMount(empty, `/proc/${hid}`);
    bindMount(`/proc/${a}`, `/proc/${b}`);
    let jsonOut: { bundle: string; findings: Finding[] };
    let textOut: string;
    try {
      // the tricks are in place: /proc/HID shows nothing, /proc/B shows A
      expect(fs.existsSync(`/proc/${hid}/stat`)).toBe(false);
      expect(fs.readFileSync(`/proc/${b}/stat`, 'utf8').startsWith(`${a} (`)).toBe(true);
      const out = path.join(d, 'ev');
      const r = integ(['snapshot', '--out', out, '--format', 'json']);
      expect(r.code, r.stderr).toBe(0);
      jsonOut = JSON.parse(r.stdout) as typeof jsonOut;
      const t = integ(['snapshot', '--out', out]); // same second or not: a -N suffix keeps names distinct
      expect(t.code, t.stderr).toBe(0);
      textOut = t.stdout;
    } finally {
      unmount(`/proc/${b}`);
      unmount(`/proc/${hid}`);
      unmount(`/proc/${srv.pid}`);
    }

    const bundle = await readBundle(jsonOut.bundle);
    const fj = JSON.parse(bundle.files.get('artifacts/findings.json')!.toString()) as { findings: Finding[]; notes: string[] };
    expect(jsonOut.findings).toEqual(fj.findings);
    const has = (kind: string, pid: number): Finding | undefined => fj.findings.find((f) => f.kind === kind && f.pid === pid);
    expect(has('hidden_process', hid)?.detail).toMatch(new RegExp(`/proc/${hid} is a mount point.*; child of pid ${process.pid} \\(`));
    expect(has('hidden_process', hid)?.severity).toBe('critical');
    expect(has('masquerade', b)?.detail).toMatch(new RegExp(`reports pid ${a}`));
    const hs = has('hidden_process', srv.pid!);
    expect(hs?.detail).toMatch(/mount point.*read through its thread \/proc\/\d+/);
    expect(hs?.exe).toBe(fs.realpathSync(process.execPath));
    const listening = JSON.parse(bundle.files.get('artifacts/listening.json')!.toString()) as {
      listening: Array<{ port: number; owners: Array<{ pid: number }> }>;
    };
    expect(listening.listening.find((l) => l.port === port)?.owners.map((o) => o.pid)).toEqual([srv.pid]);
    expect(fj.findings.find((f) => f.kind === 'unowned_listener' && f.path?.endsWith(`:${port}`))).toBeUndefined();
    expect(has('hidden_process', b)).toBeDefined();
    expect(has('masquerade', a)).toBeUndefined();
    expect(has('deleted_executable', del)).toMatchObject({ exe: copy, severity: 'high' });
    if (exeDir.startsWith('/tmp/')) expect(has('executable_in_tmp', del)).toBeDefined();

    // the running deleted executable was copied, and the manifest lists the copy with its sha256
    const exes = JSON.parse(bundle.files.get('artifacts/executables.json')!.toString()) as {
      executables: Array<{ pids: number[]; copy: string | null; sha256: string }>;
    };
    const e = exes.executables.find((x) => x.pids.includes(del))!;
    expect(e.sha256).toBe(sleepSha);
    expect(e.copy).toMatch(/^raw\/exe-copies\//);
    const top = path.basename(jsonOut.bundle, '.tar.gz');
    expect(crypto.createHash('sha256').update(bundle.files.get(e.copy!)!).digest('hex')).toBe(sleepSha);
    const manifest = bundle.manifest as { artifacts: Array<{ name: string; file: string; sha256: string }> };
    expect(manifest.artifacts.find((x) => x.file === e.copy || x.file === `${top}/${e.copy}` || x.name === e.copy)?.sha256).toBe(sleepSha);
    // memory maps of the processes with a finding
    const maps = JSON.parse(bundle.files.get('artifacts/maps.json')!.toString()) as { maps: Array<{ pid: number; file: string | null; suspicious: string[] }> };
    const m = maps.maps.find((x) => x.pid === del)!;
    expect(m.file).toBe(`raw/proc/${del}/maps`);
    expect(m.suspicious.join('\n')).toContain(`${copy} (deleted)`);
    // the hidden server's maps were read through one of its threads
    expect(maps.maps.find((x) => x.pid === srv.pid)?.file).toBe(`raw/proc/${srv.pid}/maps`);
    expect(integ(['verify', jsonOut.bundle]).code).toBe(0);

    // the triage summary ends the text output: one line per finding with severity, kind, pid, executable
    const tail = textOut.slice(textOut.indexOf('\ntriage: '));
    expect(tail).toMatch(/^\ntriage: \d+ findings?\n/);
    const lines = tail.split('\n');
    const line = (kind: string, pid: number): string | undefined => lines.find((l) => new RegExp(`^  \\S+\\s+${kind}\\s+pid ${pid}\\s`).test(l));
    expect(line('hidden_process', hid)).toMatch(/CRITICAL/);
    expect(line('masquerade', b)).toMatch(/CRITICAL/);
    expect(line('deleted_executable', del)).toContain(copy);
  });
});
