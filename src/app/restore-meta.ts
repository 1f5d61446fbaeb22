import crypto from 'node:crypto';
import fs from 'node:fs';
import { COMPARED_FLAGS, FLAG_APPEND, FLAG_IMMUTABLE, flagNames, parseXattrs, xattrClass } from '../core/fsattrs.js';
import type { EntryRecord } from '../core/types.js';
import { CantCreateError } from '../util/errors.js';
import { FdMetaError, fdGetFlags, fdGetXattr, fdListXattrs, fdRemoveXattr, fdSetFlags, fdSetXattr } from '../scan/fsmeta-fd.js';
import { at } from './safe-path.js';

/**
 * Extended attributes and inode flags of the known-good version, put back on an open
 * descriptor (never a path): exactly the recorded set of extended attributes (extra ones
 * removed, missing or changed ones set, values byte-exact), and the recorded chattr flags.
 */

/** One attribute that could not be put back, with why. */
export interface NotRestored {
  /** the reported attribute it belongs to: xattrs, caps, acl, label or flags */
  attribute: string;
  /** the extended attribute's name, or the flag letters */
  name: string;
  reason: string;
}

export interface MetaOutcome {
  /** extended attributes set or removed to match the record */
  changed: string[];
  notRestored: NotRestored[];
}

const nameBytes = (n: string): Buffer => (n.startsWith('b64:') ? Buffer.from(n.slice(4), 'base64') : Buffer.from(n, 'utf8'));
const nameText = (b: Buffer): string => {
  const s = b.toString('utf8');
  return Buffer.from(s, 'utf8').equals(b) ? s : `b64:${b.toString('base64')}`;
};
const sha256 = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

/**
 * Set exactly the extended attributes `rec` recorded on `fd`. `donor` returns the value the
 * suspect version carries for a name (for values over 4 KiB, stored only as their SHA-256:
 * they are put back when the suspect still has the same bytes). Nothing is done when the
 * record has no extended attributes (a rule that does not check them, an old store).
 */
export function restoreXattrs(fd: number, rec: EntryRecord, donor?: (name: Buffer) => Buffer | null): MetaOutcome {
  const out: MetaOutcome = { changed: [], notRestored: [] };
  const pairs = parseXattrs(rec.xattrs);
  if (pairs === null) return out;
  let current: Buffer[] | null;
  try {
    current = fdListXattrs(fd);
  } catch (e) {
    for (const [n] of pairs) out.notRestored.push({ attribute: xattrClass(n), name: n, reason: (e as Error).message });
    return out;
  }
  if (current === null) {
    for (const [n] of pairs) out.notRestored.push({ attribute: xattrClass(n), name: n, reason: 'this file system (or platform) has no extended attributes' });
    return out;
  }
  const wanted = new Map(pairs.map(([n, v]) => [nameBytes(n).toString('hex'), { name: n, value: v }]));
  // Extra attributes the new or suspect inode carries (an added security.capability, an
  // inherited default ACL, a planted user.* value): removed.
  for (const c of current) {
    if (wanted.has(c.toString('hex'))) continue;
    const n = nameText(c);
    try {
      fdRemoveXattr(fd, c);
      out.changed.push(`-${n}`);
    } catch (e) {
      out.notRestored.push({ attribute: xattrClass(n), name: n, reason: `could not remove it: ${(e as Error).message}` });
    }
  }
  for (const { name, value } of wanted.values()) {
    const nb = nameBytes(name);
    let have: Buffer | null = null;
    try {
      have = fdGetXattr(fd, nb);
    } catch {
      have = null;
    }
    let want: Buffer;
    if (value.startsWith('error:')) {
      out.notRestored.push({ attribute: xattrClass(name), name, reason: `its value could not be read when it was recorded (errno ${value.slice(6)})` });
      continue;
    }
    if (value.startsWith('sha256:')) {
      const digest = value.slice(7);
      if (have && sha256(have) === digest) continue;
      const d = donor?.(nb) ?? null;
      if (!d || sha256(d) !== digest) {
        out.notRestored.push({
          attribute: xattrClass(name),
          name,
          reason: 'its value is over 4 KiB, so only its SHA-256 was recorded, and the suspect version does not carry that value',
        });
        continue;
      }
      want = d;
    } else want = Buffer.from(value, 'base64');
    if (have?.equals(want)) continue;
    try {
      fdSetXattr(fd, nb, want);
      const back = fdGetXattr(fd, nb);
      if (!back?.equals(want)) {
        out.notRestored.push({ attribute: xattrClass(name), name, reason: 'the kernel stored a different value than the recorded one' });
        continue;
      }
      out.changed.push(`${have ? '~' : '+'}${name}`);
    } catch (e) {
      out.notRestored.push({ attribute: xattrClass(name), name, reason: (e as Error).message });
    }
  }
  return out;
}

const I_A = FLAG_IMMUTABLE | FLAG_APPEND;

/**
 * Set the chattr flags `rec` recorded (the compared ones; bits the file system manages are
 * kept as they are). Returns what could not be set; nothing when flags were not recorded.
 */
export function restoreFlags(fd: number, rec: EntryRecord): NotRestored[] {
  if (typeof rec.flags !== 'number') return [];
  const want = rec.flags === -1 ? 0 : rec.flags & COMPARED_FLAGS;
  let cur: number | null;
  try {
    cur = fdGetFlags(fd);
  } catch (e) {
    return want ? [{ attribute: 'flags', name: flagNames(want).join(' '), reason: (e as Error).message }] : [];
  }
  if (cur === null) return want ? [{ attribute: 'flags', name: flagNames(want).join(' '), reason: 'this file system has no inode flags' }] : [];
  const next = ((cur & ~COMPARED_FLAGS) | want) >>> 0;
  if (next === cur) return [];
  try {
    fdSetFlags(fd, next);
    const back = fdGetFlags(fd);
    if (back !== null && (back & COMPARED_FLAGS) !== want)
      return [
        {
          attribute: 'flags',
          name: flagNames(want).join(' ') || '(none)',
          reason: `the file system kept ${flagNames(back & COMPARED_FLAGS).join(' ') || 'none'}`,
        },
      ];
  } catch (e) {
    return [{ attribute: 'flags', name: flagNames(want).join(' ') || '(none)', reason: (e as Error).message }];
  }
  return [];
}

/** Flags cleared on a suspect inode so it can be replaced; `undo` puts them back (a failed restore). */
export interface Unlocked {
  flags: number;
  undo(): void;
  /** close the descriptor it holds */
  release(): void;
}

/**
 * An immutable (+i) or append-only (+a) suspect file or directory cannot be renamed over or
 * changed. The suspect is sealed already and is about to be replaced, so those two flags are
 * cleared on its descriptor (opened without following a symlink; only regular files and
 * directories are opened); the known-good version's own flags are set afterwards. Null when
 * there is nothing to clear. Needs CAP_LINUX_IMMUTABLE (73 otherwise, with the reason).
 */
export function unlockSuspect(dirfd: number, name: Buffer, label: string): Unlocked | null {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(at(dirfd, name));
  } catch {
    return null;
  }
  if (!st.isFile() && !st.isDirectory()) return null;
  let fd: number;
  try {
    fd = fs.openSync(at(dirfd, name), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return null;
  }
  let handedOver = false;
  try {
    const f = fs.fstatSync(fd);
    if (f.ino !== st.ino || f.dev !== st.dev) return null;
    let flags: number | null;
    try {
      flags = fdGetFlags(fd);
    } catch {
      return null;
    }
    if (flags === null || !(flags & I_A)) return null;
    try {
      fdSetFlags(fd, (flags & ~I_A) >>> 0);
    } catch (e) {
      throw new CantCreateError(
        `${label} is ${flagNames(flags & I_A).join(' ')} (immutable/append-only) and cannot be replaced: clearing it failed: ${(e as FdMetaError).message} (needs CAP_LINUX_IMMUTABLE); nothing restored`,
      );
    }
    const orig = flags;
    const held = fd;
    handedOver = true;
    return {
      flags: orig,
      undo: () => {
        try {
          if (fs.fstatSync(held).nlink > 0) fdSetFlags(held, orig);
        } catch {
          /* best effort */
        }
      },
      release: () => fs.closeSync(held),
    };
  } finally {
    if (!handedOver) fs.closeSync(fd);
  }
}

/** The value the suspect version at dirfd/name carries for one extended attribute (regular files only). */
export function suspectXattr(dirfd: number, name: Buffer, attr: Buffer): Buffer | null {
  try {
    const st = fs.lstatSync(at(dirfd, name));
    if (!st.isFile()) return null;
    const fd = fs.openSync(at(dirfd, name), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      const f = fs.fstatSync(fd);
      if (f.ino !== st.ino) return null;
      return fdGetXattr(fd, attr);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
}
