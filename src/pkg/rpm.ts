import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { PackageIndex, type PackageDigestAlgo } from './dpkg.js';

/**
 * rpm's database, read without running rpm: the SQLite backend (`var/lib/rpm/rpmdb.sqlite`,
 * rpm ≥ 4.16: Fedora 33+, RHEL 9, openSUSE) through better-sqlite3, read-only. Each row of
 * `Packages` is one package header as rpm exports it: il, dl (big-endian u32), il index entries
 * {tag, type, offset, count} and dl bytes of data. The older Berkeley DB backend
 * (`Packages`, RHEL ≤ 8) is not read.
 */

const TAG = {
  NAME: 1000,
  VERSION: 1001,
  RELEASE: 1002,
  EPOCH: 1003,
  ARCH: 1022,
  FILEDIGESTS: 1035,
  FILEFLAGS: 1037,
  DIRINDEXES: 1116,
  BASENAMES: 1117,
  DIRNAMES: 1118,
  FILEDIGESTALGO: 5011,
} as const;
const TYPE = { INT16: 3, INT32: 4, STRING: 6, STRING_ARRAY: 8, I18NSTRING: 9 } as const;
/** RPMFILE_CONFIG: %config files, the counterpart of dpkg's conffiles */
const RPMFILE_CONFIG = 1;
/** PGPHASHALGO values rpm records in FILEDIGESTALGO (md5 when absent) */
/**
 * rpm's FILEDIGESTALGO (OpenPGP's hash algorithm numbers) as node:crypto names them. Another one
 * (RIPEMD-160, MD2, TIGER, HAVAL, or a newer rpm's SHA-3) leaves the package's files uncompared:
 * they count neither as compared nor as differing.
 */
const HASH_ALGO: Record<number, PackageDigestAlgo | undefined> = { 1: 'md5', 2: 'sha1', 8: 'sha256', 9: 'sha384', 10: 'sha512', 11: 'sha224' };

type Value = string | string[] | number[];

/** Parse an exported rpm header; only the tags integ needs. Throws on a malformed blob. */
export function parseRpmHeader(blob: Buffer): Map<number, Value> {
  const il = blob.readUInt32BE(0);
  const dl = blob.readUInt32BE(4);
  const dataStart = 8 + il * 16;
  if (il > 100_000 || dataStart + dl > blob.length) throw new Error('malformed rpm header');
  const want = new Set<number>(Object.values(TAG));
  const out = new Map<number, Value>();
  const strAt = (off: number): [string, number] => {
    const end = blob.indexOf(0, off);
    if (end < 0 || end >= dataStart + dl) throw new Error('malformed rpm header string');
    return [blob.toString('utf8', off, end), end + 1];
  };
  for (let i = 0; i < il; i++) {
    const e = 8 + i * 16;
    const tag = blob.readInt32BE(e);
    if (!want.has(tag)) continue;
    const type = blob.readUInt32BE(e + 4);
    const off = dataStart + blob.readInt32BE(e + 8);
    const count = blob.readUInt32BE(e + 12);
    if (off < dataStart || off > dataStart + dl) throw new Error('malformed rpm header offset');
    if (type === TYPE.STRING || type === TYPE.I18NSTRING) out.set(tag, strAt(off)[0]);
    else if (type === TYPE.STRING_ARRAY) {
      const a: string[] = [];
      let p = off;
      for (let k = 0; k < count; k++) {
        const [s, next] = strAt(p);
        a.push(s);
        p = next;
      }
      out.set(tag, a);
    } else if (type === TYPE.INT32 || type === TYPE.INT16) {
      const size = type === TYPE.INT32 ? 4 : 2;
      if (off + count * size > dataStart + dl) throw new Error('malformed rpm header array');
      out.set(
        tag,
        Array.from({ length: count }, (_, k) => (size === 4 ? blob.readUInt32BE(off + k * 4) : blob.readUInt16BE(off + k * 2))),
      );
    }
  }
  return out;
}

/** Add one package header's files to the index. */
export function addRpmHeader(idx: PackageIndex, blob: Buffer): void {
  const h = parseRpmHeader(blob);
  const name = h.get(TAG.NAME) as string | undefined;
  if (!name) return;
  const epoch = (h.get(TAG.EPOCH) as number[] | undefined)?.[0];
  const version = `${epoch ? `${epoch}:` : ''}${(h.get(TAG.VERSION) as string) ?? '?'}-${(h.get(TAG.RELEASE) as string) ?? '?'}`;
  const arch = (h.get(TAG.ARCH) as string | undefined) ?? 'noarch';
  const key = `${name}:${arch}`;
  idx.addPackage({ name, arch, version });
  const base = (h.get(TAG.BASENAMES) as string[] | undefined) ?? [];
  const dirs = (h.get(TAG.DIRNAMES) as string[] | undefined) ?? [];
  const dirIdx = (h.get(TAG.DIRINDEXES) as number[] | undefined) ?? [];
  const digests = (h.get(TAG.FILEDIGESTS) as string[] | undefined) ?? [];
  const flags = (h.get(TAG.FILEFLAGS) as number[] | undefined) ?? [];
  const algo = HASH_ALGO[(h.get(TAG.FILEDIGESTALGO) as number[] | undefined)?.[0] ?? 1];
  for (let i = 0; i < base.length; i++) {
    const dir = dirs[dirIdx[i] ?? -1];
    if (dir === undefined) continue;
    const d = digests[i];
    idx.addPath(`${dir}${base[i]}`, key, algo && d ? d.toLowerCase() : null, ((flags[i] ?? 0) & RPMFILE_CONFIG) !== 0, algo ?? 'md5');
  }
}

/** Load ROOT/var/lib/rpm/rpmdb.sqlite, or null when there is none (or it cannot be read). */
export function loadRpm(root: string): PackageIndex | null {
  const file = path.join(root || '/', 'var/lib/rpm/rpmdb.sqlite');
  if (!fs.existsSync(file)) return null;
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const idx = new PackageIndex(root, 'rpm');
    for (const blob of db.prepare('SELECT blob FROM Packages').pluck(true).iterate() as Iterable<Buffer>) {
      try {
        addRpmHeader(idx, blob);
      } catch {
        /* one malformed header does not hide the others */
      }
    }
    return idx;
  } catch {
    return null;
  } finally {
    db?.close();
  }
}
