import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fileStatOf } from '../../src/scan/fileio.js';
import { readSymlink, recordFromStat, type ScanJob } from '../../src/scan/scan-entry.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-readlink-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const job = (p: string): ScanJob => ({ id: 1, path: Buffer.from(p), real: Buffer.from(p), algos: ['blake3'], growing: false, prefixLen: null });

describe('a symlink replaced between lstat and readlink', () => {
  it('is reported as ERACE (the documented code), not EINVAL', () => {
    const p = path.join(dir, 'link');
    fs.symlinkSync('/etc/hostname', p);
    const st = fileStatOf(fs.lstatSync(p, { bigint: true }));
    fs.rmSync(p);
    fs.writeFileSync(p, 'now a regular file'); // the race, made deterministic
    const r = readSymlink(job(p), recordFromStat(Buffer.from(p), st));
    expect(r).toMatchObject({ ok: false, code: 'ERACE' });
    expect(r.ok ? '' : r.message).toMatch(/replaced between lstat and readlink/);
  });

  it('still reads an unchanged symlink, and reports a vanished one as ENOENT', () => {
    const p = path.join(dir, 'ok');
    fs.symlinkSync('target', p);
    const st = fileStatOf(fs.lstatSync(p, { bigint: true }));
    const r = readSymlink(job(p), recordFromStat(Buffer.from(p), st));
    expect(r.ok && r.rec.target?.toString()).toBe('target');
    fs.rmSync(p);
    expect(readSymlink(job(p), recordFromStat(Buffer.from(p), st))).toMatchObject({ ok: false, code: 'ENOENT' });
  });
});
