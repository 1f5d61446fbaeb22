import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { DeferredMd5, sharesBySize } from '../../src/app/deferred-md5.js';
import { MAX_LANES, type Md5Result } from '../../src/scan/md5-lanes.js';
import { tmpdir } from '../helpers/cli.js';
import { nativeMd5, nativeMd5Why } from '../../src/scan/md5-native.js';
import { canRaisePriority } from '../../src/scan/thread-priority.js';
import { mulberry32 as prng } from '../../bench/lib/tree.js'; // deterministic: a failure replays from its seed

describe('sharesBySize', () => {
  type F = { id: number; size: bigint };
  const files = (sizes: number[]): F[] => sizes.map((s, id) => ({ id, size: BigInt(s) }));
  const total = (share: F[]): number => share.reduce((t, f) => t + Number(f.size), 0);

  function expectPartition(shares: F[][], input: F[]): void {
    const ids = shares.flat().map((f) => f.id);
    expect(ids.length).toBe(input.length);
    expect(new Set(ids).size).toBe(input.length);
    expect([...ids].sort((a, b) => a - b)).toEqual(input.map((f) => f.id));
    for (const s of shares) {
      expect(s.length).toBeGreaterThan(0);
      for (let i = 1; i < s.length; i++) expect(s[i - 1]!.size >= s[i]!.size, `share not largest first at ${i}`).toBe(true);
    }
  }

  it('n = 2 over many random sizes: every file once, each share largest first, totals within the largest file', () => {
    for (const seed of [1, 2, 3]) {
      const rnd = prng(seed);
      // mostly small files, a few large ones, some equal sizes
      const input = files(Array.from({ length: 600 }, () => (rnd() < 0.05 ? Math.floor(rnd() * 50e6) : rnd() < 0.2 ? 4096 : Math.floor(rnd() * 200_000))));
      const shares = sharesBySize(input, 2);
      expect(shares).toHaveLength(2);
      expectPartition(shares, input);
      const largest = Math.max(...input.map((f) => Number(f.size)));
      expect(Math.abs(total(shares[0]!) - total(shares[1]!))).toBeLessThanOrEqual(largest);
    }
  });

  it('n = 2 with one file far larger than the rest: it has a share of its own', () => {
    const input = files([1_000_000, 10, 20, 30, 40]);
    const shares = sharesBySize(input, 2);
    expectPartition(shares, input);
    expect(shares.map((s) => s.map((f) => f.id))).toEqual([[0], [4, 3, 2, 1]]);
  });

  it('n = 3 and n = 8: every file once, sorted shares, none empty', () => {
    const rnd = prng(9);
    const input = files(Array.from({ length: 100 }, () => Math.floor(rnd() * 1e6)));
    for (const n of [3, 8]) {
      const shares = sharesBySize(input, n);
      expect(shares).toHaveLength(n);
      expectPartition(shares, input);
    }
    // fewer files than shares: no empty share
    const two = files([5, 7]);
    const shares = sharesBySize(two, 4);
    expect(shares).toHaveLength(2);
    expectPartition(shares, two);
  });

  it('n = 0 or 1: one share of all, largest first', () => {
    const input = files([3, 100, 0, 100, 7, 2 ** 40]);
    for (const n of [0, 1]) {
      const shares = sharesBySize(input, n);
      expect(shares).toHaveLength(1);
      expectPartition(shares, input);
      expect(shares[0]!.map((f) => Number(f.size))).toEqual([2 ** 40, 100, 100, 7, 3, 0]);
    }
  });

  it('with lane rates: a share holding a file far larger than the rest gets fewer other bytes, and ends no later than by bytes alone', () => {
    const rates = { lanes: 16, all: 5e9, alone: 850e6 };
    // /usr's shape: one 297 MB file, a few around 100 MB, ~2,000 files of 128 KiB to 5 MB
    const rnd = prng(12);
    const sizes = [297e6, 146e6, 129e6, 127e6, 117e6, 110e6, ...Array.from({ length: 2000 }, () => 131_073 + Math.floor(rnd() ** 3 * 5e6))];
    const input = files(sizes);
    /** a share's time as sharesBySize estimates it (with a page-cache copy of 6 GB/s) */
    const time = (share: F[]): number => {
      const b = total(share);
      const largest = Math.max(...share.map((f) => Number(f.size)));
      return b / rates.all + b / 6e9 + Math.max(0, largest - b / rates.lanes) / rates.alone;
    };
    const byBytes = sharesBySize(input, 2);
    const byRates = sharesBySize(input, 2, rates);
    expectPartition(byRates, input);
    const big = byRates.find((s) => s.some((f) => f.id === 0))!;
    const other = byRates.find((s) => s !== big)!;
    expect(total(big)).toBeLessThan(total(other));
    expect(Math.max(...byRates.map(time))).toBeLessThan(Math.max(...byBytes.map(time)));
    // with files of about one size there is no tail to weigh: shares of nearly equal bytes, as by bytes
    const even = files(Array.from({ length: 64 }, () => 1e6 + Math.floor(rnd() * 1000)));
    const evenShares = sharesBySize(even, 2, rates);
    expectPartition(evenShares, even);
    expect(Math.abs(total(evenShares[0]!) - total(evenShares[1]!))).toBeLessThanOrEqual(1e6 + 1000);
  });

  it('no files: no shares', () => {
    for (const n of [0, 1, 2, 8]) expect(sharesBySize([], n)).toEqual([]);
  });
});

describe('DeferredMd5 streaming: only with the wasm lanes, where CAP_SYS_NICE allows', () => {
  it('not where the native lanes load (MD5 is cheap enough after the scan); force streams anyway', async () => {
    const signal = new AbortController().signal;
    const q = new DeferredMd5<string>(() => {});
    if (nativeMd5()) expect(q.stream(2, signal)).toBe(false);
    else {
      console.log(`native MD5 lanes not loaded here (${nativeMd5Why()}): stream() follows CAP_SYS_NICE alone`);
      expect(q.stream(2, signal)).toBe(canRaisePriority());
    }
    const f = new DeferredMd5<string>(() => {});
    expect(f.stream(2, signal, true)).toBe(true);
    await f.stop();
    await q.stop();
  });
});

describe('DeferredMd5 streaming: the files the background workers have not answered count against the bound', () => {
  it('backlogged past max(maxQueued, 4 x what the workers hold back); drain() waits until half is left; every file answered rightly', async () => {
    const d = tmpdir('integ-deferred-');
    try {
      // 2 workers hold back at most 2 x MAX_LANES files in their lanes + MAX_LANES sent: the bound is 4 x that, not 4
      const limit = 4 * (2 * MAX_LANES + MAX_LANES);
      const n = limit + 30;
      const files = Array.from({ length: n }, (_, i) => {
        const p = path.join(d, `f${i}`);
        fs.writeFileSync(p, crypto.randomBytes(1000 + i * 37));
        return p;
      });
      const got = new Map<string, Md5Result>();
      const q = new DeferredMd5<string>((p, r) => got.set(p, r), 4);
      const signal = new AbortController().signal;
      expect(q.stream(2, signal, true)).toBe(true);
      for (const p of files) {
        const st = fs.statSync(p, { bigint: true });
        q.add({ real: Buffer.from(p), size: st.size, inode: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs }, p);
      }
      // no answer can have come yet
      expect(q.backlogged).toBe(true);
      await q.drain(2, signal, pino({ level: 'silent' }), 'test');
      expect(got.size).toBeGreaterThan(n - limit / 2);
      expect(q.backlogged).toBe(false);
      await q.finish(2, signal, pino({ level: 'silent' }), 'test');
      expect(got.size).toBe(n);
      for (const p of files) expect(got.get(p)).toBe(crypto.createHash('md5').update(fs.readFileSync(p)).digest('hex'));
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});
