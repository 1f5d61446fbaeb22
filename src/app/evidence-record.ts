import fs from 'node:fs';
import type { DB } from '../store/db.js';
import { EvidenceRepo } from '../store/record-repo.js';

/** Record the bundle a check sealed on an alert (with its sha256) for the timeline and the report. */
/** What of a check result the record needs (structural, so check.ts can call this without a cycle). */
interface AlertedCheck {
  evidence: { bundle: string; sha256: string; reused: boolean } | null;
  finishedAt: string;
  runId: number | null;
  baseline: { id: number };
}

export function recordAlertEvidence(db: DB, r: AlertedCheck): void {
  const repo = new EvidenceRepo(db);
  if (!repo.available || !r.evidence || r.evidence.reused) return;
  let size: number | null = null;
  try {
    size = fs.statSync(r.evidence.bundle).size;
  } catch {
    /* removed meanwhile: record what is known */
  }
  repo.add({ sealedAt: r.finishedAt, kind: 'alert', path: r.evidence.bundle, sha256: r.evidence.sha256, size, run: r.runId, gen: r.baseline.id, note: null });
}

/**
 * Record a manual snapshot's bundle in the store's incident record, so the timeline and the report
 * list it. With an explicit --db the store is created if needed; otherwise only an existing store is
 * used. Never fails the snapshot: a problem is returned as a notice.
 */
export async function recordSnapshotEvidence(
  dbFile: string,
  explicit: boolean,
  b: { bundle: string; sha256: string; size: number; finishedAt: string },
  note: string | null,
): Promise<string | null> {
  if (!explicit && !fs.existsSync(dbFile)) return null;
  try {
    const { openWritable } = await import('../store/db.js');
    // An explicit --db starts the incident record if there is none yet (as `note` does).
    const db = openWritable(dbFile, { init: explicit });
    try {
      const repo = new EvidenceRepo(db);
      if (repo.available) repo.add({ sealedAt: b.finishedAt, kind: 'snapshot', path: b.bundle, sha256: b.sha256, size: b.size, run: null, gen: null, note });
    } finally {
      db.close();
    }
    return null;
  } catch (e) {
    return `the bundle was not recorded in ${dbFile}: ${(e as Error).message}`;
  }
}
