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

/**
 * cmpText(r) written as UTF-8 straight into `out` at `off`, without building the string: the
 * end offset, or -1 when `out` has too little room (nothing useful written; grow it and call
 * again). The hash workers send every result's compare text, so this runs once per entry; the
 * template string above costs a rope of 27 parts, its flattening and a string per number.
 * Property-tested against cmpText (test/unit/entry-cmp.test.ts).
 */
export function writeCmp(r: EntryRecord, out: Buffer, off: number): number {
  const x = r.xattrs === null || r.xattrs === undefined ? null : r.xattrs;
  const t = r.target;
  // the longest the fixed part can be: 8 decimal numbers of at most 20 characters, two 64-hex
  // digests or "-", the type and separators; then the target's hex and the xattrs' UTF-8
  const room = 8 * 21 + 2 * 130 + 16 + (t ? 2 * t.length + 2 : 1) + (x === null ? 1 : 1 + 3 * x.length);
  if (out.length - off < room) return -1;
  let o = ascii(out, off, r.type);
  out[o++] = SP;
  o = uint(out, o, r.mode);
  out[o++] = SP;
  o = uint(out, o, r.uid);
  out[o++] = SP;
  o = uint(out, o, r.gid);
  out[o++] = SP;
  o = big(out, o, r.size);
  out[o++] = SP;
  o = big(out, o, r.mtimeNs);
  out[o++] = SP;
  o = big(out, o, r.ctimeNs);
  out[o++] = SP;
  o = big(out, o, r.inode > 0x7fffffffffffffffn ? BigInt.asIntN(64, r.inode) : r.inode);
  out[o++] = SP;
  o = uint(out, o, r.nlink);
  out[o++] = SP;
  if (t === null) out[o++] = DASH;
  else if (t.length === 0) {
    out[o++] = QUOTE;
    out[o++] = QUOTE;
  } else o = hex(out, o, t);
  out[o++] = SP;
  o = r.blake3 === null ? dash(out, o) : ascii(out, o, r.blake3);
  out[o++] = SP;
  o = r.sha256 === null ? dash(out, o) : ascii(out, o, r.sha256);
  out[o++] = SP;
  o = r.flags === null || r.flags === undefined ? dash(out, o) : int(out, o, r.flags);
  out[o++] = SP;
  if (x === null) out[o++] = DASH;
  else {
    out[o++] = 0x78; // x
    o += out.write(x, o, 'utf8');
  }
  return o;
}

const SP = 0x20;
const DASH = 0x2d;
const QUOTE = 0x22;

function dash(out: Buffer, o: number): number {
  out[o] = DASH;
  return o + 1;
}

/** A string of ASCII characters (type names, hex digests), byte by byte. */
function ascii(out: Buffer, o: number, s: string): number {
  for (let i = 0; i < s.length; i++) out[o++] = s.charCodeAt(i);
  return o;
}

const HEX = Buffer.from('0123456789abcdef');

/** Bytes in lower-case hex. */
function hex(out: Buffer, o: number, b: Buffer): number {
  for (let i = 0; i < b.length; i++) {
    out[o++] = HEX[b[i]! >> 4]!;
    out[o++] = HEX[b[i]! & 15]!;
  }
  return o;
}

/** A non-negative integer below 2^53 in decimal. */
function uint(out: Buffer, o: number, v: number): number {
  let digits = 1;
  for (let p = 10; p <= v; p *= 10) digits++;
  for (let i = o + digits - 1; i >= o; i--) {
    out[i] = 0x30 + (v % 10);
    v = Math.floor(v / 10);
  }
  return o + digits;
}

/** Any safe integer in decimal (flags may be negative, as the store keeps them signed). */
function int(out: Buffer, o: number, v: number): number {
  if (v >= 0 && Number.isSafeInteger(v)) return uint(out, o, v);
  return ascii(out, o, String(v));
}

/** A 64-bit value in decimal: as a number below 2^53 (no string), else through its string. */
function big(out: Buffer, o: number, v: bigint): number {
  if (v >= 0n && v <= 9007199254740991n) return uint(out, o, Number(v));
  return ascii(out, o, v.toString());
}
