import type { EntryRecord } from '../core/types.js';
import type { DB } from './db.js';

const MD5_HEX = /^[0-9a-f]{32}$/;

/**
 * The MD5 of large files by the content digest a generation recorded for them (migration 6), so
 * that a baseline reads again only the large files whose content it has not seen: on an unchanged
 * /usr, the ~1 s second read of ~2,000 packaged files (README, Performance, twelfth round). A file
 * with the same BLAKE3 (or SHA-256) digest has the same bytes, so the same MD5; the MD5 is still
 * compared with what the package database (or a feed) says now.
 *
 * A check with an MD5 feed reads the rows too: a large file's MD5 for the feeds, by the content
 * digest the check just computed.
 *
 * Only MD5s integ computed itself go in, from the second read of a baseline (its package check's
 * or an MD5 feed's), and only with that baseline's generation: they are written in its
 * transaction, so an interrupted run adds none. `gen` is the last generation that used a row: a
 * row goes when that generation is pruned.
 *
 * Trust: a row is as trustworthy as the package database and the feeds it is compared with, and
 * needs the same privilege to forge (root writes the 0600 store, /var/lib/dpkg and the feeds). It
 * is not part of a generation's digest or signature: it decides only whether a file is read again
 * for its MD5.
 */
export class Md5Cache {
  private readonly found = new Set<string>();
  private readonly learned = new Map<string, string>();
  private readonly select;

  /** `gen`: the baseline's generation, that flush() writes with; null for a reader (a check), which never writes. */
  constructor(
    private readonly db: DB,
    private readonly gen: number | null,
  ) {
    this.select = db.prepare<[string], string>('SELECT md5 FROM md5_cache WHERE digest = ?').pluck(true);
  }

  /** A reader of the store's cache, or null for a store from before migration 6 (read as it is: an export, read-only media). */
  static reader(db: DB): Md5Cache | null {
    return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'md5_cache'").get() ? new Md5Cache(db, null) : null;
  }

  /** The cache key of a recorded file: its content digest, with its algorithm (null without one). */
  keyOf(rec: Pick<EntryRecord, 'blake3' | 'sha256'>): string | null {
    return rec.blake3 ? `blake3:${rec.blake3}` : rec.sha256 ? `sha256:${rec.sha256}` : null;
  }

  /** The MD5 of content with this digest, if a baseline computed it (a malformed row counts as none). */
  get(key: string): string | null {
    const md5 = this.learned.get(key) ?? this.select.get(key);
    if (typeof md5 !== 'string' || !MD5_HEX.test(md5)) return null;
    this.found.add(key);
    return md5;
  }

  /** An MD5 this baseline computed (written by flush()). */
  put(key: string, md5: string): void {
    if (MD5_HEX.test(md5)) this.learned.set(key, md5);
  }

  /** How many files get() answered and put() learned. */
  get counts(): { reused: number; learned: number } {
    return { reused: this.found.size, learned: this.learned.size };
  }

  /** Write what this baseline learned and used, with its generation; inside its transaction. */
  flush(): void {
    if (this.gen === null) throw new Error('md5 cache: a reader does not write');
    const upsert = this.db.prepare(
      'INSERT INTO md5_cache (digest, md5, gen) VALUES (?, ?, ?) ON CONFLICT(digest) DO UPDATE SET md5 = excluded.md5, gen = excluded.gen',
    );
    const touch = this.db.prepare('UPDATE md5_cache SET gen = ? WHERE digest = ?');
    for (const [key, md5] of this.learned) upsert.run(key, md5, this.gen);
    for (const key of this.found) if (!this.learned.has(key)) touch.run(this.gen, key);
  }
}
