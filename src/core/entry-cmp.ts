import type { EntryRecord } from './types.js';

/**
 * The compare text of an entry: every attribute `check` compares, in one line. Two records
 * with the same compare text are identical in everything compareEntry looks at, so an
 * unchanged entry (nearly all of them, every run) is recognised by one byte comparison
 * instead of decoding both sides. The stored side is produced by SQLite with the same
 * format (store/generation-digest.ts, CMP_SQL; the two are property-tested against each
 * other); any difference at all, including one of encoding only, sends the entry to the full
 * comparison, which decides.
 *
 * Fields, space separated: type mode uid gid size mtime ctime inode nlink target blake3
 * sha256 flags xattrs. The inode is the signed 64-bit value the store keeps; target is hex
 * ("-" none, `""` empty); absent digests and flags are "-"; xattrs come last ("-" not
 * recorded, else "x" and the stored encoding), so a space inside them cannot shift a field.
 * The xattrs encoding never contains a raw newline (it is JSON or "unsupported").
 */
export function cmpText(r: EntryRecord): string {
  const t = r.target === null ? '-' : r.target.length === 0 ? '""' : r.target.toString('hex');
  const inode = r.inode > 0x7fffffffffffffffn ? BigInt.asIntN(64, r.inode) : r.inode;
  const x = r.xattrs === null || r.xattrs === undefined ? '-' : `x${r.xattrs}`;
  return `${r.type} ${r.mode} ${r.uid} ${r.gid} ${r.size} ${r.mtimeNs} ${r.ctimeNs} ${inode} ${r.nlink} ${t} ${r.blake3 ?? '-'} ${r.sha256 ?? '-'} ${r.flags ?? '-'} ${x}`;
}
