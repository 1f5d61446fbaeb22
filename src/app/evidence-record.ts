import fs from 'node:fs';
import type { DB } from '../store/db.js';
import { EvidenceRepo } from '../store/record-repo.js';
import type { CheckResult } from './check.js';

/** Record the bundle a check sealed on an alert (with its sha256) for the timeline and the report. */
export function recordAlertEvidence(db: DB, r: CheckResult): void {
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
