import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { Blake3Simd, blake3SimdHex, simdSupported } from '../../src/scan/blake3-simd.js';
import { editText } from '../helpers/tamper.js';
import { mulberry32 as prng } from '../../bench/lib/tree.js'; // deterministic: a failure replays from its seed

// The oracle: blake3-wasm, the implementation the stack prescribes.
const oracleLib = createRequire(import.meta.url)('blake3-wasm') as {
  createHash(): { update(b: Uint8Array | string): { digest(enc: 'hex'): string } };
};
const oracle = (b: Uint8Array | string): string => oracleLib.createHash().update(b).digest('hex');

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const GEN = path.join(ROOT, 'tools/gen-blake3-wasm.mjs');
const KiB = 1024;
const MiB = 1024 * KiB;

/** the official test-vector input: byte i is i % 251 */
function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  return b;
}

function randomBytes(n: number, rnd: () => number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 4) {
    const x = (rnd() * 4294967296) >>> 0;
    b[i] = x & 255;
    if (i + 1 < n) b[i + 1] = (x >>> 8) & 255;
    if (i + 2 < n) b[i + 2] = (x >>> 16) & 255;
    if (i + 3 < n) b[i + 3] = x >>> 24;
  }
  return b;
}

/** the way scan-entry will use it: read straight into inputBuffer(), commit(n) */
function viaCommits(h: Blake3Simd, data: Uint8Array, piece = h.inputCapacity): string {
  const input = h.inputBuffer();
  for (let off = 0; off < data.length; off += piece) {
    const n = Math.min(piece, data.length - off);
    input.set(data.subarray(off, off + n));
    h.commit(n);
  }
  return h.digestHex();
}

/** feed data in the given piece sizes, each piece by update() or commit() at random */
function viaPieces(h: Blake3Simd, data: Uint8Array, sizes: number[], rnd: () => number): string {
  let off = 0;
  for (const size of sizes) {
    const piece = data.subarray(off, off + size);
    if (piece.length <= h.inputCapacity && rnd() < 0.5) {
      h.inputBuffer().set(piece);
      h.commit(piece.length);
    } else {
      h.update(piece);
    }
    off += piece.length;
  }
  if (off !== data.length) throw new Error('pieces do not cover the data');
  return h.digestHex();
}

/** random piece sizes covering n bytes: 1-byte pieces, pieces around chunk (1 KiB) and
 * 4-chunk group (4 KiB) boundaries, whole chunks, pieces up to and past inputCapacity */
function randomSizes(n: number, rnd: () => number, cap: number): number[] {
  const sizes: number[] = [];
  let left = n;
  const pick = (): number => {
    const r = rnd();
    const around = (k: number): number => Math.max(1, k + Math.floor(rnd() * 9) - 4);
    if (r < 0.15) return 1;
    if (r < 0.3) return 1 + Math.floor(rnd() * 64);
    if (r < 0.45) return around(1024 * (1 + Math.floor(rnd() * 3)));
    if (r < 0.6) return around(4096 * (1 + Math.floor(rnd() * 4)));
    if (r < 0.7) return 1024 * (1 + Math.floor(rnd() * 64));
    if (r < 0.8) return cap - Math.floor(rnd() * 3);
    if (r < 0.85) return cap + 1 + Math.floor(rnd() * cap);
    return 1 + Math.floor(rnd() * cap);
  };
  while (left > 0) {
    const s = Math.min(left, pick());
    sizes.push(s);
    left -= s;
  }
  return sizes;
}

const LISTED = [
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
  3072,
  4095,
  4096,
  4097,
  5120,
  8192,
  16384,
  16385,
  31744,
  65536,
  100000,
  MiB,
  MiB + 1,
  3 * MiB + 777,
];
/** more edges of the subtree path (4..256 chunks) and of the input capacity (256 KiB) */
const EDGES = [
  3073,
  5121,
  6144,
  6145,
  7168,
  7169,
  8193,
  12288,
  12289,
  20480,
  32767,
  32768,
  32769,
  65535,
  65537,
  102400,
  131071,
  131072,
  131073,
  196608,
  262143,
  262144,
  262145,
  263168,
  266240,
  266241,
  524287,
  524288,
  524289,
  786432,
  1048575,
  2 * MiB + 4096,
  2 * MiB + 4097,
];

// Official BLAKE3 test vectors (test_vectors.json of the BLAKE3 repository, hash mode, first 32
// bytes): an anchor independent of the oracle.
const OFFICIAL: Record<number, string> = {
  0: 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262',
  1: '2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213',
  1023: '10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11',
  1024: '42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7',
  1025: 'd00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444',
  2048: 'e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a',
  2049: '5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030',
  3072: 'b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2',
  3073: '7124b49501012f81cc7f11ca069ec9226cecb8a2c850cfe644e327d22d3e1cd3',
  4096: '015094013f57a5277b59d8475c0501042c0b642e531b0a1c8f58d2163229e969',
  4097: '9b4052b38f1c5fc8b1f9ff7ac7b27cd242487b3d890d15c96a1c25b8aa0fb995',
  5120: '9cadc15fed8b5d854562b26a9536d9707cadeda9b143978f319ab34230535833',
  5121: '628bd2cb2004694adaab7bbd778a25df25c47b9d4155a55f8fbd79f2fe154cff',
  6144: '3e2e5b74e048f3add6d21faab3f83aa44d3b2278afb83b80b3c35164ebeca205',
  6145: 'f1323a8631446cc50536a9f705ee5cb619424d46887f3c376c695b70e0f0507f',
  7168: '61da957ec2499a95d6b8023e2b0e604ec7f6b50e80a9678b89d2628e99ada77a',
  7169: 'a003fc7a51754a9b3c7fae0367ab3d782dccf28855a03d435f8cfe74605e7817',
  8192: 'aae792484c8efe4f19e2ca7d371d8c467ffb10748d8a5a1ae579948f718a2a63',
  8193: 'bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b',
  16384: 'f875d6646de28985646f34ee13be9a576fd515f76b5b0a26bb324735041ddde4',
  31744: '62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47',
  102400: 'bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085',
};

describe('blake3-simd', () => {
  it('is supported on this runtime (Node 20 has wasm SIMD)', () => {
    expect(simdSupported()).toBe(true);
  });

  it('reports no support, and refuses to construct, where the runtime rejects the module', async () => {
    const W = (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly;
    const spy = vi.spyOn(W, 'validate').mockReturnValue(false);
    try {
      vi.resetModules();
      const fresh = await import('../../src/scan/blake3-simd.js');
      expect(fresh.simdSupported()).toBe(false);
      expect(() => new fresh.Blake3Simd()).toThrow(/no WebAssembly SIMD/);
    } finally {
      spy.mockRestore();
      vi.resetModules();
    }
    expect(simdSupported()).toBe(true);
  });

  it('matches the official test vectors', () => {
    const h = new Blake3Simd();
    for (const [len, want] of Object.entries(OFFICIAL)) {
      const data = pattern(Number(len));
      expect(want).toHaveLength(64);
      h.update(data);
      expect(h.digestHex(), `len ${len}`).toBe(want);
      expect(oracle(data), `oracle, len ${len}`).toBe(want);
    }
  });

  it('matches the oracle for the listed lengths and edges, in one update, in commits, and one-shot', () => {
    const h = new Blake3Simd();
    const rnd = prng(1);
    for (const len of [...LISTED, ...EDGES]) {
      for (const data of [pattern(len), randomBytes(len, rnd)]) {
        const want = oracle(data);
        h.update(data);
        expect(h.digestHex(), `update, len ${len}`).toBe(want);
        expect(viaCommits(h, data), `commits, len ${len}`).toBe(want);
        expect(viaCommits(h, data, 4096), `4 KiB commits, len ${len}`).toBe(want);
        expect(viaCommits(h, data, 1000), `1000-byte commits, len ${len}`).toBe(want);
        expect(blake3SimdHex(data), `blake3SimdHex, len ${len}`).toBe(want);
      }
    }
  });

  it('matches the oracle for every length 0..4200 and around the 4-chunk groups up to 16 KiB', () => {
    const h = new Blake3Simd();
    const big = pattern(17 * KiB);
    const lengths = Array.from({ length: 4201 }, (_, i) => i);
    for (let g = 4096; g <= 16384; g += 1024) for (let d = -3; d <= 3; d++) lengths.push(g + d);
    for (const len of lengths) {
      const data = big.subarray(0, len);
      h.update(data);
      expect(h.digestHex(), `len ${len}`).toBe(oracle(data));
    }
  });

  it('matches the oracle for random lengths (fixed seeds)', () => {
    const h = new Blake3Simd();
    const rnd = prng(2);
    for (let i = 0; i < 150; i++) {
      const r = rnd();
      const len = r < 0.5 ? Math.floor(rnd() * 20000) : r < 0.9 ? Math.floor(rnd() * 600000) : Math.floor(rnd() * 4 * MiB);
      const data = randomBytes(len, rnd);
      const want = oracle(data);
      h.update(data);
      expect(h.digestHex(), `len ${len}`).toBe(want);
      expect(viaCommits(h, data), `commits, len ${len}`).toBe(want);
    }
  });

  it('gives the same digest however the input is split (update and commit, 1-byte pieces, across chunks and groups)', () => {
    const h = new Blake3Simd();
    for (let seed = 10; seed < 60; seed++) {
      const rnd = prng(seed);
      const len = seed % 5 === 0 ? Math.floor(rnd() * 3 * MiB) : Math.floor(rnd() * 300 * KiB);
      const data = randomBytes(len, rnd);
      const sizes = randomSizes(len, rnd, h.inputCapacity);
      expect(viaPieces(h, data, sizes, rnd), `seed ${seed}, len ${len}, ${sizes.length} pieces`).toBe(oracle(data));
    }
  });

  it('gives the same digest in 1-byte pieces', () => {
    const h = new Blake3Simd();
    const data = randomBytes(9 * KiB + 3, prng(3));
    for (let i = 0; i < data.length; i++) h.update(data.subarray(i, i + 1));
    expect(h.digestHex()).toBe(oracle(data));
    for (let i = 0; i < data.length; i++) {
      h.inputBuffer()[0] = data[i]!;
      h.commit(1);
    }
    expect(h.digestHex()).toBe(oracle(data));
  });

  it('gives the same digest with a random seed (printed on failure)', () => {
    const seed = Date.now() % 1_000_000_007;
    const rnd = prng(seed);
    const h = new Blake3Simd();
    for (let i = 0; i < 20; i++) {
      const len = Math.floor(rnd() * (rnd() < 0.8 ? 100 * KiB : 2 * MiB));
      const data = randomBytes(len, rnd);
      const sizes = randomSizes(len, rnd, h.inputCapacity);
      expect(viaPieces(h, data, sizes, rnd), `seed ${seed}, round ${i}, len ${len}`).toBe(oracle(data));
    }
  });

  it('peekHex() mid-stream is the digest of the prefix and does not disturb the final digest', () => {
    const h = new Blake3Simd();
    expect(h.peekHex()).toBe(oracle(new Uint8Array(0)));
    // after every 256 KiB commit of 3 MiB + 777 (the scan pattern)
    const data = randomBytes(3 * MiB + 777, prng(4));
    const input = h.inputBuffer();
    for (let off = 0; off < data.length; off += h.inputCapacity) {
      const n = Math.min(h.inputCapacity, data.length - off);
      input.set(data.subarray(off, off + n));
      h.commit(n);
      const want = oracle(data.subarray(0, off + n));
      expect(h.peekHex(), `prefix ${off + n}`).toBe(want);
      expect(h.peekHex(), `peek twice at ${off + n}`).toBe(want);
    }
    expect(h.digestHex()).toBe(oracle(data));
    // at chunk, group and subtree edges, with random pieces in between
    for (let seed = 100; seed < 112; seed++) {
      const rnd = prng(seed);
      const len = Math.floor(rnd() * 600 * KiB);
      const d = randomBytes(len, rnd);
      const stops = new Set<number>([1, 64, 1023, 1024, 1025, 4095, 4096, 4097, 8192, 65536, 262144, 262145]);
      for (let i = 0; i < 6; i++) stops.add(Math.floor(rnd() * len));
      const sorted = [...stops].filter((s) => s <= len).sort((a, b) => a - b);
      let pos = 0;
      for (const stop of sorted) {
        const piece = d.subarray(pos, stop);
        if (rnd() < 0.5) h.update(piece);
        else viaCommitsNoDigest(h, piece);
        pos = stop;
        expect(h.peekHex(), `seed ${seed}, prefix ${stop}`).toBe(oracle(d.subarray(0, stop)));
      }
      h.update(d.subarray(pos));
      expect(h.digestHex(), `seed ${seed}, whole ${len}`).toBe(oracle(d));
    }
  });

  it('takes the prefix digest of a growing log the way scan-entry does (read exactly the baseline size, peek, go on)', () => {
    const h = new Blake3Simd();
    const data = randomBytes(700 * KiB + 5, prng(5));
    for (const prefixLen of [0, 1, 1024, 4096, 5000, 262144, 300000, 700 * KiB + 5]) {
      let pos = 0;
      let prefix: string | null = prefixLen === 0 ? h.peekHex() : null;
      const buf = h.inputBuffer();
      while (pos < data.length) {
        const want = prefixLen > pos ? Math.min(buf.length, prefixLen - pos) : buf.length;
        const n = Math.min(want, data.length - pos);
        buf.set(data.subarray(pos, pos + n));
        h.commit(n);
        pos += n;
        if (pos === prefixLen) prefix = h.peekHex();
      }
      expect(prefix, `prefix ${prefixLen}`).toBe(oracle(data.subarray(0, prefixLen)));
      expect(h.digestHex(), `whole, prefix ${prefixLen}`).toBe(oracle(data));
    }
  });

  it('is reusable: digestHex() resets; reset() abandons an input midway; instances are independent', () => {
    const h = new Blake3Simd();
    const a = randomBytes(50 * KiB + 7, prng(6));
    const b = randomBytes(3 * KiB + 1, prng(7));
    h.update(a);
    expect(h.digestHex()).toBe(oracle(a));
    h.update(b);
    expect(h.digestHex()).toBe(oracle(b));
    expect(h.digestHex()).toBe(oracle(new Uint8Array(0)));
    h.update(a.subarray(0, 30000));
    h.reset();
    h.update(b);
    expect(h.digestHex()).toBe(oracle(b));
    h.update(a);
    const d = h.digest();
    expect(d.toString('hex')).toBe(oracle(a));
    expect(h.digestHex()).toBe(oracle(new Uint8Array(0)));
    // two hashers interleaved
    const g = new Blake3Simd();
    for (let off = 0; off < a.length; off += 5000) {
      h.update(a.subarray(off, off + 5000));
      g.update(b.subarray(Math.min(off, b.length), Math.min(off + 5000, b.length)));
    }
    expect(h.digestHex()).toBe(oracle(a));
    expect(g.digestHex()).toBe(oracle(b));
    // blake3SimdHex uses its own instance and leaves h alone
    h.update(a.subarray(0, 1000));
    expect(blake3SimdHex(b)).toBe(oracle(b));
    h.update(a.subarray(1000));
    expect(h.digestHex()).toBe(oracle(a));
  });

  it('hashes views of its own input buffer in place, and overlapping views correctly', () => {
    const h = new Blake3Simd();
    const input = h.inputBuffer();
    expect(input.length).toBe(h.inputCapacity);
    expect(h.inputBuffer()).toBe(input);
    const data = randomBytes(h.inputCapacity, prng(8));
    input.set(data);
    h.update(input.subarray(0, 100000));
    h.update(input.subarray(100000));
    expect(h.digestHex()).toBe(oracle(data));
    input.set(data);
    h.update(input);
    h.update(input.subarray(5, 70000));
    expect(h.digestHex()).toBe(oracle(Buffer.concat([data, data.subarray(5, 70000)])));
    // a view that starts before the input region (other wasm memory) goes through a copy
    const around = new Uint8Array(input.buffer, input.byteOffset - 64, 5000);
    const snapshot = Buffer.from(around);
    h.update(around);
    expect(h.digestHex()).toBe(oracle(snapshot));
  });

  it('hashes strings as UTF-8, like blake3-wasm', () => {
    for (const s of ['', 'abc', 'héllo wörld ✓ 𝄞', 'x'.repeat(5000), 'é'.repeat(300000)]) expect(blake3SimdHex(s)).toBe(oracle(s));
  });

  it('hashes long text as its UTF-8 bytes straight into its input (updateText), characters split across pieces included', () => {
    const h = new Blake3Simd();
    const cap = h.inputCapacity;
    const texts = [
      '',
      'a'.repeat(cap * 2 + 3),
      // a 3-byte character at every offset around the piece boundary
      ...[0, 1, 2, 3].map((k) => `${'a'.repeat(cap - k)}€${'é'.repeat(cap)}😀x`),
      // lone surrogates become U+FFFD, as Buffer.from(s, 'utf8') has them
      `\ud800${'b'.repeat(cap - 1)}\udc00end`,
    ];
    for (const t of texts) {
      h.reset();
      h.updateText(t);
      expect(h.digestHex()).toBe(oracle(Buffer.from(t, 'utf8')));
    }
  });

  it('rejects a bad commit length without changing the state', () => {
    const h = new Blake3Simd();
    const data = randomBytes(2000, prng(9));
    h.update(data);
    for (const n of [-1, h.inputCapacity + 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => h.commit(n)).toThrow(RangeError);
    h.commit(0);
    expect(h.digestHex()).toBe(oracle(data));
  });

  it('handles long inputs (deep CV stack) in mixed pieces', () => {
    const h = new Blake3Simd();
    const rnd = prng(11);
    const data = randomBytes(40 * MiB + 12345, rnd);
    const want = oracle(data);
    expect(viaPieces(h, data, randomSizes(data.length, rnd, h.inputCapacity), rnd)).toBe(want);
    h.update(data);
    expect(h.digestHex()).toBe(want);
  });

  describe('internals (a build that exports them)', () => {
    interface Internals {
      memory: { buffer: ArrayBuffer };
      hash4(p: number, ctr: bigint, out: number): void;
      parents4(p: number, out: number): void;
      chunk(p: number, ctr: bigint, out: number): void;
      compress(cv: number, blk: number, ctr: bigint, len: number, flags: number, out: number): void;
    }
    function internals(): Internals {
      const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'b3gen-')), 'internals.ts');
      const r = spawnSync(process.execPath, [GEN, '--opt', '{"exportAll":true}', '--out', tmp], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const src = fs.readFileSync(tmp, 'utf8');
      const b64 = [...src.matchAll(/'([A-Za-z0-9+/=]+)'/g)].map((m) => m[1]).join('');
      const W = (
        globalThis as unknown as { WebAssembly: { Module: new (b: Uint8Array) => object; Instance: new (m: object, i: object) => { exports: unknown } } }
      ).WebAssembly;
      return new W.Instance(new W.Module(Buffer.from(b64, 'base64')), {}).exports as Internals;
    }

    it('hash4 lanes equal the scalar chunk CVs, also where the counter carries into its high word', () => {
      const x = internals();
      const mem = Buffer.from(x.memory.buffer);
      const P = 65536;
      randomBytes(4096, prng(12)).copy(mem, P);
      const T = 2n ** 32n;
      for (const ctr of [0n, 1n, 4n, 5n, T - 4n, T - 3n, T - 2n, T - 1n, T, T + 3n, 2n * T - 2n, 2n ** 53n - 1n, 2n ** 63n - 2n]) {
        x.hash4(P, ctr, 256);
        const lanes = Buffer.from(mem.subarray(256, 384));
        for (let i = 0; i < 4; i++) {
          x.chunk(P + 1024 * i, ctr + BigInt(i), 512);
          expect(lanes.subarray(32 * i, 32 * i + 32).toString('hex'), `ctr ${ctr} lane ${i}`).toBe(mem.toString('hex', 512, 544));
        }
      }
    });

    it('parents4 equals 4 scalar parent compressions', () => {
      const x = internals();
      const mem = Buffer.from(x.memory.buffer);
      const P = 65536;
      randomBytes(256, prng(13)).copy(mem, P);
      x.parents4(P, 256);
      const four = Buffer.from(mem.subarray(256, 384));
      for (let i = 0; i < 4; i++) {
        x.compress(0 /* IV */, P + 64 * i, 0n, 64, 4 /* PARENT */, 512);
        expect(four.subarray(32 * i, 32 * i + 32).toString('hex')).toBe(mem.toString('hex', 512, 544));
      }
    });
  });

  it('the committed module is exactly what the generator emits (--check), and --check notices a difference', () => {
    const ok = spawnSync(process.execPath, [GEN, '--check'], { encoding: 'utf8' });
    expect(ok.status, ok.stderr).toBe(0);
    // The header names the npm script that regenerates it, and package.json has that script.
    const script = /\(npm run ([\w:-]+)\)/.exec(fs.readFileSync(path.join(ROOT, 'src/scan/blake3-simd.wasm.ts'), 'utf8').split('\n')[0]!)?.[1];
    const scripts = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts[script!]).toBe('node tools/gen-blake3-wasm.mjs');
    const tampered = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'b3gen-')), 'blake3-simd.wasm.ts');
    fs.copyFileSync(path.join(ROOT, 'src/scan/blake3-simd.wasm.ts'), tampered);
    editText(tampered, (t) => t.replace(/A/, 'B'));
    const bad = spawnSync(process.execPath, [GEN, '--check', '--out', tampered], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
  });
});

function viaCommitsNoDigest(h: Blake3Simd, data: Uint8Array): void {
  const input = h.inputBuffer();
  for (let off = 0; off < data.length; off += h.inputCapacity) {
    const n = Math.min(h.inputCapacity, data.length - off);
    input.set(data.subarray(off, off + n));
    h.commit(n);
  }
}
