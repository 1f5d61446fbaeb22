import type { DB } from './db.js';
import type { Finding, ScanError } from '../core/types.js';
import type { EntryRecord, FindingKind, Severity, Attribute } from '../core/types.js';
import {
  decodeAttributes,
  decodeFindingEntry,
  encodeEntryValues,
  ENTRY_COLUMN_COUNT,
  ENTRY_COLUMNS,
  entryColumnsFor,
  type RunErrorRow,
  type RunFindingRow,
  type RunRow,
} from './rows.js';

export interface RunRecord {
  kind: 'check';
  startedAt: string;
  finishedAt: string;
  gen: number | null;
  baselineDigest: string | null;
  user: string;
  uid: number;
  hostname: string;
  root: string;
  policyDigest: string;
  scanned: number;
  added: number;
  removed: number;
  changed: number;
  errors: number;
  exitCode: number;
  findingsDigest: string;
  evidence: string | null;
}

export interface StoredRun extends RunRecord {
  id: number;
}

export interface StoredFinding {
  path: Buffer;
  kind: FindingKind;
  rule: string;
  severity: Severity;
  attributes: Attribute[];
  /** the entry as observed by that check (null for removed) */
  after: EntryRecord | null;
}

function runFromRow(r: RunRow): StoredRun {
  return {
    id: r.id,
    kind: r.kind,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    gen: r.gen,
    baselineDigest: r.baseline_digest,
    user: r.user,
    uid: r.uid,
    hostname: r.hostname,
    root: r.root,
    policyDigest: r.policy_digest,
    scanned: r.scanned,
    added: r.added,
    removed: r.removed,
    changed: r.changed,
    errors: r.errors,
    exitCode: r.exit_code,
    findingsDigest: r.findings_digest,
    evidence: r.evidence,
  };
}

/** Check runs, their findings (with what was observed, so `accept` can fold them in) and errors. */
export class RunRepo {
  constructor(readonly db: DB) {}

  /** Every evidence bundle a recorded run names (retention considers those in the evidence folder). */
  evidenceBundles(): string[] {
    return this.db.prepare<[], string>('SELECT DISTINCT evidence FROM runs WHERE evidence IS NOT NULL').pluck(true).all();
  }

  /** Record one check run in a single short transaction. */
  record(run: RunRecord, findings: readonly Finding[], errors: readonly ScanError[]): number {
    const insRun = this.db.prepare(
      `INSERT INTO runs (kind, started_at, finished_at, gen, baseline_digest, user, uid, hostname, root, policy_digest,
        scanned, added, removed, changed, errors, exit_code, findings_digest, evidence)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const insF = this.db.prepare(
      `INSERT INTO run_findings (run, path, kind, rule, severity, attributes, ${ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ${new Array(ENTRY_COLUMN_COUNT).fill('?').join(', ')})`,
    );
    const insE = this.db.prepare('INSERT INTO run_errors (run, path, code, message) VALUES (?, ?, ?, ?)');
    return this.db
      .transaction(() => {
        const id = Number(
          insRun.run(
            run.kind,
            run.startedAt,
            run.finishedAt,
            run.gen,
            run.baselineDigest,
            run.user,
            run.uid,
            run.hostname,
            run.root,
            run.policyDigest,
            run.scanned,
            run.added,
            run.removed,
            run.changed,
            run.errors,
            run.exitCode,
            run.findingsDigest,
            run.evidence,
          ).lastInsertRowid,
        );
        for (const f of findings) {
          const vals = f.after ? encodeEntryValues(f.after) : new Array(ENTRY_COLUMN_COUNT).fill(null);
          insF.run(id, f.path, f.kind, f.rule, f.severity, f.attributes.join(','), ...vals);
        }
        for (const e of errors) insE.run(id, e.path, e.code, e.message);
        return id;
      })
      .immediate();
  }

  setEvidence(runId: number, evidence: string): void {
    this.db.prepare('UPDATE runs SET evidence = ? WHERE id = ?').run(evidence, runId);
  }

  last(): StoredRun | null {
    const r = this.db.prepare<[], RunRow>('SELECT * FROM runs ORDER BY id DESC LIMIT 1').get();
    return r ? runFromRow(r) : null;
  }

  /** The most recent run with the same findings digest that has an evidence bundle, newer than `since`. */
  lastWithFindings(findingsDigest: string, since: string): StoredRun | null {
    const r = this.db
      .prepare<[string, string], RunRow>('SELECT * FROM runs WHERE findings_digest = ? AND evidence IS NOT NULL AND finished_at >= ? ORDER BY id DESC LIMIT 1')
      .get(findingsDigest, since);
    return r ? runFromRow(r) : null;
  }

  /** The unreadable entries of a run, by path. */
  errors(runId: number): ScanError[] {
    return this.db.prepare<[number], RunErrorRow>('SELECT path, code, message FROM run_errors WHERE run = ? ORDER BY path').all(runId);
  }

  /** Forget every run (export: the copy carries no run history). */
  deleteAll(): number {
    return this.db.prepare('DELETE FROM runs').run().changes;
  }

  /** Forget the runs (and, by cascade, findings and errors) made against a generation. */
  deleteForGeneration(gen: number): number {
    return this.db.prepare('DELETE FROM runs WHERE gen = ?').run(gen).changes;
  }

  findings(runId: number): StoredFinding[] {
    const rows = this.db
      .prepare<[number], RunFindingRow>(
        `SELECT path, kind, rule, severity, attributes, ${entryColumnsFor(this.db.prepare<[], string>("SELECT name FROM pragma_table_info('run_findings')").pluck(true).all())} FROM run_findings WHERE run = ? ORDER BY path`,
      )
      .safeIntegers(true)
      .all(runId);
    return rows.map((r) => ({
      path: r.path,
      kind: r.kind,
      rule: r.rule,
      severity: r.severity,
      attributes: decodeAttributes(r.attributes),
      after: decodeFindingEntry(r),
    }));
  }
}
