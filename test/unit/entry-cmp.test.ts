import { describe, expect, it } from 'vitest';
import { cmpText, writeCmp } from '../../src/core/entry-cmp.js';
import type { EntryRecord, EntryType } from '../../src/core/types.js';

/** A small deterministic generator (mulberry32): the same records every run. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TYPES: EntryType[] = ['file', 'dir', 'symlink', 'fifo', 'socket', 'chardev', 'blockdev', 'unknown'];

function record(r: () => number): EntryRecord {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const u64 = (): bigint => (BigInt(Math.floor(r() * 2 ** 32)) << 32n) | BigInt(Math.floor(r() * 2 ** 32));
  // numbers around every edge the writer treats apart: 0, 9, 10, 2^53 - 1, 2^53, 2^63, negative
  const big = (): bigint =>
    pick([
      0n,
      9n,
      10n,
      99n,
      100n,
      9007199254740991n,
      9007199254740992n,
      2n ** 63n - 1n,
      2n ** 63n,
      2n ** 64n - 1n,
      -1n,
      -1_000_000_001n,
      u64(),
      BigInt(Math.floor(r() * 1e6)),
    ]);
  const num = (): number => pick([0, 1, 9, 10, 0o755, 65534, 2 ** 31, 2 ** 32 - 1, Math.floor(r() * 1e9)]);
  const hex = (n: number): string => Array.from({ length: n }, () => Math.floor(r() * 16).toString(16)).join('');
  return {
    path: Buffer.from('/p'),
    type: pick(TYPES),
    mode: num() & 0o7777,
    uid: num(),
    gid: num(),
    size: big(),
    mtimeNs: big(),
    ctimeNs: big(),
    inode: pick([u64(), 2n ** 64n - 1n, 2n ** 63n, 5n]),
    nlink: num(),
    target: pick([null, Buffer.alloc(0), Buffer.from([0, 0xff, 0x41, 0x0a]), Buffer.from('/usr/lib/x')]),
    blake3: pick([null, hex(64)]),
    sha256: pick([null, hex(64)]),
    flags: pick([undefined, null, 0, 524288, -2147483648, 4294967295, 2 ** 31]),
    xattrs: pick([undefined, null, '', '{"user.a":"x y"}', '{"security.selinux":"system_u:object_r:bin_t:s0"}', 'unsupported', '{"user.ü":"\\u00e9 日本"}']),
  };
}

describe('writeCmp', () => {
  it('writes exactly the bytes of cmpText, for records of every shape', () => {
    const r = rng(12);
    const out = Buffer.alloc(4096);
    let nonAscii = 0;
    for (let i = 0; i < 5000; i++) {
      const rec = record(r);
      const want = Buffer.from(cmpText(rec));
      if (want.length !== cmpText(rec).length) nonAscii++;
      const at = i % 7; // not always at the start of the buffer
      const end = writeCmp(rec, out, at);
      expect(end - at).toBe(want.length);
      expect(out.subarray(at, end).equals(want)).toBe(true);
    }
    expect(nonAscii).toBeGreaterThan(0); // UTF-8 xattrs were among them
  });

  it('answers -1 and writes nothing when the buffer has too little room', () => {
    const rec = record(rng(3));
    const want = Buffer.from(cmpText(rec));
    const small = Buffer.alloc(want.length - 1, 0xaa);
    expect(writeCmp(rec, small, 0)).toBe(-1);
    expect(small.every((b) => b === 0xaa)).toBe(true);
    const big = Buffer.alloc(4096);
    expect(writeCmp(rec, big, 4096 - want.length + 1)).toBe(-1);
  });
});
