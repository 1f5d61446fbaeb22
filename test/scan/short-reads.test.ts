import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { tmpdir } from '../helpers/cli.js';
import { mulberry32 as prng } from '../../bench/lib/tree.js';

/**
 * Every read(2) of the scan cut short, at a different length each time (a network file system
 * may answer so; a local one never does for a regular file). Everything must still come out as
 * with whole reads: the scan's BLAKE3, and the MD5 of a file read into a lane piece by piece.
 */
const rnd = prng(11);
vi.mock('../../src/scan/fileio.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/scan/fileio.js')>();
  const cut = (len: number): number => Math.min(len, 1 + Math.floor(rnd() * 3000));
  return {
    ...real,
    readFile: (fd: number, buf: Buffer, len: number): number => real.readFile(fd, buf, cut(len)),
    readNoWait: (fd: number, buf: Buffer, len: number, dev: number): number | null => real.readNoWait(fd, buf, cut(len), dev),
  };
});

const { scanBatch } = await import('../../src/scan/scan-entry.js');
const { md5Files, LANE_READ } = await import('../../src/scan/md5-lanes.js');

const b3 = createRequire(import.meta.url)('blake3-wasm') as { createHash(): { update(b: Uint8Array): { digest(e: 'hex'): string } } };
const md5 = (b: Uint8Array): string => crypto.createHash('md5').update(b).digest('hex');
const dir = tmpdir('integ-short-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('reads cut short', () => {
  const sizes = [0, 1, 63, 64, 65, 2047, 2048, 9000, 65_536, LANE_READ - 1, LANE_READ, LANE_READ + 1, 300_000];
  const files = sizes.map((s, i) => {
    const f = path.join(dir, `f${i}`);
    fs.writeFileSync(f, crypto.randomBytes(s));
    return f;
  });

  it('scanBatch: the same BLAKE3, and each file that fits a lane gets its right MD5 from the pieces', () => {
    const jobs = files.map((f, i) => ({
      id: i + 1,
      path: Buffer.from(f),
      real: Buffer.from(f),
      algos: ['blake3' as const],
      growing: false,
      prefixLen: null,
      md5Lanes: true,
    }));
    const got = scanBatch(jobs, Buffer.allocUnsafe(256 * 1024));
    files.forEach((f, i) => {
      const data = fs.readFileSync(f);
      expect(got[i]).toMatchObject({ ok: true, rec: { blake3: b3.createHash().update(data).digest('hex') } });
      expect(got[i]!.rec!.extra?.md5).toBe(data.length <= LANE_READ ? md5(data) : undefined);
    });
  });

  it('md5Files: the right MD5 of every file', () => {
    const jobs = files.map((f) => {
      const st = fs.lstatSync(f, { bigint: true });
      return { real: Buffer.from(f), size: st.size, inode: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
    });
    expect(md5Files(jobs)).toEqual(files.map((f) => md5(fs.readFileSync(f))));
  });
});
