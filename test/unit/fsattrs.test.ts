import { describe, expect, it } from 'vitest';
import { differingAttributes } from '../../src/core/compare.js';
import { decodeAcl, decodeCaps, flagDiff, flagNames } from '../../src/core/fsattrs.js';
import { rec } from '../helpers/build.js';

const caps = (rev: number, eff: boolean, perm: number[], inh: number[] = [0, 0], rootid?: number): Buffer => {
  const b = Buffer.alloc(rev === 3 ? 24 : 20);
  b.writeUInt32LE((rev << 24) | (eff ? 1 : 0), 0);
  b.writeUInt32LE(perm[0]!, 4);
  b.writeUInt32LE(inh[0]!, 8);
  b.writeUInt32LE(perm[1]!, 12);
  b.writeUInt32LE(inh[1]!, 16);
  if (rev === 3) b.writeUInt32LE(rootid!, 20);
  return b;
};
const xa = (pairs: Array<[string, Buffer]>): string => JSON.stringify(pairs.map(([n, v]) => [n, v.toString('base64')]));
const ALL = ['xattrs', 'caps', 'acl', 'label', 'flags'] as const;

describe('capability decoding (vfs_cap_data v2/v3)', () => {
  it('groups capabilities with the same flags, getcap style', () => {
    // the exact bytes setcap cap_setuid,cap_net_raw+ep wrote on this machine
    expect(decodeCaps(Buffer.from('0100000280200000000000000000000000000000', 'hex'))).toBe('cap_setuid,cap_net_raw=ep');
    expect(decodeCaps(caps(2, false, [1 << 7, 0], [1 << 7, 0]))).toBe('cap_setuid=ip');
    expect(decodeCaps(caps(2, true, [0, 1 << (39 - 32)]))).toBe('cap_bpf=ep');
    expect(decodeCaps(caps(3, true, [1 << 21, 0], [0, 0], 100000))).toBe('cap_sys_admin=ep [rootid=100000]');
    expect(decodeCaps(Buffer.from('01'))).toMatch(/malformed/);
  });
});

describe('POSIX ACL decoding', () => {
  it('names users, groups, mask and other like getfacl', () => {
    const v = Buffer.from('0200000001000600ffffffff02000700feff000004000400ffffffff10000700ffffffff20000400ffffffff', 'hex');
    expect(decodeAcl(v, { user: (id) => (id === 65534 ? 'nobody' : undefined), group: () => undefined })).toEqual([
      'user::rw-',
      'user:nobody:rwx',
      'group::r--',
      'mask::rwx',
      'other::r--',
    ]);
    expect(decodeAcl(v)[1]).toBe('user:65534:rwx');
  });
});

describe('inode flags', () => {
  it('names flags as lsattr letters and diffs them', () => {
    expect(flagNames(0x10 | 0x20 | 0x80000)).toEqual(['+i', '+a']); // extents (e) is the file system's own
    expect(flagDiff(0x20, 0x10)).toEqual(['+i', '-a']);
  });
});

describe('comparing the new attributes', () => {
  const withCaps = xa([['security.capability', caps(2, true, [1 << 7, 0])]]);
  it('an old record (not recorded) never compares as changed', () => {
    expect(differingAttributes(rec({ xattrs: null, flags: null }), rec({ xattrs: withCaps, flags: 0x10 }), [...ALL])).toEqual([]);
    expect(differingAttributes(rec(), rec({ xattrs: withCaps, flags: 0x10 }), [...ALL])).toEqual([]);
  });
  it('each class is its own attribute, and only when the rule asks', () => {
    const acl = xa([['system.posix_acl_access', Buffer.from('0200000001000600ffffffff', 'hex')]]);
    expect(differingAttributes(rec({ xattrs: '[]' }), rec({ xattrs: withCaps }), [...ALL])).toEqual(['caps']);
    expect(differingAttributes(rec({ xattrs: '[]' }), rec({ xattrs: withCaps }), ['xattrs'])).toEqual([]);
    expect(differingAttributes(rec({ xattrs: '[]' }), rec({ xattrs: acl }), [...ALL])).toEqual(['acl']);
    expect(
      differingAttributes(rec({ xattrs: '[]' }), rec({ xattrs: xa([['security.selinux', Buffer.from('system_u:object_r:bin_t:s0\0')]]) }), [...ALL]),
    ).toEqual(['label']);
    expect(differingAttributes(rec({ xattrs: '[]' }), rec({ xattrs: xa([['user.x', Buffer.from('1')]]) }), [...ALL])).toEqual(['xattrs']);
    expect(differingAttributes(rec({ xattrs: 'unsupported' }), rec({ xattrs: '[]' }), [...ALL])).toEqual([]);
  });
  it('flags: the file system\'s own bits and "unsupported" are not changes', () => {
    expect(differingAttributes(rec({ flags: 0x80000 }), rec({ flags: 0x80000 | 0x1000 }), ['flags'])).toEqual([]);
    expect(differingAttributes(rec({ flags: -1 }), rec({ flags: 0 }), ['flags'])).toEqual([]);
    expect(differingAttributes(rec({ flags: 0x80000 }), rec({ flags: 0x80010 }), ['flags'])).toEqual(['flags']);
  });
  it('entries: a directory whose mtime moved; not when its own metadata explains a ctime change', () => {
    const dir = rec({ type: 'dir', xattrs: '[]' });
    expect(differingAttributes(dir, { ...dir, mtimeNs: dir.mtimeNs + 1n, ctimeNs: dir.ctimeNs + 1n }, ['entries', 'mtime'])).toEqual(['entries']);
    expect(differingAttributes(dir, { ...dir, ctimeNs: dir.ctimeNs + 1n }, ['entries', 'mode'])).toEqual(['entries']);
    expect(differingAttributes(dir, { ...dir, mode: 0o700, ctimeNs: dir.ctimeNs + 1n }, ['entries', 'mode'])).toEqual(['mode']);
    expect(differingAttributes(dir, { ...dir, mtimeNs: dir.mtimeNs + 1n }, ['mtime'])).toEqual([]);
  });
});

describe('text reports of xattrs', () => {
  it('escape control characters in names, so a crafted xattr cannot forge report lines', async () => {
    const { describeChanges } = await import('../../src/report/records.js');
    const after = rec({ xattrs: xa([['user.a\nALERT forged line', Buffer.from('x')]]) });
    const t = describeChanges(rec({ xattrs: '[]' }), after, ['xattrs']);
    expect(t).toBe('xattrs +user.a\\nALERT forged line');
    expect(t).not.toContain('\n');
  });
});
