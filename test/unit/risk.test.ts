import { describe, expect, it } from 'vitest';
import { riskTags } from '../../src/core/risk.js';
import type { EntryRecord, FindingKind } from '../../src/core/types.js';
import { rec } from '../helpers/build.js';

const f = (path: string, kind: FindingKind, before: EntryRecord | null, after: EntryRecord | null) => ({ path: Buffer.from(path), kind, before, after });
const caps = (bits: number): string => {
  const b = Buffer.alloc(20);
  b.writeUInt32LE(0x02000001, 0);
  b.writeUInt32LE(bits, 4);
  return JSON.stringify([['security.capability', b.toString('base64')]]);
};

describe('risk tags', () => {
  it('set-uid / set-gid: new, or newly set; not on symlinks, not set-gid directories', () => {
    expect(riskTags(f('/usr/bin/x', 'added', null, rec({ mode: 0o4755 })))).toEqual(['setuid']);
    expect(riskTags(f('/usr/bin/x', 'changed', rec({ mode: 0o755 }), rec({ mode: 0o6755 })))).toEqual(['setuid', 'setgid']);
    expect(riskTags(f('/usr/bin/x', 'changed', rec({ mode: 0o4755 }), rec({ mode: 0o4755, size: 1n })))).toEqual([]);
    expect(riskTags(f('/srv/shared', 'added', null, rec({ type: 'dir', mode: 0o2775 })))).toEqual([]);
    expect(riskTags(f('/usr/bin/l', 'added', null, rec({ type: 'symlink', mode: 0o7777 })))).toEqual([]);
  });
  it('capability: new names only, and only when the baseline recorded xattrs', () => {
    expect(riskTags(f('/usr/bin/p', 'changed', rec({ xattrs: '[]' }), rec({ xattrs: caps(1 << 7) })))).toEqual(['capability']);
    expect(riskTags(f('/usr/bin/p', 'changed', rec({ xattrs: caps((1 << 7) | (1 << 13)) }), rec({ xattrs: caps(1 << 7) })))).toEqual([]);
    expect(riskTags(f('/usr/bin/p', 'changed', rec({ xattrs: null }), rec({ xattrs: caps(1 << 7) })))).toEqual([]);
  });
  it('immutable / append-only set; world-writable newly; flags unsupported are no flags', () => {
    expect(riskTags(f('/etc/passwd', 'changed', rec({ flags: 0 }), rec({ flags: 0x10 | 0x20 })))).toEqual(['immutable', 'append-only']);
    expect(riskTags(f('/etc/passwd', 'changed', rec({ flags: -1 }), rec({ flags: -1 })))).toEqual([]);
    expect(riskTags(f('/etc/x', 'changed', rec({ mode: 0o644 }), rec({ mode: 0o666 })))).toEqual(['world-writable']);
    expect(riskTags(f('/tmp', 'changed', rec({ type: 'dir', mode: 0o1777 }), rec({ type: 'dir', mode: 0o1777, uid: 1 })))).toEqual([]);
  });
  it('executables added in configuration or temp directories; ld.so.preload; PAM modules and configuration', () => {
    expect(riskTags(f('/etc/cron.daily/x', 'added', null, rec({ mode: 0o755 })))).toEqual(['exec-in-config-or-temp']);
    expect(riskTags(f('/dev/shm/.x', 'added', null, rec({ mode: 0o700 })))).toEqual(['exec-in-config-or-temp']);
    expect(riskTags(f('/etc/motd', 'added', null, rec({ mode: 0o644 })))).toEqual([]);
    expect(riskTags(f('/usr/bin/new', 'added', null, rec({ mode: 0o755 })))).toEqual([]);
    expect(riskTags(f('/etc/ld.so.preload', 'added', null, rec()))).toEqual(['preload']);
    expect(riskTags(f('/etc/ld.so.preload', 'removed', rec(), null))).toEqual(['preload']);
    expect(riskTags(f('/usr/lib/x86_64-linux-gnu/security/pam_unix.so', 'changed', rec(), rec({ blake3: 'bb'.repeat(32) })))).toEqual(['pam']);
    expect(riskTags(f('/lib/security/pam_evil.so', 'added', null, rec()))).toEqual(['pam']);
    expect(riskTags(f('/etc/pam.d/sshd', 'changed', rec(), rec({ size: 2n })))).toEqual(['pam']);
  });
});
