import type { DB } from './db.js';
import type { EntryRecord } from '../core/types.js';
import type { Generation } from '../core/generation.js';
import {
  decodeEntryColumns,
  decodeEntryValues,
  decodeGeneration,
  encodeEntryValues,
  ENTRY_COLUMN_COUNT,
  ENTRY_COLUMNS,
  entryColumnsFor,
  type AcceptedPathRow,
  type AcceptRow,
  type EntryRow,
  type GenerationRow,
  type PrunedRow,
} from './rows.js';

export type { Generation };

/** One generation's link in the hash chain. */
export interface ChainLink {
  id: number;
  parentId: number | null;
  parentDigest: string | null;
  digest: string;
  signature: string | null;
  keyId: string | null;
}

export interface StoredEntry {
  rowid: number;
  rule: string;
  error: string | null;
  rec: EntryRecord;
}

/** Rebuild an EntryRecord from a row read with safeIntegers (bigint columns). */
export const recFromRow = decodeEntryColumns;
/** Rebuild an EntryRecord from the 14 ENTRY_COLUMNS values of a raw row (safe integers). */
export const recFromRaw = decodeEntryValues;
/** Values for the 14 entry columns, in ENTRY_COLUMNS order. */
export const recValues = encodeEntryValues;
export { ENTRY_COLUMNS };

/** ENTRY_COLUMNS as this store's `table` answers them (see entryColumnsFor). */
export function entryColumns(db: DB, table: 'entries' | 'run_findings' = 'entries'): string {
  return entryColumnsFor(db.prepare<[], string>(`SELECT name FROM pragma_table_info('${table}')`).pluck(true).all());
}

const storedEntry = (r: EntryRow): StoredEntry => ({ rowid: Number(r.rowid), rule: r.rule, error: r.error, rec: decodeEntryColumns(r.path, r) });

/** Baselines: generations and their entries. Prepared statements are created once per repo. */
export class BaselineRepo {
  private readonly getEntry;
  private readonly insEntry;
  /** ENTRY_COLUMNS as this store answers them (see entryColumns) */
  readonly cols: string;
  private readonly insCount: number;

  constructor(readonly db: DB) {
    this.cols = entryColumns(db);
    this.getEntry = db
      .prepare<[number, Buffer], EntryRow>(`SELECT rowid, path, rule, error, ${this.cols} FROM entries WHERE gen = ? AND path = ?`)
      .safeIntegers(true);
    // A store not yet at migration 3 (the migration tests write such stores) takes 12 values.
    this.insCount = this.cols === ENTRY_COLUMNS ? ENTRY_COLUMN_COUNT : ENTRY_COLUMN_COUNT - 2;
    const insCols = this.cols === ENTRY_COLUMNS ? ENTRY_COLUMNS : ENTRY_COLUMNS.replace(', xattrs, flags', '');
    this.insEntry = db.readonly
      ? null
      : db.prepare(`INSERT INTO entries (gen, path, rule, error, ${insCols}) VALUES (?, ?, ?, ?, ${new Array(this.insCount).fill('?').join(', ')})`);
  }

  current(): Generation | null {
    const r = this.db.prepare<[], GenerationRow>('SELECT * FROM generations ORDER BY id DESC LIMIT 1').get();
    return r ? decodeGeneration(r) : null;
  }

  get(id: number): Generation | null {
    const r = this.db.prepare<[number], GenerationRow>('SELECT * FROM generations WHERE id = ?').get(id);
    return r ? decodeGeneration(r) : null;
  }

  list(): Generation[] {
    return this.db.prepare<[], GenerationRow>('SELECT * FROM generations ORDER BY id').all().map(decodeGeneration);
  }

  lookup(gen: number, path: Buffer): StoredEntry | undefined {
    const r = this.getEntry.get(gen, path);
    return r ? storedEntry(r) : undefined;
  }

  /** Insert the header of a new generation (digest filled in by finish()). Call inside a write transaction. */
  begin(g: Omit<Generation, 'id' | 'digest' | 'entryCount' | 'totalBytes' | 'errorCount' | 'signature' | 'keyId'>): number {
    const info = this.db
      .prepare(
        `INSERT INTO generations (created_at, kind, user, uid, hostname, note, root, policy_source, policy_text, policy_digest, hash_algos,
          entry_count, total_bytes, error_count, parent_id, parent_digest, digest, signature, key_id, tool_version)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?, ?, '', NULL, NULL, ?)`,
      )
      .run(
        g.createdAt,
        g.kind,
        g.user,
        g.uid,
        g.hostname,
        g.note,
        g.root,
        g.policySource,
        g.policyText,
        g.policyDigest,
        g.hashAlgos,
        g.parentId,
        g.parentDigest,
        g.toolVersion,
      );
    return Number(info.lastInsertRowid);
  }

  /** Insert an entry; returns the row as bound (path, rule, error, then the entry columns): a DigestRow. */
  insert(gen: number, rule: string, rec: EntryRecord, error: string | null): unknown[] {
    const row = [rec.path, rule, error, ...encodeEntryValues(rec).slice(0, this.insCount)];
    this.insEntry!.run(gen, ...row);
    return row;
  }

  /** Every entry of a generation in path byte order (SQLite compares BLOBs with memcmp, as Buffer.compare does). Streams. */
  *entriesByPath(gen: number): Generator<StoredEntry> {
    const st = this.db.prepare<[number], EntryRow>(`SELECT rowid, path, rule, error, ${this.cols} FROM entries WHERE gen = ? ORDER BY path`).safeIntegers(true);
    for (const r of st.iterate(gen)) yield storedEntry(r);
  }

  /** Copy every entry of generation `from` into generation `to` inside SQLite (no rows pass through JS). */
  copyEntries(from: number, to: number): number {
    return this.db
      .prepare(`INSERT INTO entries (gen, path, rule, error, ${ENTRY_COLUMNS}) SELECT ?, path, rule, error, ${ENTRY_COLUMNS} FROM entries WHERE gen = ?`)
      .run(to, from).changes;
  }

  deleteEntry(gen: number, path: Buffer): number {
    return this.db.prepare('DELETE FROM entries WHERE gen = ? AND path = ?').run(gen, path).changes;
  }

  /** The chain over the stored headers, in id order (what the trust gate walks). */
  chainLinks(): ChainLink[] {
    return this.db
      .prepare<[], Pick<GenerationRow, 'id' | 'parent_id' | 'parent_digest' | 'digest' | 'signature' | 'key_id'>>(
        'SELECT id, parent_id, parent_digest, digest, signature, key_id FROM generations ORDER BY id',
      )
      .all()
      .map((r) => ({ id: r.id, parentId: r.parent_id, parentDigest: r.parent_digest, digest: r.digest, signature: r.signature, keyId: r.key_id }));
  }

  /** Generations removed by prune/export, whose digests anchor the chain of the ones kept. */
  prunedAnchors(): { id: number; digest: string; prunedAt: string | null }[] {
    if (!this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pruned'").get()) return [];
    return this.db
      .prepare<[], PrunedRow>('SELECT id, digest, pruned_at FROM pruned ORDER BY id')
      .all()
      .map((r) => ({ id: r.id, digest: r.digest, prunedAt: r.pruned_at }));
  }

  /** Remove a generation (its entries and accept records cascade) and remember its digest as a chain anchor. */
  prune(id: number, digest: string, at: string): void {
    this.db.prepare('INSERT OR REPLACE INTO pruned (id, digest, pruned_at) VALUES (?, ?, ?)').run(id, digest, at);
    this.db.prepare('DELETE FROM generations WHERE id = ?').run(id);
  }

  /** Provenance of an accept generation: the check run it folded in and each accepted path. */
  recordAccept(
    gen: number,
    run: { id: number; findingsDigest: string },
    forced: boolean,
    paths: readonly { path: Buffer; kind: string; rule: string; recheck: string }[],
  ): void {
    this.db
      .prepare('INSERT INTO accepts (gen, run, run_findings_digest, forced, paths) VALUES (?, ?, ?, ?, ?)')
      .run(gen, run.id, run.findingsDigest, forced ? 1 : 0, paths.length);
    const ins = this.db.prepare('INSERT INTO accepted_paths (gen, path, kind, rule, recheck) VALUES (?, ?, ?, ?, ?)');
    for (const p of paths) ins.run(gen, p.path, p.kind, p.rule, p.recheck);
  }

  /** The accept record of a generation, or null (a baseline, or a store from before migration 2). */
  acceptOf(gen: number): { run: number; runFindingsDigest: string; forced: boolean; paths: number } | null {
    if (!this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'accepts'").get()) return null;
    const r = this.db.prepare<[number], AcceptRow>('SELECT run, run_findings_digest, forced, paths FROM accepts WHERE gen = ?').get(gen);
    return r ? { run: r.run, runFindingsDigest: r.run_findings_digest, forced: r.forced === 1, paths: r.paths } : null;
  }

  /** How an accept generation treated one path, or null when the path was not accepted there. */
  acceptedPath(gen: number, path: Buffer): { kind: string; rule: string; recheck: string } | null {
    if (!this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'accepted_paths'").get()) return null;
    const r = this.db.prepare<[number, Buffer], AcceptedPathRow>('SELECT kind, rule, recheck FROM accepted_paths WHERE gen = ? AND path = ?').get(gen, path);
    return r ? { kind: r.kind, rule: r.rule, recheck: r.recheck } : null;
  }

  finish(
    gen: number,
    counts: { entryCount: number; totalBytes: number; errorCount: number },
    digest: string,
    signature: string | null,
    keyId: string | null,
  ): void {
    this.db
      .prepare('UPDATE generations SET entry_count = ?, total_bytes = ?, error_count = ?, digest = ?, signature = ?, key_id = ? WHERE id = ?')
      .run(counts.entryCount, counts.totalBytes, counts.errorCount, digest, signature, keyId, gen);
  }
}
