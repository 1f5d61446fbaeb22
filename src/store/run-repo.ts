import type { DB } from './db.js';
import type { Finding, ScanError } from '../core/types.js';
import { ENTRY_COLUMNS, ENTRY_COLUMN_COUNT, entryColumns, recFromRow, recValues } from './baseline-repo.js';
import type { EntryRecord, FindingKind, Severity, Attribute } from '../core/types.js';

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

type Row = Record<string, unknown>;

function runFromRow(r: Row): StoredRun {
  return {
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
  };
}

/** Check runs, their findings (with what was observed, so `accept` can fold them in) and errors. */
export class RunRepo {
  constructor(readonly db: DB) {}

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
    return this.db.transaction(() => {
      const id = Number(
        insRun.run(run.kind, run.startedAt, run.finishedAt, run.gen, run.baselineDigest, run.user, run.uid, run.hostname, run.root, run.policyDigest,
          run.scanned, run.added, run.removed, run.changed, run.errors, run.exitCode, run.findingsDigest, run.evidence).lastInsertRowid,
      );
      for (const f of findings) {
        const vals = f.after ? recValues(f.after) : new Array(ENTRY_COLUMN_COUNT).fill(null);
        insF.run(id, f.path, f.kind, f.rule, f.severity, f.attributes.join(','), ...vals);
      }
      for (const e of errors) insE.run(id, e.path, e.code, e.message);
      return id;
    }).immediate();
  }

  setEvidence(runId: number, evidence: string): void {
    this.db.prepare('UPDATE runs SET evidence = ? WHERE id = ?').run(evidence, runId);
  }

  last(): StoredRun | null {
    const r = this.db.prepare('SELECT * FROM runs ORDER BY id DESC LIMIT 1').get() as Row | undefined;
    return r ? runFromRow(r) : null;
  }

  /** The most recent run with the same findings digest that has an evidence bundle, newer than `since`. */
  lastWithFindings(findingsDigest: string, since: string): StoredRun | null {
    const r = this.db
      .prepare('SELECT * FROM runs WHERE findings_digest = ? AND evidence IS NOT NULL AND finished_at >= ? ORDER BY id DESC LIMIT 1')
      .get(findingsDigest, since) as Row | undefined;
    return r ? runFromRow(r) : null;
  }

  /** The unreadable entries of a run, by path. */
  errors(runId: number): ScanError[] {
    return (this.db.prepare('SELECT path, code, message FROM run_errors WHERE run = ? ORDER BY path').all(runId) as Row[]).map((r) => ({
      path: r.path as Buffer,
      code: r.code as string,
      message: r.message as string,
    }));
  }

  /** Forget the runs (and, by cascade, findings and errors) made against a generation. */
  deleteForGeneration(gen: number): number {
    return this.db.prepare('DELETE FROM runs WHERE gen = ?').run(gen).changes;
  }

  findings(runId: number): StoredFinding[] {
    const rows = this.db.prepare(`SELECT path, kind, rule, severity, attributes, ${entryColumns(this.db, 'run_findings')} FROM run_findings WHERE run = ? ORDER BY path`).safeIntegers(true).all(runId) as Row[];
    return rows.map((r) => ({
      path: r.path as Buffer,
      kind: r.kind as FindingKind,
      rule: r.rule as string,
      severity: r.severity as Severity,
      attributes: (r.attributes as string) ? ((r.attributes as string).split(',') as Attribute[]) : [],
      after: r.type === null ? null : recFromRow(r.path as Buffer, r),
    }));
  }
}
