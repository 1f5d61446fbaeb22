import zlib from 'node:zlib';
import crypto from 'node:crypto';
import type { DB } from './db.js';
import type { EntryRecord } from '../core/types.js';
import { blake3Hex } from '../scan/blake3.js';

/** Key of a kept content: blake3 of the raw bytes. */
export function contentDigest(data: Buffer): string {
  return `blake3:${blake3Hex(data)}`;
}

/** Whether `data` is the content an entry recorded (every digest the entry has must match). */
export function matchesEntry(data: Buffer, rec: Pick<EntryRecord, 'blake3' | 'sha256' | 'size'>): boolean {
  if (BigInt(data.length) !== rec.size) return false;
  if (!rec.blake3 && !rec.sha256) return false;
  if (rec.blake3 && blake3Hex(data) !== rec.blake3) return false;
  if (rec.sha256 && crypto.createHash('sha256').update(data).digest('hex') !== rec.sha256) return false;
  return true;
}

/** Why kept content could not be used (the caller turns it into the right exit code). */
export class ContentProblem extends Error {}

function hasTable(db: DB, name: string): boolean {
  return Boolean(db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name));
}

/**
 * Known-good file content: brotli-compressed, deduplicated by digest (`contents`), referenced
 * per generation and path (`kept`, covered by the generation digest). Reads verify the bytes
 * against the key before returning them; callers also check them against the entry's digest.
 */
export class ContentRepo {
  readonly available: boolean;

  constructor(readonly db: DB) {
    this.available = hasTable(db, 'kept');
  }

  /** Store content (once per digest) and reference it from gen/path. Call inside the generation's write transaction. */
  keep(gen: number, path: Buffer, data: Buffer): string {
    const digest = contentDigest(data);
    const exists = this.db.prepare('SELECT 1 FROM contents WHERE digest = ?').get(digest);
    if (!exists) {
      const packed = zlib.brotliCompressSync(data, {
        params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length },
      });
      this.db.prepare('INSERT INTO contents (digest, size, codec, data) VALUES (?, ?, ?, ?)').run(digest, data.length, 'br', packed);
    }
    this.db.prepare('INSERT OR REPLACE INTO kept (gen, path, digest) VALUES (?, ?, ?)').run(gen, path, digest);
    return digest;
  }

  /** Reference already stored content (restore, accept carrying a kept copy over). */
  link(gen: number, path: Buffer, digest: string): void {
    this.db.prepare('INSERT OR REPLACE INTO kept (gen, path, digest) VALUES (?, ?, ?)').run(gen, path, digest);
  }

  unlink(gen: number, path: Buffer): void {
    this.db.prepare('DELETE FROM kept WHERE gen = ? AND path = ?').run(gen, path);
  }

  /** Copy every kept reference of generation `from` to `to` (accept, restore). */
  copyKept(from: number, to: number): number {
    if (!this.available) return 0;
    return this.db.prepare('INSERT INTO kept (gen, path, digest) SELECT ?, path, digest FROM kept WHERE gen = ?').run(to, from).changes;
  }

  /** The content digest kept for gen/path, or null. */
  keptDigest(gen: number, path: Buffer): string | null {
    if (!this.available) return null;
    const r = this.db.prepare('SELECT digest FROM kept WHERE gen = ? AND path = ?').pluck(true).get(gen, path) as string | undefined;
    return r ?? null;
  }

  /** The raw bytes of a kept content, verified against its digest; throws ContentProblem otherwise. */
  read(digest: string): Buffer {
    const r = this.db.prepare('SELECT size, codec, data FROM contents WHERE digest = ?').get(digest) as
      | { size: number; codec: string; data: Buffer }
      | undefined;
    if (!r) throw new ContentProblem(`kept content ${digest.slice(0, 23)}… is missing from the store`);
    let data: Buffer;
    try {
      if (r.codec === 'br') data = zlib.brotliDecompressSync(r.data, { maxOutputLength: Math.max(1, Number(r.size)) });
      else if (r.codec === 'raw') data = r.data;
      else throw new Error(`unknown codec ${r.codec}`);
    } catch (e) {
      throw new ContentProblem(`kept content ${digest.slice(0, 23)}… cannot be decoded: ${(e as Error).message}`);
    }
    if (data.length !== Number(r.size) || contentDigest(data) !== digest)
      throw new ContentProblem(`kept content ${digest.slice(0, 23)}… does not match its digest (the store was altered)`);
    return data;
  }

  /** How many paths and distinct contents a generation keeps, and their stored size. */
  stats(gen: number): { paths: number; contents: number; bytes: number; stored: number } {
    if (!this.available) return { paths: 0, contents: 0, bytes: 0, stored: 0 };
    const r = this.db
      .prepare(
        'SELECT count(*) AS paths, count(DISTINCT k.digest) AS contents, coalesce(sum(c.size), 0) AS bytes, coalesce(sum(length(c.data)), 0) AS stored FROM kept k JOIN contents c ON c.digest = k.digest WHERE k.gen = ?',
      )
      .get(gen) as { paths: number; contents: number; bytes: number; stored: number };
    return r;
  }
}
