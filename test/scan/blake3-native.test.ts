import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { blake3Implementation, disableNativeBlake3, threadNativeBlake3 } from '../../src/scan/blake3-native.js';
import { NATIVE_MIN, READ_SIZE, scanEntry, type ScanJob } from '../../src/scan/scan-entry.js';
import { tmpdir } from '../helpers/cli.js';

// The oracle: blake3-wasm, independent of both integ hashers.
const oracleLib = createRequire(import.meta.url)('blake3-wasm') as { createHash(): { update(b: Uint8Array): { digest(e: 'hex'): string } } };
const oracle = (b: Uint8Array): string => oracleLib.createHash().update(b).digest('hex');

const dir = tmpdir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** deterministic bytes (seeded), so a failure can be replayed */
function bytes(n: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 255;
  }
  return out;
}

const SIZES = [
  0,
  1,
  63,
  64,
  65,
  1023,
  1024,
  1025,
  2047,
  2048,
  2049,
  4096,
  16 * 1024 + 3,
  65536,
  65537,
  READ_SIZE - 1,
  READ_SIZE,
  READ_SIZE + 1,
  1024 * 1024 + 7,
];

describe('native BLAKE3 (@napi-rs/blake-hash)', () => {
  const h = threadNativeBlake3();

  it('loads here, or says why not', () => {
    console.log(`BLAKE3 for large files: ${blake3Implementation()}`);
    if (!h) expect(blake3Implementation()).toMatch(/^wasm \(/);
    else expect(blake3Implementation()).toMatch(/^native/);
  });

  it('agrees with blake3-wasm at every chunk and read boundary, fed in uneven pieces, and after reset', () => {
    if (!h) return console.log('skipped: the native BLAKE3 binary is not available on this platform');
    for (const [k, n] of SIZES.entries()) {
      const data = bytes(n, k + 1);
      h.reset();
      h.update(data);
      expect(h.digest('hex'), `size ${n}`).toBe(oracle(data));
      h.reset();
      for (let off = 0, piece = 1; off < n; off += piece, piece = (piece * 7 + 3) % 70000 || 1) h.update(data.subarray(off, Math.min(n, off + piece)));
      expect(h.digest('hex'), `size ${n} in pieces`).toBe(oracle(data));
    }
  });

  it("takes a digest midway without ending the hash (the growing rule's prefix digest)", () => {
    if (!h) return console.log('skipped: the native BLAKE3 binary is not available on this platform');
    const data = bytes(300_000, 42);
    h.reset();
    h.update(data.subarray(0, 100_000));
    expect(h.digest('hex')).toBe(oracle(data.subarray(0, 100_000)));
    h.update(data.subarray(100_000));
    expect(h.digest('hex')).toBe(oracle(data));
  });
});

describe('scanEntry: native for large files, wasm for small ones, the same digests', () => {
  const buf = Buffer.allocUnsafe(READ_SIZE);
  const job = (p: string, over: Partial<ScanJob> = {}): ScanJob => ({
    id: 1,
    path: Buffer.from(p),
    real: Buffer.from(p),
    algos: ['blake3', 'sha256'],
    growing: false,
    prefixLen: null,
    ...over,
  });

  it('hashes files on both sides of the threshold exactly as blake3-wasm and sha256 do, with either hasher', () => {
    for (const n of [NATIVE_MIN - 1, NATIVE_MIN, NATIVE_MIN + 1, 3 * READ_SIZE + 5]) {
      const data = bytes(n, n);
      const f = path.join(dir, `f${n}`);
      fs.writeFileSync(f, data);
      for (const off of [false, true]) {
        disableNativeBlake3(off);
        try {
          const r = scanEntry(job(f), buf);
          expect(r.ok, `size ${n}`).toBe(true);
          expect(r.rec?.blake3, `size ${n}, native ${!off}`).toBe(oracle(data));
          expect(r.rec?.sha256).toBe(crypto.createHash('sha256').update(data).digest('hex'));
        } finally {
          disableNativeBlake3(false);
        }
      }
    }
  });

  it("takes the growing rule's prefix digest inside a read with the native hasher", () => {
    const data = bytes(2 * READ_SIZE + 100, 9);
    const f = path.join(dir, 'growing');
    fs.writeFileSync(f, data);
    const prefixLen = READ_SIZE + 1234;
    const r = scanEntry(job(f, { algos: ['blake3'], growing: true, prefixLen }), buf);
    expect(r.ok).toBe(true);
    expect(r.rec?.prefixBlake3).toBe(oracle(data.subarray(0, prefixLen)));
    expect(r.rec?.blake3).toBe(oracle(data));
  });
});
