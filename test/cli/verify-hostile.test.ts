/**
 * Issue 13 items 5 and 7: verify is bounded (bytes after the end of the archive, devices,
 * FIFOs, time) and prints hostile entry names escaped.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import * as tar from 'tar';
import { afterAll, describe, expect, it } from 'vitest';
import { readBundle } from '../../src/evidence/bundle-reader.js';
import { DataError, InterruptedError } from '../../src/util/errors.js';
import { extract, makeBundle } from '../evidence/bundle-fixtures.js';
import { integ, tmpdir } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function dir(): string {
  const d = tmpdir();
  dirs.push(d);
  return d;
}

/** A sealed bundle's tar with `zeros` bytes of zeros after its end, gzipped again (a generated bomb). */
async function withTrailingZeros(bundle: string, zeros: number, out: string): Promise<void> {
  const tarBytes = zlib.gunzipSync(fs.readFileSync(bundle));
  const gz = zlib.createGzip({ level: 9 });
  const chunks: Buffer[] = [];
  gz.on('data', (c: Buffer) => chunks.push(c));
  gz.write(tarBytes);
  const block = Buffer.alloc(1 << 20);
  for (let n = 0; n < zeros; n += block.length) gz.write(block.subarray(0, Math.min(block.length, zeros - n)));
  gz.end();
  await new Promise<void>((resolve) => gz.once('end', () => resolve()));
  fs.writeFileSync(out, Buffer.concat(chunks));
}

describe('integ verify against hostile input', () => {
  it('a valid bundle followed by 64 MiB of zeros after the tar end: stops after 1 MiB, exit 16 naming the trailing data', async () => {
    const d = dir();
    const sealed = await makeBundle(path.join(d, 'ev'));
    const bomb = path.join(d, 'bomb.tar.gz');
    await withTrailingZeros(sealed.path, 64 << 20, bomb);
    // The bomb decompresses to the whole bundle plus the zeros (the tamper happened).
    expect(zlib.gunzipSync(fs.readFileSync(bomb)).length).toBe(zlib.gunzipSync(fs.readFileSync(sealed.path)).length + (64 << 20));
    const r = integ(['verify', bomb]);
    expect(r.code, r.stderr).toBe(16);
    expect(r.stdout).toMatch(/^CORRUPT archive: more than 1048576 bytes of data after the end of the archive/m);
    expect(r.stdout).toMatch(/^FAILED integ-web1-20261121T230000Z: 1 problem;/m);
    // The tar side stops early, but the file is still hashed to its end for the responder's notes.
    expect(r.stdout).toContain(`archive sha256: ${crypto.createHash('sha256').update(fs.readFileSync(bomb)).digest('hex')}\n`);
    // The same bundle unaltered still verifies; a little tar padding is not a problem either.
    expect(integ(['verify', sealed.path]).code).toBe(0);
    const padded = path.join(d, 'padded.tar.gz');
    await withTrailingZeros(sealed.path, 10240, padded);
    expect(integ(['verify', padded]).code).toBe(0);
  });

  it('a gzip bomb of junk (64 MiB of "A", no tar at all) ends after a bounded number of problems', async () => {
    const d = dir();
    const bomb = path.join(d, 'junk.tar.gz');
    fs.writeFileSync(bomb, zlib.gzipSync(Buffer.alloc(64 << 20, 0x41), { level: 9 }));
    expect(fs.statSync(bomb).size).toBeLessThan(1 << 20);
    const b = await readBundle(bomb);
    expect(b.problems.at(-1)).toBe('CORRUPT archive: more than 1000 problems; stopped reading');
    expect(b.problems.length).toBe(1001);
    expect(b.archiveSha256).toBe(crypto.createHash('sha256').update(fs.readFileSync(bomb)).digest('hex'));
    const r = integ(['verify', bomb]);
    expect(r.code).toBe(16);
    // verify names one problem per kind and file: one CORRUPT archive line, not thousands
    expect(r.stdout).toMatch(/^CORRUPT archive: /m);
    expect(r.stdout.trimEnd().split('\n').length).toBeLessThan(10);
  });

  it('verify /dev/zero: refused with 65 before reading', () => {
    const r = integ(['verify', '/dev/zero']);
    expect(r.code).toBe(65);
    expect(r.stderr).toBe('integ: bundle /dev/zero is a character device, not a .tar.gz file or a folder; refusing to read it\n');
  });

  it('a FIFO as the bundle, or as --verify-key, is refused with 65 instead of waiting for a writer', async () => {
    const d = dir();
    const fifo = path.join(d, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const r = integ(['verify', fifo]);
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/^integ: bundle .*fifo is a FIFO, not a \.tar\.gz file or a folder; refusing to read it\n$/);
    const sealed = await makeBundle(path.join(d, 'ev'));
    const k = integ(['verify', sealed.path, '--verify-key', fifo]);
    expect(k.code).toBe(65);
    expect(k.stderr).toMatch(/^integ: public key .*fifo is not a regular file \(a FIFO\)\n$/);
  });

  it('an abort (SIGINT/SIGTERM in the CLI) ends a read in progress with InterruptedError (130)', async () => {
    const d = dir();
    const sealed = await makeBundle(path.join(d, 'ev'));
    const big = path.join(d, 'big.tar.gz');
    await withTrailingZeros(sealed.path, 900 << 10, big);
    const ac = new AbortController();
    const reading = readBundle(big, { signal: ac.signal });
    setImmediate(() => ac.abort(new InterruptedError('interrupted by SIGTERM')));
    const err = await reading.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect((err as InterruptedError).exitCode).toBe(130);
  });

  it('reading is bounded in time and in entries (65)', async () => {
    const d = dir();
    const sealed = await makeBundle(path.join(d, 'ev'));
    const big = path.join(d, 'big.tar.gz');
    await withTrailingZeros(sealed.path, 512 << 10, big);
    const slow = await readBundle(big, { timeoutMs: 0 }).catch((e: unknown) => e);
    expect(slow).toBeInstanceOf(DataError);
    expect((slow as Error).message).toMatch(/not read within the time limit \(0 s\)/);
    const many = await readBundle(sealed.path, { maxEntries: 3 }).catch((e: unknown) => e);
    expect(many).toBeInstanceOf(DataError);
    expect((many as Error).message).toMatch(/larger than the reading limit/);
  });
});

describe('integ verify prints hostile entry names escaped', () => {
  it('escape sequences, newlines and bidi overrides in names cannot clear the screen or forge an OK line', async () => {
    const d = dir();
    const sealed = await makeBundle(path.join(d, 'ev'));
    const top = extract(sealed.path, path.join(d, 'x'));
    const evil = ['\u001b[2Jcleared', 'x\nOK integ-web1: 9 files match', 'abc\u202egnp.exe', '\u2066iso\u2069', 'c1\u0085next'];
    for (const n of evil) fs.writeFileSync(path.join(top, 'artifacts', n), 'planted');
    const bad = path.join(d, 'bad.tar.gz');
    await tar.c({ gzip: true, file: bad, cwd: path.dirname(top) }, [path.basename(top)]);
    for (const args of [[bad], [top]]) {
      const r = integ(['verify', ...args]);
      expect(r.code).toBe(16);
      // Every byte printed is printable: no ESC, no C1 control, no bidi control, and one line per problem.
      expect(r.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines.filter((l) => l.startsWith('OK '))).toEqual([]);
      expect(lines).toContain('ADDED artifacts/\\x1b[2Jcleared: not listed in SHA256SUMS');
      expect(lines).toContain('ADDED artifacts/x\\nOK integ-web1: 9 files match: not listed in SHA256SUMS');
      expect(lines).toContain('ADDED artifacts/abc\\u202egnp.exe: not listed in SHA256SUMS');
      expect(lines).toContain('ADDED artifacts/\\u2066iso\\u2069: not listed in SHA256SUMS');
      expect(lines).toContain('ADDED artifacts/c1\\u0085next: not listed in SHA256SUMS');
      // JSON keeps the exact names (JSON.stringify escapes what must be escaped).
      const j = JSON.parse(integ(['verify', ...args, '--format', 'json']).stdout) as { problems: Array<{ file: string }> };
      for (const n of evil) expect(j.problems.map((p) => p.file)).toContain(`artifacts/${n}`);
    }
  });
});
