import { describe, expect, it } from 'vitest';
import { compareEntry, differingAttributes } from '../../src/core/compare.js';
import { rec, rule } from '../helpers/build.js';

const ALL = rule().check;

describe('differingAttributes', () => {
  it('an inode of 2^63 or more is the same inode whether read back from the store (signed) or from the file system (unsigned)', () => {
    const big = 2n ** 64n - 5n;
    expect(differingAttributes(rec({ inode: BigInt.asIntN(64, big) }), rec({ inode: big }), ALL)).toEqual([]);
    expect(differingAttributes(rec({ inode: BigInt.asIntN(64, big) }), rec({ inode: big - 1n }), ALL)).toEqual(['inode']);
  });

  it('finds nothing when nothing changed', () => {
    expect(differingAttributes(rec(), rec(), ALL)).toEqual([]);
  });

  it('names each changed attribute in canonical order', () => {
    const after = rec({ blake3: 'bb'.repeat(32), mode: 0o4755, uid: 1, gid: 2, size: 11n, mtimeNs: 1n, ctimeNs: 2n, inode: 9n, nlink: 2 });
    expect(differingAttributes(rec(), after, ALL)).toEqual(['content', 'mode', 'uid', 'gid', 'size', 'mtime', 'ctime', 'inode', 'nlink']);
  });

  it('detects content changed with mtime restored', () => {
    expect(differingAttributes(rec(), rec({ blake3: 'cc'.repeat(32), ctimeNs: 5n }), ALL)).toEqual(['content', 'ctime']);
  });

  it('checks only what the rule asks for', () => {
    expect(differingAttributes(rec(), rec({ blake3: 'cc'.repeat(32), mode: 0o600 }), ['mode'])).toEqual(['mode']);
  });

  it('compares every algorithm both sides have; an unknown digest is not a difference', () => {
    expect(differingAttributes(rec({ sha256: '11' }), rec({ sha256: '22' }), ALL)).toEqual(['content']);
    expect(differingAttributes(rec(), rec({ blake3: null }), ALL)).toEqual([]);
  });

  it('reports type and symlink target changes', () => {
    expect(differingAttributes(rec(), rec({ type: 'dir', blake3: null }), ALL)).toEqual(['type']);
    const l = rec({ type: 'symlink', blake3: null, target: Buffer.from('/bin/true') });
    expect(differingAttributes(l, { ...l, target: Buffer.from('/tmp/evil') }, ALL)).toEqual(['target']);
  });

  it('ignores directory size, mtime, ctime and nlink (the children show the change) but not its mode', () => {
    const d = rec({ type: 'dir', blake3: null });
    expect(differingAttributes(d, { ...d, size: 8192n, mtimeNs: 9n, ctimeNs: 9n, nlink: 5 }, ALL)).toEqual([]);
    expect(differingAttributes(d, { ...d, mode: 0o777 }, ALL)).toEqual(['mode']);
  });

  describe('growing', () => {
    const check = ['type', 'mode', 'uid', 'gid', 'growing'] as const;
    const before = rec({ size: 100n, blake3: 'p1' });
    it('accepts growth that keeps the recorded prefix', () => {
      expect(differingAttributes(before, { ...rec({ size: 150n, blake3: 'full', mtimeNs: 7n }), prefixBlake3: 'p1' }, [...check])).toEqual([]);
    });
    it('flags a log that shrank', () => {
      expect(differingAttributes(before, { ...rec({ size: 50n, blake3: 'x' }), prefixBlake3: null }, [...check])).toEqual(['size']);
    });
    it('flags a rewritten prefix', () => {
      expect(differingAttributes(before, { ...rec({ size: 150n, blake3: 'y' }), prefixBlake3: 'other' }, [...check])).toEqual(['content']);
    });
    it('still checks ownership', () => {
      expect(differingAttributes(before, { ...rec({ size: 100n, uid: 1000 }), prefixBlake3: 'p1' }, [...check])).toEqual(['uid']);
    });
  });
});

describe('compareEntry', () => {
  it('classifies added, removed, changed and unchanged', () => {
    const r = rule({ name: 'cfg', severity: 'critical' });
    expect(compareEntry(null, rec(), r)).toMatchObject({ kind: 'added', rule: 'cfg', severity: 'critical', attributes: [] });
    expect(compareEntry(rec(), null, r)).toMatchObject({ kind: 'removed', after: null });
    expect(compareEntry(rec(), rec({ uid: 5 }), r)).toMatchObject({ kind: 'changed', attributes: ['uid'] });
    expect(compareEntry(rec(), rec(), r)).toBeNull();
  });

  it('does not leak prefix digests into the reported record', () => {
    const f = compareEntry(rec(), { ...rec({ uid: 3 }), prefixBlake3: 'x' }, rule());
    expect(f?.after).not.toHaveProperty('prefixBlake3');
  });
});
