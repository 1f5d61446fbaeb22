import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collectConfig } from '../../src/evidence/collectors/config.js';
import { createRequire } from 'node:module';
import { collectExecutables } from '../../src/evidence/collectors/executables.js';

/** The reference: blake3-wasm, independent of integ's own SIMD implementation. */
const oracle = createRequire(import.meta.url)('blake3-wasm') as { createHash(): { update(b: Uint8Array): { digest(enc: 'hex'): string } } };
import { readProcess } from '../../src/evidence/collectors/processes.js';
import { cleanupTmp, copyTree, ctxFor, FSROOT, PROC, tmpDir } from './collect-helpers.js';

afterAll(cleanupTmp);

const ABC_SHA256 = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const ABC_BLAKE3 = '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85';

describe('collectExecutables', () => {
  it('hashes each distinct executable once, listing every pid running it', async () => {
    const procs = [1, 777, 4242].map((pid) => readProcess(PROC, pid, { btime: null, users: new Map(), maxFds: 10 }, [])!);
    const out = await collectExecutables(ctxFor(), procs);
    expect(out.errors).toEqual([]);
    const exes = (out.json[0]!.data as any).executables;
    expect(exes).toHaveLength(2);
    const sshd = exes.find((e: any) => e.path.endsWith('fake-sshd'));
    expect(sshd).toMatchObject({ pids: [777, 4242], deleted: false, size: 3, sha256: ABC_SHA256, blake3: ABC_BLAKE3, error: null });
  });

  it('counts the processes whose executable could not be read, leaving out kernel threads', async () => {
    const procs = [1, 2, 4242].map((pid) => readProcess(PROC, pid, { btime: null, users: new Map(), maxFds: 10 }, [])!);
    procs[2] = { ...procs[2]!, exe_link: null, exe: null, exe_dev: null, exe_ino: null };
    const data = (await collectExecutables(ctxFor(), procs)).json[0]!.data as any;
    expect(data.pids_without_exe).toEqual([4242]);
    expect(data.executables.map((e: any) => e.pids)).toEqual([[1]]);
  });

  it('finds the executables itself when the core step did not run', async () => {
    const out = await collectExecutables(ctxFor(), undefined);
    const exes = (out.json[0]!.data as any).executables;
    expect(exes.map((e: any) => e.pids)).toEqual([[777, 4242], [1]]);
  });

  it('hashes a file larger than one read chunk correctly, and refuses one over the bound', async () => {
    const proc = tmpDir('exe');
    const bin = path.join(proc, 'big.bin');
    const bytes = crypto.randomBytes(3 * 1024 * 1024 + 7);
    fs.writeFileSync(bin, bytes);
    fs.mkdirSync(path.join(proc, '50'));
    fs.symlinkSync(bin, path.join(proc, '50/exe'));
    const st = fs.statSync(bin);
    const ref = { pid: 50, exe_link: bin, exe: bin, exe_deleted: false, exe_dev: st.dev, exe_ino: st.ino } as any;
    const out = await collectExecutables(ctxFor({ procRoot: proc }), [ref]);
    const e = (out.json[0]!.data as any).executables[0];
    expect(e.sha256).toBe(crypto.createHash('sha256').update(bytes).digest('hex'));
    expect(e.blake3).toBe(oracle.createHash().update(bytes).digest('hex'));
    expect(e.size).toBe(bytes.length);

    const bounded = await collectExecutables(ctxFor({ procRoot: proc }), [ref], { maxBytes: 1024 });
    const b = (bounded.json[0]!.data as any).executables[0];
    expect(b).toMatchObject({ sha256: null, blake3: null, size: bytes.length });
    expect(b.error).toMatch(/^EFBIG/);
    expect(bounded.errors).toEqual([expect.objectContaining({ code: 'EFBIG', artifact: 'executables' })]);
  });

  it('does not hash a file that is no longer the one the process ran', async () => {
    const proc = tmpDir('exe');
    fs.writeFileSync(path.join(proc, 'a'), 'a');
    fs.mkdirSync(path.join(proc, '60'));
    fs.symlinkSync(path.join(proc, 'a'), path.join(proc, '60/exe'));
    const ref = { pid: 60, exe_link: 'x', exe: 'x', exe_deleted: false, exe_dev: 1, exe_ino: 1 } as any;
    const out = await collectExecutables(ctxFor({ procRoot: proc }), [ref]);
    expect((out.json[0]!.data as any).executables[0]).toMatchObject({ sha256: null, error: expect.stringMatching(/^ECHANGED/) });
  });

  it('stops at the deadline and marks what was not hashed', async () => {
    const procs = [1, 4242].map((pid) => readProcess(PROC, pid, { btime: null, users: new Map(), maxFds: 10 }, [])!);
    const out = await collectExecutables(ctxFor({ deadline: Date.now() - 1 }), procs);
    expect((out.json[0]!.data as any).executables.every((e: any) => e.sha256 === null && /TIMEOUT/.test(e.error))).toBe(true);
    expect(out.errors.some((e) => e.code === 'TIMEOUT')).toBe(true);
  });
});

describe('collectConfig', () => {
  it('copies the listed files, follows resolv.conf into /run under the root, and lists recent units', async () => {
    const out = await collectConfig(ctxFor());
    expect(out.errors).toEqual([]);
    const files = (out.json[0]!.data as any).files as any[];
    const byPath = new Map(files.map((f) => [f.path, f]));
    expect(byPath.get('/etc/resolv.conf')).toMatchObject({ type: 'symlink', symlink_target: '/run/systemd/resolve/stub-resolv.conf', copy: null });
    expect(byPath.get('/run/systemd/resolve/stub-resolv.conf')).toMatchObject({ type: 'file', copy: 'raw/config/run/systemd/resolve/stub-resolv.conf' });
    const hosts = byPath.get('/etc/hosts');
    expect(hosts.sha256).toBe(
      crypto
        .createHash('sha256')
        .update(fs.readFileSync(path.join(FSROOT, 'etc/hosts')))
        .digest('hex'),
    );
    for (const p of [
      '/etc/crontab',
      '/etc/cron.d/backup',
      '/var/spool/cron/crontabs/root',
      '/etc/systemd/system/legit.service',
      '/usr/lib/systemd/system/ssh.service',
    ])
      expect(byPath.get(p)?.type).toBe('file');
    expect(byPath.get('/etc/systemd/system/multi-user.target.wants/legit.service')).toMatchObject({
      type: 'symlink',
      symlink_target: '/etc/systemd/system/legit.service',
    });
    const raw = new Map(out.raw.map((r) => [r.file, r.data]));
    expect(raw.get('config/etc/cron.d/backup')!.toString()).toContain('curl');
  });

  it('leaves out units not changed within the window', async () => {
    const out = await collectConfig(ctxFor(), { now: Date.now() + 30 * 86400_000 });
    const paths = ((out.json[0]!.data as any).files as any[]).map((f) => f.path);
    expect(paths).toContain('/etc/hosts');
    expect(paths.some((p) => p.includes('systemd/system'))).toBe(false);
  });

  it('lists a FIFO without opening it, and makes odd file names safe for the bundle', async () => {
    const root = tmpDir('config');
    copyTree(FSROOT, root);
    execFileSync('mkfifo', [path.join(root, 'etc/cron.d/pipe')]);
    fs.writeFileSync(path.join(root, 'etc/cron.d/new\nline'), '* * * * * root id\n');
    const out = await collectConfig(ctxFor({ fsRoot: root }));
    const files = (out.json[0]!.data as any).files as any[];
    expect(files.find((f) => f.path === '/etc/cron.d/pipe')).toMatchObject({ type: 'fifo', copy: null, sha256: null });
    expect(files.find((f) => f.path === '/etc/cron.d/new\nline')).toMatchObject({ copy: 'raw/config/etc/cron.d/new%0Aline' });
    expect(out.raw.map((r) => r.file)).toContain('config/etc/cron.d/new%0Aline');
  });

  it('stops at its count and byte bounds and says so', async () => {
    const few = await collectConfig(ctxFor(), { maxFiles: 2 });
    expect(((few.json[0]!.data as any).files as any[]).length).toBe(2);
    expect(few.errors).toEqual([expect.objectContaining({ code: 'ELIMIT' })]);
    const small = await collectConfig(ctxFor(), { maxFileBytes: 10 });
    const hosts = ((small.json[0]!.data as any).files as any[]).find((f) => f.path === '/etc/hosts');
    expect(hosts).toMatchObject({ truncated: true, sha256: null });
    expect(small.raw.find((r) => r.file === 'config/etc/hosts')!.data.length).toBe(10);
  });
});
