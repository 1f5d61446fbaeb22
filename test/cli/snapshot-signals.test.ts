/**
 * Issue 13 item 10: SIGHUP (an SSH disconnect) and SIGQUIT during a snapshot clean up like
 * SIGINT/SIGTERM; what a kill -9 leaves behind is swept by a later run, conservatively.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, integ, tmpdir } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function outDir(): string {
  const d = tmpdir();
  dirs.push(d);
  const out = path.join(d, 'ev');
  fs.mkdirSync(out, { mode: 0o700 });
  return out;
}

/** Start `integ snapshot --out out` and resolve once its staging folder and .partial exist (inotify events, not a sleep). */
async function startSnapshot(
  out: string,
): Promise<{ child: ChildProcess; staging: string; stderr: () => string; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }> {
  const seen = new Promise<string>((resolve) => {
    const look = (): boolean => {
      const names = fs.readdirSync(out);
      const s = names.find((n) => n.includes('.staging-'));
      if (s && names.some((n) => n.endsWith('.tar.gz.partial'))) {
        watcher.close();
        resolve(s);
      }
      return false;
    };
    const watcher = fs.watch(out, () => look());
  });
  const child = spawn(process.execPath, [BIN, 'snapshot', '--out', out], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1', INTEG_LOG_LEVEL: 'error' },
  });
  let err = '';
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  const staging = await seen;
  return { child, staging, stderr: () => err, exit };
}

/** A pid that certainly ran and has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe.runIf(process.platform === 'linux')('snapshot and signals', () => {
  it.each(['SIGHUP', 'SIGQUIT', 'SIGTERM', 'SIGINT'] as const)('%s during a snapshot: exit 130, staging folder and .partial removed', async (sig) => {
    const out = outDir();
    const run = await startSnapshot(out);
    expect(fs.readdirSync(out).some((n) => n.endsWith('.tar.gz.partial'))).toBe(true);
    run.child.kill(sig);
    const { code, signal } = await run.exit;
    expect({ code, signal }).toEqual({ code: 130, signal: null });
    expect(run.stderr()).toContain(`${sig} received`);
    expect(fs.readdirSync(out)).toEqual([]);
  });

  it('kill -9 leaves staging and .partial; the next snapshot sweeps them and seals its own', async () => {
    const out = outDir();
    const run = await startSnapshot(out);
    run.child.kill('SIGKILL');
    await run.exit;
    const left = fs.readdirSync(out).sort();
    expect(left.some((n) => n.endsWith('.tar.gz.partial'))).toBe(true);
    expect(left).toContain(run.staging);
    expect(run.staging).toMatch(new RegExp(`\\.staging-${run.child.pid}-[A-Za-z0-9]{6}$`));
    const r = integ(['snapshot', '--out', out, '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const bundle = path.basename((JSON.parse(r.stdout) as { bundle: string }).bundle);
    expect(fs.readdirSync(out)).toEqual([bundle]);
  });

  it("sweeps only dead runs' own entries, never a live run's, another user's, or through a symlink", () => {
    const out = outDir();
    const base = 'integ-h-20260101T000000Z';
    const dead = deadPid();
    const mk = (name: string, uid = 0): string => {
      const p = path.join(out, name);
      fs.mkdirSync(path.join(p, 'inner'), { recursive: true });
      fs.writeFileSync(path.join(p, 'inner', 'f'), 'x');
      fs.chmodSync(p, 0o700); // as integ makes them
      fs.chownSync(p, uid, uid);
      return name;
    };
    const file = (name: string, uid = 0): string => {
      fs.writeFileSync(path.join(out, name), 'partial');
      fs.chownSync(path.join(out, name), uid, uid);
      return name;
    };
    // removed: a dead run's staging folder and its .partial (and a -2 one of the same second)
    const goneStaging = mk(`.${base}.staging-${dead}-abcdef`);
    const gonePartials = [file(`${base}.tar.gz.partial`), file(`${base}-2.tar.gz.partial`)];
    // kept: a live run (this test's own pid) with its .partial
    const liveBase = 'integ-h-20260101T000001Z';
    const kept = [mk(`.${liveBase}.staging-${process.pid}-ghijkl`), file(`${liveBase}.tar.gz.partial`)];
    // kept: another user's entries, even with a dead pid
    const otherBase = 'integ-h-20260101T000002Z';
    if (process.geteuid?.() === 0) kept.push(mk(`.${otherBase}.staging-${dead}-mnopqr`, 65534), file(`${otherBase}.tar.gz.partial`, 65534));
    // kept: a symlink named like a dead run's staging folder (not followed, not removed), and what it points to
    const target = path.join(path.dirname(out), 'elsewhere');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'precious'), 'x');
    const linkName = `.integ-h-20260101T000003Z.staging-${dead}-stuvwx`;
    fs.symlinkSync(target, path.join(out, linkName));
    kept.push(linkName);
    // kept: an older integ's staging folder without a pid, and the .partial of its base
    const oldBase = 'integ-h-20260101T000004Z';
    kept.push(mk(`.${oldBase}.staging-AbC123`), file(`${oldBase}.tar.gz.partial`));

    const r = integ(['snapshot', '--out', out, '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const bundle = path.basename((JSON.parse(r.stdout) as { bundle: string }).bundle);
    const now = fs.readdirSync(out);
    for (const n of [goneStaging, ...gonePartials]) expect(now).not.toContain(n);
    expect(now.sort()).toEqual([...kept, bundle].sort());
    expect(fs.readdirSync(target)).toEqual(['precious']);
  });
});

describe.runIf(process.platform === 'linux')('a run blocked before it can listen', () => {
  it('--log on a FIFO without a reader: SIGTERM still ends the run (it used to ignore it forever)', async () => {
    const out = outDir();
    const fifo = path.join(path.dirname(out), 'log.fifo');
    spawnSync('mkfifo', [fifo]);
    const child = spawn(process.execPath, [BIN, 'snapshot', '--out', out, '--log', fifo], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1' },
    });
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
    // Wait until the kernel reports the main thread blocked opening the FIFO (an event we can observe, not a guess).
    const wchan = `/proc/${child.pid}/wchan`;
    for (let i = 0; i < 2000 && child.exitCode === null; i += 1) {
      if (fs.existsSync(wchan) && fs.readFileSync(wchan, 'utf8') === 'wait_for_partner') break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(fs.readFileSync(wchan, 'utf8')).toBe('wait_for_partner');
    child.kill('SIGTERM');
    // A hang would be a failure: give it far more than enough, then make sure it is gone.
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const end = await exit;
    clearTimeout(guard);
    expect(end).toEqual({ code: null, signal: 'SIGTERM' });
    expect(fs.readdirSync(out)).toEqual([]);
  });
});
