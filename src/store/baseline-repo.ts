import type { DB } from './db.js';
import type { EntryRecord, EntryType } from '../core/types.js';

/** A generation as stored. Digest covers the header fields and every entry (see generation-digest.ts). */
export interface Generation {
  id: number;
  createdAt: string;
  kind: 'baseline' | 'accept';
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

  /** Every entry of a generation, in rowid order (cheap, for the removed-entries sweep). */
  *entries(gen: number): Generator<StoredEntry> {
    const st = this.db.prepare(`SELECT rowid, path, rule, error, ${ENTRY_COLUMNS} FROM entries WHERE gen = ? ORDER BY rowid`).safeIntegers(true);
    for (const r of st.iterate(gen) as Iterable<Row>) {
      yield { rowid: Number(r.rowid), rule: r.rule as string, error: (r.error as string | null) ?? null, rec: recFromRow(r.path as Buffer, r) };
    }
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

  finish(gen: number, counts: { entryCount: number; totalBytes: number; errorCount: number }, digest: string, signature: string | null, keyId: string | null): void {
    this.db
      .prepare('UPDATE generations SET entry_count = ?, total_bytes = ?, error_count = ?, digest = ?, signature = ?, key_id = ? WHERE id = ?')
      .run(counts.entryCount, counts.totalBytes, counts.errorCount, digest, signature, keyId, gen);
  }
}
