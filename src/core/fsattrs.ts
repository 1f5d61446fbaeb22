/**
 * Extended attributes and inode flags: the stored encoding, and decoders that turn the raw
 * values into what an administrator reads (`cap_setuid=ep`, `user:nobody:rwx`, `+i`).
 * Pure: no file-system access (the reads are in src/scan/fsmeta.ts).
 *
 * Stored encoding of an entry's extended attributes (column `xattrs`):
 * - NULL: not recorded (a store from before these attributes, or a rule that does not ask);
 * - `unsupported`: the file system has no extended attributes;
 * - otherwise JSON `[[name, value], …]` sorted by name; value is base64, or `sha256:<hex>` for
 *   values over XATTR_INLINE_MAX bytes (compared by digest).
 * Inode flags (column `flags`): NULL not recorded or not applicable (symlinks, FIFOs, devices,
 * sockets, unreadable files), -1 unsupported, else the FS_IOC_GETFLAGS value.
 */

export const XATTRS_UNSUPPORTED = 'unsupported';
export const FLAGS_UNSUPPORTED = -1;
/** Values up to this size are stored in full; longer ones as their SHA-256. */
export const XATTR_INLINE_MAX = 4096;

export type XattrPairs = Array<[string, string]>;

/** Decode the stored encoding; null when not recorded, [] when unsupported or none. */
export function parseXattrs(enc: string | null | undefined): XattrPairs | null {
  if (enc === null || enc === undefined) return null;
  if (enc === XATTRS_UNSUPPORTED) return [];
  try {
    const v = JSON.parse(enc) as unknown;
    return Array.isArray(v) ? (v as XattrPairs) : [];
  } catch {
    return [];
  }
}

export type XattrClass = 'caps' | 'acl' | 'label' | 'xattrs';

/** Which reported attribute an extended attribute belongs to. */
export function xattrClass(name: string): XattrClass {
  if (name === 'security.capability') return 'caps';
  if (name === 'system.posix_acl_access' || name === 'system.posix_acl_default') return 'acl';
  if (name === 'security.selinux' || name.startsWith('security.SMACK64') || name === 'security.apparmor') return 'label';
  return 'xattrs';
}

/** The names whose presence or value differs between two pair lists, restricted to one class. */
export function differingXattrNames(before: XattrPairs, after: XattrPairs, cls: XattrClass): { appeared: string[]; vanished: string[]; changed: string[] } {
  const b = new Map(before.filter(([n]) => xattrClass(n) === cls));
  const a = new Map(after.filter(([n]) => xattrClass(n) === cls));
  const appeared = [...a.keys()].filter((n) => !b.has(n)).sort();
  const vanished = [...b.keys()].filter((n) => !a.has(n)).sort();
  const changed = [...a.keys()].filter((n) => b.has(n) && b.get(n) !== a.get(n)).sort();
  return { appeared, vanished, changed };
}

const valueBuf = (v: string): Buffer | null => (v.startsWith('sha256:') ? null : Buffer.from(v, 'base64'));

// ---- capabilities (linux/capability.h: struct vfs_cap_data / vfs_ns_cap_data) ----

export const CAP_NAMES = [
  'cap_chown',
  'cap_dac_override',
  'cap_dac_read_search',
  'cap_fowner',
  'cap_fsetid',
  'cap_kill',
  'cap_setgid',
  'cap_setuid',
  'cap_setpcap',
  'cap_linux_immutable',
  'cap_net_bind_service',
  'cap_net_broadcast',
  'cap_net_admin',
  'cap_net_raw',
  'cap_ipc_lock',
  'cap_ipc_owner',
  'cap_sys_module',
  'cap_sys_rawio',
  'cap_sys_chroot',
  'cap_sys_ptrace',
  'cap_sys_pacct',
  'cap_sys_admin',
  'cap_sys_boot',
  'cap_sys_nice',
  'cap_sys_resource',
  'cap_sys_time',
  'cap_sys_tty_config',
  'cap_mknod',
  'cap_lease',
  'cap_audit_write',
  'cap_audit_control',
  'cap_setfcap',
  'cap_mac_override',
  'cap_mac_admin',
  'cap_syslog',
  'cap_wake_alarm',
  'cap_block_suspend',
  'cap_audit_read',
  'cap_perfmon',
  'cap_bpf',
  'cap_checkpoint_restore',
] as const;

/**
 * `security.capability` → getcap-style text: capabilities with the same flags grouped,
 * e.g. `cap_net_raw,cap_setuid=ep`; v3 (namespaced) adds `[rootid=N]`.
 */
export function decodeCaps(v: Buffer): string {
  if (v.length < 4) return `malformed (${v.length} bytes)`;
  const magic = v.readUInt32LE(0);
  const rev = magic & 0xff000000;
  const effective = (magic & 1) === 1;
  const words = rev === 0x01000000 ? 1 : rev === 0x02000000 || rev === 0x03000000 ? 2 : 0;
  if (words === 0 || v.length < 4 + words * 8) return `unknown revision 0x${(rev >>> 24).toString(16)} (${v.length} bytes)`;
  const groups = new Map<string, string[]>();
  for (let bit = 0; bit < words * 32; bit++) {
    const w = bit >> 5;
    const mask = 1 << (bit & 31);
    const p = (v.readUInt32LE(4 + w * 8) & mask) !== 0;
    const i = (v.readUInt32LE(8 + w * 8) & mask) !== 0;
    if (!p && !i) continue;
    const fl = `${effective ? 'e' : ''}${i ? 'i' : ''}${p ? 'p' : ''}`;
    const name = CAP_NAMES[bit] ?? `cap_${bit}`;
    groups.set(fl, [...(groups.get(fl) ?? []), name]);
  }
  let text = [...groups].map(([fl, names]) => `${names.join(',')}=${fl}`).join(' ') || '(no capabilities)';
  if (rev === 0x03000000 && v.length >= 24) text += ` [rootid=${v.readUInt32LE(20)}]`;
  return text;
}

/** The capability names a value grants (for risk tags). */
export function capNames(v: Buffer): string[] {
  const t = decodeCaps(v);
  return [...t.matchAll(/cap_[a-z_0-9]+/g)].map((m) => m[0]);
}

// ---- POSIX ACLs (linux/posix_acl_xattr.h) ----

const ACL_TAGS: Record<number, string> = { 0x01: 'user', 0x02: 'user', 0x04: 'group', 0x08: 'group', 0x10: 'mask', 0x20: 'other' };

export interface IdNames {
  user(uid: number): string | undefined;
  group(gid: number): string | undefined;
}

/** One ACL xattr → getfacl-style entries: `user::rw-`, `user:nobody:rwx`, `mask::rwx`, `other::r--`. */
export function decodeAcl(v: Buffer, names?: IdNames): string[] {
  if (v.length < 4 || (v.length - 4) % 8 !== 0) return [`malformed (${v.length} bytes)`];
  const out: string[] = [];
  for (let off = 4; off < v.length; off += 8) {
    const tag = v.readUInt16LE(off);
    const perm = v.readUInt16LE(off + 2);
    const id = v.readUInt32LE(off + 4);
    const kind = ACL_TAGS[tag] ?? `tag${tag}`;
    const qual = tag === 0x02 ? (names?.user(id) ?? String(id)) : tag === 0x08 ? (names?.group(id) ?? String(id)) : '';
    out.push(`${kind}:${qual}:${perm & 4 ? 'r' : '-'}${perm & 2 ? 'w' : '-'}${perm & 1 ? 'x' : '-'}`);
  }
  return out;
}

/** Whether an entry carries an extended ACL (more than the three entries the mode bits express). */
export function hasExtendedAcl(pairs: XattrPairs | null): boolean {
  if (!pairs) return false;
  return pairs.some(([n, v]) => (n === 'system.posix_acl_access' || n === 'system.posix_acl_default') && (valueBuf(v)?.length ?? 100) > 4 + 3 * 8);
}

// ---- labels ----

/** A label value as text (SELinux and SMACK store a NUL-terminated string). */
export function decodeLabel(v: Buffer): string {
  const s = v.toString('utf8').replace(/\0+$/, '');
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(s) ? `hex:${v.toString('hex')}` : s;
}

/** One extended attribute's value for people: decoded where it has a meaning, else text or hex. */
export function describeXattr(name: string, value: string, names?: IdNames): string {
  const v = valueBuf(value);
  if (!v) return value; // sha256:… for a long value
  switch (xattrClass(name)) {
    case 'caps':
      return decodeCaps(v);
    case 'acl':
      return (name === 'system.posix_acl_default' ? decodeAcl(v, names).map((e) => `default:${e}`) : decodeAcl(v, names)).join(',');
    case 'label':
      return decodeLabel(v);
    default: {
      const s = v.toString('utf8');
      // eslint-disable-next-line no-control-regex
      return v.length <= 64 && !/[\u0000-\u001f\u007f\ufffd]/.test(s)
        ? JSON.stringify(s)
        : `${v.length} bytes hex:${v.subarray(0, 32).toString('hex')}${v.length > 32 ? '…' : ''}`;
    }
  }
}

/** All entries of the access and default ACL, for reports: `user:nobody:rwx`, `default:mask::rwx`. */
export function aclEntries(pairs: XattrPairs | null, names?: IdNames): string[] {
  if (!pairs) return [];
  const out: string[] = [];
  for (const [n, val] of pairs) {
    const v = valueBuf(val);
    if (!v) continue;
    if (n === 'system.posix_acl_access') out.push(...decodeAcl(v, names));
    if (n === 'system.posix_acl_default') out.push(...decodeAcl(v, names).map((e) => `default:${e}`));
  }
  return out;
}

/** The capabilities text of an entry, or null when it has none. */
export function capsText(pairs: XattrPairs | null): string | null {
  const c = pairs?.find(([n]) => n === 'security.capability');
  if (!c) return null;
  const v = valueBuf(c[1]);
  return v ? decodeCaps(v) : c[1];
}

export function capsList(pairs: XattrPairs | null): string[] {
  const c = pairs?.find(([n]) => n === 'security.capability');
  const v = c ? valueBuf(c[1]) : null;
  return v ? capNames(v) : [];
}

export function labelText(pairs: XattrPairs | null): string | null {
  const l = pairs?.filter(([n]) => xattrClass(n) === 'label') ?? [];
  if (!l.length) return null;
  return l.map(([n, val]) => `${n}=${describeXattr(n, val)}`).join(' ');
}

// ---- inode flags (linux/fs.h FS_*_FL, letters as lsattr prints them) ----

const FLAG_LETTERS: ReadonlyArray<[number, string, string]> = [
  [0x00000001, 's', 'secure deletion'],
  [0x00000002, 'u', 'undeletable'],
  [0x00000004, 'c', 'compressed'],
  [0x00000008, 'S', 'synchronous updates'],
  [0x00000010, 'i', 'immutable'],
  [0x00000020, 'a', 'append only'],
  [0x00000040, 'd', 'no dump'],
  [0x00000080, 'A', 'no atime updates'],
  [0x00000400, 'm', 'no compression'],
  [0x00000800, 'E', 'encrypted'],
  [0x00004000, 'j', 'data journalling'],
  [0x00008000, 't', 'no tail-merging'],
  [0x00010000, 'D', 'synchronous directory updates'],
  [0x00020000, 'T', 'top of directory hierarchy'],
  [0x00100000, 'V', 'verity'],
  [0x00800000, 'C', 'no copy on write'],
  [0x02000000, 'x', 'DAX'],
  [0x20000000, 'P', 'project hierarchy'],
  [0x40000000, 'F', 'casefold'],
];

/**
 * The flags that are compared: the ones an administrator sets with chattr. Bits the file
 * system manages itself (extents `e`, indexed directory `I`, inline data `N`, huge file `h`)
 * change as a file or directory grows and are ignored.
 */
export const COMPARED_FLAGS = FLAG_LETTERS.reduce((m, [b]) => m | b, 0);

/** Flags as lsattr letters with a plus: `+i +a`; '' for none. */
export function flagNames(flags: number): string[] {
  return FLAG_LETTERS.filter(([b]) => (flags & b) !== 0).map(([, l]) => `+${l}`);
}

/** Flag changes between two values: `+i` set, `-a` cleared. */
export function flagDiff(before: number, after: number): string[] {
  const out: string[] = [];
  for (const [b, l] of FLAG_LETTERS) {
    if (!(before & b) && after & b) out.push(`+${l}`);
    if (before & b && !(after & b)) out.push(`-${l}`);
  }
  return out;
}

export const FLAG_IMMUTABLE = 0x10;
export const FLAG_APPEND = 0x20;
