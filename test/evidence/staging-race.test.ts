/**
 * Issue 13 item 1: the evidence staging race, reproduced with a real hostile process (a
 * child running as nobody) that renames the staging folder, plants a symlink in its place
 * and swaps the reserved .partial. Before the fix the writer followed the planted names:
 * a root-owned folder elsewhere went 0755 -> 0700, root files were written into it, and
 * the staging tree stayed behind in the output folder.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BundleWriter } from '../../src/evidence/bundle-writer.js';
import { IntegError } from '../../src/util/errors.js';
import { NOW } from './bundle-fixtures.js';
import { REPO, integ } from '../helpers/cli.js';

const NOBODY = 65534;
const canDrop = process.geteuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;
if (!canDrop) console.warn('staging-race tests skipped: they need root and setpriv to run the attacker as nobody');

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A world-traversable scene: out (root), loot (nobody's), victim (root, 0755, one file), the attacker script. */
function scene(): { base: string; out: string; loot: string; victim: string; attacker: string } {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-race-'));
  dirs.push(base);
  fs.chmodSync(base, 0o755);
  const out = path.join(base, 'out');
  fs.mkdirSync(out, { mode: 0o700 });
  const loot = path.join(base, 'loot');
  fs.mkdirSync(loot);
  fs.chownSync(loot, NOBODY, NOBODY);
  const victim = path.join(base, 'victim');
  fs.mkdirSync(victim);
  fs.chmodSync(victim, 0o755);
  fs.writeFileSync(path.join(victim, 'keep'), 'root data\n');
  fs.chmodSync(path.join(victim, 'keep'), 0o644);
  const attacker = path.join(base, 'staging-attacker.cjs');
  fs.copyFileSync(path.join(REPO, 'test/helpers/staging-attacker.cjs'), attacker);
  fs.chmodSync(attacker, 0o644);
  return { base, out, loot, victim, attacker };
}

/** Every entry under dir, recursively, with its owner (symlinks not followed). */
function owners(dir: string): Array<[string, number]> {
  const res: Array<[string, number]> = [];
  for (const n of fs.readdirSync(dir)) {
    const p = path.join(dir, n);
    const st = fs.lstatSync(p);
    res.push([path.relative(dir, p), st.uid]);
    if (st.isDirectory()) for (const [q, u] of owners(p)) res.push([path.join(n, q), u]);
  }
  return res;
}

describe.runIf(canDrop)('BundleWriter against a hostile local user (real concurrent process)', () => {
  it('a swapped staging folder and .partial: nothing outside is touched, nothing is published, nothing of ours is left', async () => {
    const s = scene();
    const w = await BundleWriter.create({ outDir: s.out, hostname: 'web1', now: NOW });
    await w.addFile('first.json', '{}');
    // The folder's permissions change under the running writer (an administrator's chmod, a
    // shared mount): from here on another user can rename and plant entries in it.
    fs.chmodSync(s.out, 0o777);
    const r = spawnSync(
      'setpriv',
      [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, s.attacker, s.out, s.loot, s.victim, 'once'],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout.trim().split('\n')[0] ?? '{}') as { renamed: boolean; planted: boolean; partial: boolean; errors: string[] };
    // The attack itself must have happened, or this test proves nothing.
    expect(report).toMatchObject({ renamed: true, planted: true, partial: true, errors: [] });

    // The write goes through the descriptor into our real (renamed) staging folder, not through the planted link …
    const writes = await w.addFile('artifacts/processes.json', '[]').then(
      () => 'ok',
      (e: unknown) => e,
    );
    expect(writes).toBe('ok');
    // … and sealing notices the swap: nothing is published.
    const sealed = await w.seal({ manifest: {} }).then(
      () => 'sealed',
      (e: unknown) => e,
    );
    expect(sealed).toBeInstanceOf(IntegError);
    expect((sealed as IntegError).exitCode).toBe(73);
    expect((sealed as Error).message).toMatch(/was tampered with during the run: \.integ-web1-20261121T230000Z\.staging-\d+-\w{6} was replaced/);

    expect(fs.statSync(s.victim).mode & 0o7777).toBe(0o755);
    expect(fs.readdirSync(s.victim)).toEqual(['keep']);
    expect(fs.statSync(path.join(s.victim, 'keep')).mode & 0o7777).toBe(0o644);
    // No bundle published; what remains in the writable folders is only the attacker's own.
    expect(fs.readdirSync(s.out).filter((n) => n.endsWith('.tar.gz'))).toEqual([]);
    for (const [p, uid] of [...owners(s.out), ...owners(s.loot)]) expect([p, uid]).toEqual([p, NOBODY]);
  });

  it('only the .partial swapped for a forged file: the forgery is never published under our name', async () => {
    const s = scene();
    const w = await BundleWriter.create({ outDir: s.out, hostname: 'web1', now: NOW });
    await w.addFile('artifacts/processes.json', '[]');
    fs.chmodSync(s.out, 0o777);
    const r = spawnSync(
      'setpriv',
      [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, s.attacker, s.out, s.loot, s.victim, 'partial'],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n')[0] ?? '{}')).toMatchObject({ renamed: false, partial: true, errors: [] });
    const err = await w.seal({ manifest: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegError);
    expect((err as IntegError).exitCode).toBe(73);
    expect((err as Error).message).toMatch(/integ-web1-20261121T230000Z\.tar\.gz\.partial was replaced/);
    expect(fs.existsSync(path.join(s.out, 'integ-web1-20261121T230000Z.tar.gz'))).toBe(false);
    // Our staging folder and our real .partial (renamed by the attacker) are gone; the forgery is the attacker's.
    for (const [p, uid] of owners(s.out)) expect([p, uid]).toEqual([p, NOBODY]);
    expect(fs.readFileSync(path.join(s.out, 'integ-web1-20261121T230000Z.tar.gz.partial'), 'utf8')).toBe('forged bundle\n');
  });
});

/** Start the attacker watching `out` (inotify) as nobody; resolves once it watches. */
async function watcher(s: ReturnType<typeof scene>): Promise<{ child: ChildProcessWithoutNullStreams; lines: () => Array<Record<string, unknown>> }> {
  const child = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, s.attacker, s.out, s.loot, s.victim, 'watch']);
  let text = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      text += b.toString();
      if (text.includes('"watching":true')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`attacker exited ${code}`)));
  });
  const lines = (): Array<Record<string, unknown>> =>
    text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => !('watching' in l));
  return { child, lines };
}

async function stop(child: ChildProcessWithoutNullStreams): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

describe.runIf(canDrop && process.platform === 'linux')('integ snapshot --out a folder other users can write (a real attacker watching it)', () => {
  it('a 0777 folder without the sticky bit: refused with 73 and one line; the attacker never gets a staging folder', async () => {
    const s = scene();
    fs.chmodSync(s.out, 0o777);
    const a = await watcher(s);
    try {
      const r = integ(['snapshot', '--out', s.out]);
      expect(r.code, r.stderr).toBe(73);
      expect(r.stderr).toMatch(/^integ: refusing to write evidence into .*\/out: .*\/out is writable by every user and has no sticky bit \(mode 0777\)/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      await stop(a.child);
    }
    expect(a.lines()).toEqual([]);
    expect(fs.readdirSync(s.out)).toEqual([]);
    expect(fs.statSync(s.victim).mode & 0o7777).toBe(0o755);
    expect(fs.readdirSync(s.victim)).toEqual(['keep']);
  });

  it('a private folder inside a 0777 one (whose user could rename the folder itself): refused with 73, nothing written', () => {
    const s = scene();
    fs.chmodSync(s.base, 0o777);
    const r = integ(['snapshot', '--out', s.out]);
    expect(r.code, r.stderr).toBe(73);
    expect(r.stderr).toContain(`${s.base} is writable by every user and has no sticky bit (mode 0777)`);
    expect(fs.readdirSync(s.out)).toEqual([]);
  });

  it('a 1777 folder (sticky, like /tmp): the snapshot completes; the attacker cannot rename our entries', async () => {
    const s = scene();
    fs.chmodSync(s.out, 0o1777);
    const a = await watcher(s);
    let r: ReturnType<typeof integ>;
    try {
      r = integ(['snapshot', '--out', s.out, '--format', 'json']);
    } finally {
      await stop(a.child);
    }
    expect(r.code, r.stderr).toBe(0);
    const bundle = (JSON.parse(r.stdout) as { bundle: string }).bundle;
    // The attacker did try (it saw the staging folder) and was refused by the kernel.
    const tries = a.lines();
    expect(tries.length).toBeGreaterThan(0);
    for (const t of tries) expect(t).toMatchObject({ renamed: false, partial: false });
    expect(fs.readdirSync(s.out)).toEqual([path.basename(bundle)]);
    expect(integ(['verify', bundle]).code).toBe(0);
    expect(fs.statSync(s.victim).mode & 0o7777).toBe(0o755);
    expect(fs.readdirSync(s.victim)).toEqual(['keep']);
    for (const [p, uid] of owners(s.loot)) expect([p, uid]).toEqual([p, NOBODY]);
  });
});
