import { COMPARED_FLAGS, differingXattrNames, parseXattrs, type XattrClass } from './fsattrs.js';
import type { Attribute, CheckItem, EntryRecord, Finding, Observed, Rule } from './types.js';

const XATTR_ATTRS: ReadonlyArray<Attribute & XattrClass> = ['xattrs', 'caps', 'acl', 'label'];
/** Attributes of a directory itself whose change also moves its ctime. */
const OWN_METADATA: ReadonlySet<Attribute> = new Set(['mode', 'uid', 'gid', 'xattrs', 'caps', 'acl', 'label', 'flags', 'type', 'inode']);

/** Flags as compared: unsupported counts as none; bits the file system manages are ignored. */
const comparedFlags = (f: number): number => (f === -1 ? 0 : f & COMPARED_FLAGS);

/**
 * A directory's size, mtime, ctime and nlink change whenever an entry inside it is added,
 * removed or renamed. integ reports those entries themselves, so on directories these four
 * are not compared (the change shows as the added/removed child instead).
 */
const DIR_NOISE: ReadonlySet<Attribute> = new Set(['size', 'mtime', 'ctime', 'nlink']);
/** With `growing`, these follow from appending and are judged by the growth rule instead. */
const GROWING_NOISE: ReadonlySet<Attribute> = new Set(['size', 'mtime', 'ctime', 'content']);

function contentDiffers(before: EntryRecord, after: EntryRecord): boolean {
  // Compare every algorithm both sides have; a side without digests (unreadable then) is unknown, not different.
  if (before.blake3 && after.blake3 && before.blake3 !== after.blake3) return true;
  return Boolean(before.sha256 && after.sha256 && before.sha256 !== after.sha256);
}

function bufEq(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return a === b;
  return a.equals(b);
}

/**
 * `check` as a set, made once per array: check compares every entry of a rule with the rule's
 * one array, and a Set per entry was ~70 MB of garbage on /usr. The arrays are read-only.
 */
const wantSets = new WeakMap<readonly CheckItem[], ReadonlySet<CheckItem>>();
function wantOf(check: readonly CheckItem[]): ReadonlySet<CheckItem> {
  let w = wantSets.get(check);
  if (!w) wantSets.set(check, (w = new Set(check)));
  return w;
}

/** The attributes in which `after` differs from `before`, as far as `check` asks. Pure. */
export function differingAttributes(before: EntryRecord, after: Observed, check: readonly CheckItem[]): Attribute[] {
  const want = wantOf(check);
  const growing = want.has('growing') && before.type === 'file' && after.type === 'file';
  const out: Attribute[] = [];
  const consider = (a: Attribute): boolean => {
    if (!want.has(a) && !(growing && (a === 'content' || a === 'size'))) return false;
    if (before.type === 'dir' && after.type === 'dir' && DIR_NOISE.has(a)) return false;
    return true;
  };
  if (consider('content') && before.type === 'file' && after.type === 'file') {
    if (growing) {
      const prefixChanged =
        (before.blake3 && after.prefixBlake3 !== undefined && after.prefixBlake3 !== null && before.blake3 !== after.prefixBlake3) ||
        (before.sha256 && after.prefixSha256 !== undefined && after.prefixSha256 !== null && before.sha256 !== after.prefixSha256);
      if (after.size < before.size) out.push('size');
      else if (prefixChanged) out.push('content');
    } else if (contentDiffers(before, after)) out.push('content');
  }
  if (consider('type') && before.type !== after.type) out.push('type');
  if (consider('mode') && before.mode !== after.mode) out.push('mode');
  if (consider('uid') && before.uid !== after.uid) out.push('uid');
  if (consider('gid') && before.gid !== after.gid) out.push('gid');
  if (!growing && consider('size') && before.type === after.type && before.size !== after.size) out.push('size');
  if (!(growing && GROWING_NOISE.has('mtime')) && consider('mtime') && before.mtimeNs !== after.mtimeNs) out.push('mtime');
  if (!(growing && GROWING_NOISE.has('ctime')) && consider('ctime') && before.ctimeNs !== after.ctimeNs) out.push('ctime');
  // The store keeps inodes as signed 64-bit integers; the file system's are unsigned.
  if (consider('inode') && BigInt.asUintN(64, before.inode) !== BigInt.asUintN(64, after.inode)) out.push('inode');
  if (consider('nlink') && before.nlink !== after.nlink) out.push('nlink');
  if (consider('target') && (before.type === 'symlink' || after.type === 'symlink') && !bufEq(before.target, after.target)) out.push('target');
  // Extended attributes and flags: compared only when both sides recorded them (older stores
  // did not: "not recorded" is never "changed").
  if (XATTR_ATTRS.some((a) => want.has(a)) && (before.xattrs ?? null) !== null && (after.xattrs ?? null) !== null && before.xattrs !== after.xattrs) {
    const b = parseXattrs(before.xattrs)!;
    const a = parseXattrs(after.xattrs)!;
    for (const cls of XATTR_ATTRS) {
      if (!want.has(cls)) continue;
      const d = differingXattrNames(b, a, cls);
      if (d.appeared.length || d.vanished.length || d.changed.length) out.push(cls);
    }
  }
  if (want.has('flags') && typeof before.flags === 'number' && typeof after.flags === 'number' && comparedFlags(before.flags) !== comparedFlags(after.flags))
    out.push('flags');
  // A directory whose entries changed: its mtime moved (or its ctime, with nothing of its own
  // that changed). check keeps this only when no added/removed/replaced child explains it.
  if (
    want.has('entries') &&
    before.type === 'dir' &&
    after.type === 'dir' &&
    (before.mtimeNs !== after.mtimeNs || (before.ctimeNs !== after.ctimeNs && !out.some((a) => OWN_METADATA.has(a))))
  )
    out.push('entries');
  // Attributes always in canonical order, content first.
  return out;
}

/** Compare one path's baseline record with what was observed; null when nothing in `rule.check` differs. */
export function compareEntry(before: EntryRecord | null, after: Observed | null, rule: Rule): Finding | null {
  const path = (after ?? before)!.path;
  if (before && !after) return { path, kind: 'removed', rule: rule.name, severity: rule.severity, attributes: [], before, after: null };
  if (!before && after) return { path, kind: 'added', rule: rule.name, severity: rule.severity, attributes: [], before: null, after: stripPrefix(after) };
  const attributes = differingAttributes(before!, after!, rule.check);
  if (attributes.length === 0) return null;
  return { path, kind: 'changed', rule: rule.name, severity: rule.severity, attributes, before, after: stripPrefix(after!) };
}

function stripPrefix(o: Observed): EntryRecord {
  const { prefixBlake3: _a, prefixSha256: _b, ...rest } = o;
  return rest;
}
