import type { DB } from './db.js';
import type { StoredRun } from './run-repo.js';
import type { EntryRecord } from '../core/types.js';
import { decodeEntryColumns, type EntryColumns } from './rows.js';

/**
 * Queries for the incident record (restore provenance, every run and finding for the timeline
 * and the report). Tables from migration 4 may be missing on a read-only older store: then
 * there is nothing to read.
 */
function hasTable(db: DB, name: string): boolean {
  return Boolean(db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name));
}

export interface RestoreRow {
  gen: number;
  path: Buffer;
  fromGen: number;
  bundle: string | null;
  /** when the restore generation was made */
  at: string;
}

/** Which paths a restore generation put back, from which generation, with which bundle. Inside the generation's transaction. */
export function recordRestores(db: DB, gen: number, rows: readonly { path: Buffer; fromGen: number; bundle: string | null }[]): void {
  const ins = db.prepare('INSERT INTO restores (gen, path, from_gen, bundle) VALUES (?, ?, ?, ?)');
  for (const r of rows) ins.run(gen, r.path, r.fromGen, r.bundle);
}

export function restoreRows(db: DB): RestoreRow[] {
  if (!hasTable(db, 'restores')) return [];
  return (
    db.prepare('SELECT r.gen, r.path, r.from_gen, r.bundle, g.created_at FROM restores r JOIN generations g ON g.id = r.gen ORDER BY r.gen, r.path').all() as {
      gen: number;
      path: Buffer;
      from_gen: number;
      bundle: string | null;
      created_at: string;
    }[]
  ).map((r) => ({ gen: Number(r.gen), path: r.path, fromGen: Number(r.from_gen), bundle: r.bundle, at: r.created_at }));
}

/** Every check run, oldest first. */
export function allRuns(db: DB): StoredRun[] {
  return (db.prepare('SELECT * FROM runs ORDER BY id').all() as Record<string, unknown>[]).map((r) => ({
    id: Number(r.id),
    kind: 'check',
    startedAt: r.started_at as string,
    finishedAt: r.finished_at as string,
    gen: r.gen === null ? null : Number(r.gen),
    baselineDigest: (r.baseline_digest as string | null) ?? null,
    user: r.user as string,
    uid: Number(r.uid),
    hostname: r.hostname as string,
    root: r.root as string,
    policyDigest: r.policy_digest as string,
    scanned: Number(r.scanned),
    added: Number(r.added),
    removed: Number(r.removed),
    changed: Number(r.changed),
    errors: Number(r.errors),
    exitCode: Number(r.exit_code),
    findingsDigest: r.findings_digest as string,
    evidence: (r.evidence as string | null) ?? null,
  }));
}

/** One finding of a run as the incident record shows it. */
export interface RecordFinding {
  run: number;
  path: Buffer;
  kind: string;
  rule: string;
  severity: string;
  attributes: string;
  /** what the check observed (null for removed) */
  after: EntryRecord | null;
}

/** Findings of every run, by run then path. */
export function allRunFindings(db: DB): RecordFinding[] {
  const rows = db
    .prepare(
      'SELECT run, path, kind, rule, severity, attributes, type, mode, uid, gid, size, mtime_ns, ctime_ns, inode, nlink, target, blake3, sha256 FROM run_findings ORDER BY run, path',
    )
    .safeIntegers(true)
    .all() as Record<string, unknown>[];
  return rows.map((r) => ({
    run: Number(r.run),
    path: r.path as Buffer,
    kind: r.kind as string,
    rule: r.rule as string,
    severity: r.severity as string,
    attributes: r.attributes as string,
    after: r.type === null ? null : decodeEntryColumns(r.path as Buffer, r as unknown as EntryColumns),
  }));
}
