import { pathForTerminal, pathJson } from '../core/pathenc.js';
import type { Attribute, EntryRecord } from '../core/types.js';
import type { FsattrsJson, RecordJson } from './documents.js';
import {
  aclEntries,
  capsText,
  describeXattr,
  differingXattrNames,
  flagDiff,
  flagNames,
  hasExtendedAcl,
  labelText,
  parseXattrs,
  xattrClass,
  XATTRS_UNSUPPORTED,
  type IdNames,
} from '../core/fsattrs.js';
import { idNames } from './idnames.js';

/** Extended attributes, ACL, capabilities, label and flags of a record as JSON (null: not recorded). */
export function fsattrsJson(r: EntryRecord, names: IdNames = idNames()): FsattrsJson {
  const pairs = parseXattrs(r.xattrs);
  const recorded = pairs !== null;
  const other = pairs?.filter(([n]) => xattrClass(n) === 'xattrs') ?? [];
  return {
    xattrs: !recorded ? null : r.xattrs === XATTRS_UNSUPPORTED ? 'unsupported' : Object.fromEntries(other.map(([n, v]) => [n, describeXattr(n, v, names)])),
    caps: recorded ? capsText(pairs) : null,
    acl: recorded ? aclEntries(pairs, names) : null,
    label: recorded ? labelText(pairs) : null,
    flags: r.flags === null || r.flags === undefined ? null : r.flags === -1 ? 'unsupported' : flagNames(r.flags),
  };
}

/** Nanoseconds since the epoch → ISO-8601 UTC with nanoseconds kept. */
export function nsToIso(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString(); // …sss Z
  const frac = ((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
  return `${iso.slice(0, 19)}.${frac.toString().padStart(9, '0')}Z`;
}

const num = (b: bigint): number | string => (b <= BigInt(Number.MAX_SAFE_INTEGER) && b >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b.toString());

/** An entry as JSON: mode as an octal string, times as ISO-8601 UTC (nanoseconds), digests hex. */
export function recordJson(r: EntryRecord): RecordJson {
  return {
    type: r.type,
    mode: r.mode.toString(8).padStart(4, '0'),
    uid: r.uid,
    gid: r.gid,
    size: num(r.size),
    mtime: nsToIso(r.mtimeNs),
    ctime: nsToIso(r.ctimeNs),
    inode: num(r.inode),
    nlink: r.nlink,
    ...(r.target ? pathJson(r.target, 'target') : { target: null }),
    blake3: r.blake3,
    sha256: r.sha256,
    ...fsattrsJson(r),
  };
}

function xattrChange(b: EntryRecord, a: EntryRecord, cls: 'xattrs' | 'caps' | 'acl' | 'label', names: IdNames): string {
  const bp = parseXattrs(b.xattrs) ?? [];
  const ap = parseXattrs(a.xattrs) ?? [];
  if (cls === 'caps') return `caps ${capsText(bp) ?? '(none)'}→${capsText(ap) ?? '(none)'}`;
  if (cls === 'label') return terminalText(`label ${labelText(bp) ?? '(none)'}→${labelText(ap) ?? '(none)'}`);
  if (cls === 'acl') {
    const be = withBaseEntries(aclEntries(bp, names), b.mode);
    const ae = withBaseEntries(aclEntries(ap, names), a.mode);
    const diff = [...ae.filter((e) => !be.includes(e)).map((e) => `+${e}`), ...be.filter((e) => !ae.includes(e)).map((e) => `-${e}`)];
    return `acl ${diff.join(' ')}${ae.length ? '' : ' (no ACL now)'}`;
  }
  const d = differingXattrNames(bp, ap, 'xattrs');
  const parts = [...d.appeared.map((n) => `+${n}`), ...d.vanished.map((n) => `-${n}`), ...d.changed.map((n) => `~${n}`)];
  // Names and labels come from the file system: escape control characters so they cannot forge report lines.
  return `xattrs ${terminalText(parts.join(' '))}`;
}

const rwx = (m: number): string => `${m & 4 ? 'r' : '-'}${m & 2 ? 'w' : '-'}${m & 1 ? 'x' : '-'}`;

/** Without an access ACL the mode is the ACL: show its three entries, so a diff names only what an ACL added. */
function withBaseEntries(entries: string[], mode: number): string[] {
  if (entries.some((e) => !e.startsWith('default:'))) return entries;
  return [`user::${rwx(mode >> 6)}`, `group::${rwx(mode >> 3)}`, `other::${rwx(mode)}`, ...entries];
}

/** Text from the file system or a feed, with control characters escaped as pathForTerminal does. */
export function terminalText(t: string): string {
  return pathForTerminal(Buffer.from(t, 'utf8'));
}

/** "(ACL present)" next to mode: the group bits then show the ACL mask, not the owning group's permissions. */
export function aclNote(r: EntryRecord): string {
  return hasExtendedAcl(parseXattrs(r.xattrs)) ? ' (ACL present)' : '';
}

const shortDigest = (r: EntryRecord): string => `${(r.blake3 ?? r.sha256 ?? '-').slice(0, 12)}…`;

/** "mode 644→755, uid 0→1000, …": what changed between two records, for text reports. */
export function describeChanges(before: EntryRecord, after: EntryRecord, attributes: readonly Attribute[]): string {
  const b = before;
  const a = after;
  return attributes
    .map((attr) => {
      switch (attr) {
        case 'mode':
          return `mode ${b.mode.toString(8)}→${a.mode.toString(8)}${aclNote(a) || aclNote(b)}`;
        case 'xattrs':
        case 'caps':
        case 'acl':
        case 'label':
          return xattrChange(b, a, attr, idNames());
        case 'flags':
          return `flags ${flagDiff(b.flags === -1 ? 0 : (b.flags ?? 0), a.flags === -1 ? 0 : (a.flags ?? 0)).join(' ')}`;
        case 'entries':
          return 'entries created and removed since the baseline';
        case 'uid':
          return `uid ${b.uid}→${a.uid}`;
        case 'gid':
          return `gid ${b.gid}→${a.gid}`;
        case 'size':
          return `size ${b.size}→${a.size}`;
        case 'type':
          return `type ${b.type}→${a.type}`;
        case 'target':
          return `target ${b.target ? pathForTerminal(b.target) : '-'}→${a.target ? pathForTerminal(a.target) : '-'}`;
        case 'mtime':
          return `mtime ${nsToIso(b.mtimeNs)}→${nsToIso(a.mtimeNs)}`;
        case 'ctime':
          return `ctime ${nsToIso(b.ctimeNs)}→${nsToIso(a.ctimeNs)}`;
        case 'content':
          return `content ${shortDigest(b)}→${shortDigest(a)}`;
        case 'inode':
          return `inode ${b.inode}→${a.inode}`;
        case 'nlink':
          return `nlink ${b.nlink}→${a.nlink}`;
        default:
          return attr;
      }
    })
    .join(', ');
}
