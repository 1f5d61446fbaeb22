import type { DB } from './db.js';
import type { EntryRecord, EntryType } from '../core/types.js';

/** A generation as stored. Digest covers the header fields and every entry (see generation-digest.ts). */
export interface Generation {
  id: number;
  createdAt: string;
  kind: 'baseline' | 'accept' | 'restore';
  user: string;
  uid: number;
  hostname: string;
  note: string | null;
  root: string;
  policySource: string;
  policyText: string;
  policyDigest: string;
  hashAlgos: string;
  entryCount: number;
  totalBytes: number;
  errorCount: number;
  parentId: number | null;
  parentDigest: string | null;
  digest: string;
  signature: string | null;
  keyId: string | null;
  toolVersion: string;
}

export interface StoredEntry {
  rowid: number;
  rule: string;
  error: string | null;
  rec: EntryRecord;
}

type Row = Record<string, unknown>;

function genFromRow(r: Row): Generation {
  return {
    id: Number(r.id),
    createdAt: r.created_at as string,
    kind: r.kind as Generation['kind'],
    user: r.user as string,
    uid: Number(r.uid),
    hostname: r.hostname as string,
    note: (r.note as string | null) ?? null,
    root: r.root as string,
    policySource: r.policy_source as string,
    policyText: r.policy_text as string,
    policyDigest: r.policy_digest as string,
    hashAlgos: r.hash_algos as string,
    entryCount: Number(r.entry_count),
    totalBytes: Number(r.total_bytes),
    errorCount: Number(r.error_count),
    parentId: r.parent_id === null ? null : Number(r.parent_id),
    parentDigest: (r.parent_digest as string | null) ?? null,
    digest: r.digest as string,
    signature: (r.signature as string | null) ?? null,
    keyId: (r.key_id as string | null) ?? null,
    toolVersion: r.tool_version as string,
  };
}

export const ENTRY_COLUMNS = 'type, mode, uid, gid, size, mtime_ns, ctime_ns, inode, nlink, target, blake3, sha256';

/** Rebuild an EntryRecord from a row read with safeIntegers (bigint columns). */
export function recFromRow(path: Buffer, r: Row): EntryRecord {
  return {
    path,
    type: r.type as EntryType,
    mode: Number(r.mode),
    uid: Number(r.uid),
    gid: Number(r.gid),
    size: BigInt(r.size as bigint),
    mtimeNs: BigInt(r.mtime_ns as bigint),
    ctimeNs: BigInt(r.ctime_ns as bigint),
    inode: BigInt(r.inode as bigint),
    nlink: Number(r.nlink),
    target: (r.target as Buffer | null) ?? null,
    blake3: (r.blake3 as string | null) ?? null,
    sha256: (r.sha256 as string | null) ?? null,
  };
}

/** Rebuild an EntryRecord from the 12 ENTRY_COLUMNS values of a raw row (safe integers). */
export function recFromRaw(path: Buffer, v: unknown[]): EntryRecord {
  return {
    path,
    type: v[0] as EntryType,
    mode: Number(v[1]),
    uid: Number(v[2]),
    gid: Number(v[3]),
    size: BigInt(v[4] as bigint),
    mtimeNs: BigInt(v[5] as bigint),
    ctimeNs: BigInt(v[6] as bigint),
    inode: BigInt(v[7] as bigint),
    nlink: Number(v[8]),
    target: (v[9] as Buffer | null) ?? null,
    blake3: (v[10] as string | null) ?? null,
    sha256: (v[11] as string | null) ?? null,
  };
}

/** Values for the 12 entry columns, in ENTRY_COLUMNS order. */
export function recValues(rec: EntryRecord): unknown[] {
  return [rec.type, rec.mode, rec.uid, rec.gid, rec.size, rec.mtimeNs, rec.ctimeNs, BigInt.asIntN(64, rec.inode), rec.nlink, rec.target, rec.blake3, rec.sha256];
}

/** Baselines: generations and their entries. Prepared statements are created once per repo. */
export class BaselineRepo {
  private readonly getEntry;
  private readonly insEntry;

  constructor(readonly db: DB) {
    this.getEntry = db.prepare(`SELECT rowid, rule, error, ${ENTRY_COLUMNS} FROM entries WHERE gen = ? AND path = ?`).safeIntegers(true);
    this.insEntry = db.readonly ? null : db.prepare(`INSERT INTO entries (gen, path, rule, error, ${ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  }

  current(): Generation | null {
    const r = this.db.prepare('SELECT * FROM generations ORDER BY id DESC LIMIT 1').get() as Row | undefined;
    return r ? genFromRow(r) : null;
  }

  get(id: number): Generation | null {
    const r = this.db.prepare('SELECT * FROM generations WHERE id = ?').get(id) as Row | undefined;
    return r ? genFromRow(r) : null;
  }

  list(): Generation[] {
    return (this.db.prepare('SELECT * FROM generations ORDER BY id').all() as Row[]).map(genFromRow);
  }

  lookup(gen: number, path: Buffer): StoredEntry | undefined {
    const r = this.getEntry.get(gen, path) as Row | undefined;
    if (!r) return undefined;
    return { rowid: Number(r.rowid), rule: r.rule as string, error: (r.error as string | null) ?? null, rec: recFromRow(path, r) };
  }

  rowidRange(gen: number): { min: number; max: number } | null {
    const r = this.db.prepare('SELECT min(rowid) AS lo, max(rowid) AS hi FROM entries WHERE gen = ?').get(gen) as { lo: number | null; hi: number | null };
    return r.lo === null || r.hi === null ? null : { min: r.lo, max: r.hi };
  }

  /** Row ids of a generation, in order: the cheap pass of the removed-entries sweep. */
  *rowids(gen: number): Generator<number> {
    yield* this.db.prepare('SELECT rowid FROM entries WHERE gen = ? ORDER BY rowid').pluck(true).iterate(gen) as Iterable<number>;
  }

  /** One entry by row id (for the few rows the sweep finds unseen). */
  byRowid(rowid: number): StoredEntry | undefined {
    const r = this.db.prepare(`SELECT rowid, path, rule, error, ${ENTRY_COLUMNS} FROM entries WHERE rowid = ?`).safeIntegers(true).get(rowid) as Row | undefined;
    return r ? { rowid: Number(r.rowid), rule: r.rule as string, error: (r.error as string | null) ?? null, rec: recFromRow(r.path as Buffer, r) } : undefined;
  }

  /** Insert the header of a new generation (digest filled in by finish()). Call inside a write transaction. */
  begin(g: Omit<Generation, 'id' | 'digest' | 'entryCount' | 'totalBytes' | 'errorCount' | 'signature' | 'keyId'>): number {
    const info = this.db
      .prepare(
        `INSERT INTO generations (created_at, kind, user, uid, hostname, note, root, policy_source, policy_text, policy_digest, hash_algos,
          entry_count, total_bytes, error_count, parent_id, parent_digest, digest, signature, key_id, tool_version)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?, ?, '', NULL, NULL, ?)`,
      )
      .run(g.createdAt, g.kind, g.user, g.uid, g.hostname, g.note, g.root, g.policySource, g.policyText, g.policyDigest, g.hashAlgos, g.parentId, g.parentDigest, g.toolVersion);
    return Number(info.lastInsertRowid);
  }

  insert(gen: number, rule: string, rec: EntryRecord, error: string | null): void {
    this.insEntry!.run(gen, rec.path, rule, error, ...recValues(rec));
  }

  /** Every entry of a generation in path byte order (SQLite compares BLOBs with memcmp, as Buffer.compare does). Streams. */
  *entriesByPath(gen: number): Generator<StoredEntry> {
    const st = this.db.prepare(`SELECT rowid, path, rule, error, ${ENTRY_COLUMNS} FROM entries WHERE gen = ? ORDER BY path`).safeIntegers(true);
    for (const r of st.iterate(gen) as Iterable<Row>) {
      yield { rowid: Number(r.rowid), rule: r.rule as string, error: (r.error as string | null) ?? null, rec: recFromRow(r.path as Buffer, r) };
    }
  }

  /** Copy every entry of generation `from` into generation `to` inside SQLite (no rows pass through JS). */
  copyEntries(from: number, to: number): number {
    return this.db.prepare(`INSERT INTO entries (gen, path, rule, error, ${ENTRY_COLUMNS}) SELECT ?, path, rule, error, ${ENTRY_COLUMNS} FROM entries WHERE gen = ?`).run(to, from).changes;
  }

  deleteEntry(gen: number, path: Buffer): number {
    return this.db.prepare('DELETE FROM entries WHERE gen = ? AND path = ?').run(gen, path).changes;
  }

  /** Generations removed by prune/export, whose digests anchor the chain of the ones kept. */
  prunedAnchors(): { id: number; digest: string; prunedAt: string | null }[] {
    if (!this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pruned'").get()) return [];
    return (this.db.prepare('SELECT id, digest, pruned_at FROM pruned ORDER BY id').all() as Row[]).map((r) => ({
      id: Number(r.id),
      digest: r.digest as string,
      prunedAt: (r.pruned_at as string | null) ?? null,
    }));
  }

  /** Remove a generation (its entries and accept records cascade) and remember its digest as a chain anchor. */
  prune(id: number, digest: string, at: string): void {
    this.db.prepare('INSERT OR REPLACE INTO pruned (id, digest, pruned_at) VALUES (?, ?, ?)').run(id, digest, at);
    this.db.prepare('DELETE FROM generations WHERE id = ?').run(id);
  }

  /** Provenance of an accept generation: the check run it folded in and each accepted path. */
  recordAccept(gen: number, run: { id: number; findingsDigest: string }, forced: boolean, paths: readonly { path: Buffer; kind: string; rule: string; recheck: string }[]): void {
    this.db.prepare('INSERT INTO accepts (gen, run, run_findings_digest, forced, paths) VALUES (?, ?, ?, ?, ?)').run(gen, run.id, run.findingsDigest, forced ? 1 : 0, paths.length);
    const ins = this.db.prepare('INSERT INTO accepted_paths (gen, path, kind, rule, recheck) VALUES (?, ?, ?, ?, ?)');
    for (const p of paths) ins.run(gen, p.path, p.kind, p.rule, p.recheck);
  }

  /** The accept record of a generation, or null (a baseline, or a store from before migration 2). */
  acceptOf(gen: number): { run: number; runFindingsDigest: string; forced: boolean; paths: number } | null {
    if (!this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'accepts'").get()) return null;
    const r = this.db.prepare('SELECT run, run_findings_digest, forced, paths FROM accepts WHERE gen = ?').get(gen) as Row | undefined;
    return r ? { run: Number(r.run), runFindingsDigest: r.run_findings_digest as string, forced: Number(r.forced) === 1, paths: Number(r.paths) } : null;
  }

  /** How an accept generation treated one path, or null when the path was not accepted there. */
  acceptedPath(gen: number, path: Buffer): { kind: string; rule: string; recheck: string } | null {
    if (!this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'accepted_paths'").get()) return null;
    const r = this.db.prepare('SELECT kind, rule, recheck FROM accepted_paths WHERE gen = ? AND path = ?').get(gen, path) as Row | undefined;
    return r ? { kind: r.kind as string, rule: r.rule as string, recheck: r.recheck as string } : null;
  }

  finish(gen: number, counts: { entryCount: number; totalBytes: number; errorCount: number }, digest: string, signature: string | null, keyId: string | null): void {
    this.db
      .prepare('UPDATE generations SET entry_count = ?, total_bytes = ?, error_count = ?, digest = ?, signature = ?, key_id = ? WHERE id = ?')
      .run(counts.entryCount, counts.totalBytes, counts.errorCount, digest, signature, keyId, gen);
  }
}
