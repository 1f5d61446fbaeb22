import fs from 'node:fs';
import path from 'node:path';
import { openReadOnly } from '../store/db.js';
import { RunRepo } from '../store/run-repo.js';
import type { RunContext } from '../util/context.js';
import { defaultEvidenceDir } from '../util/paths.js';
import type { CheckResult, EvidenceRef } from '../core/check-result.js';
import type { CheckDocument } from '../report/documents.js';
import { linuxOnlyProblem } from '../util/platform.js';
import { sha256File } from '../util/sha256.js';

/** What the command passes on from its flags. */
export interface AlertOptions {
  /** --snapshot / --no-snapshot; undefined: as the policy says (on_alert.snapshot) */
  snapshot?: boolean;
  /** --out */
  out?: string;
  /** the store, consulted for the cooldown and earlier bundles */
  db: string;
}

/**
 * Retention for bundles that checks created (manual snapshots are never removed): keep the
 * newest `maxBundles` and at most `maxBytes` in total; log each removal.
 */
function applyRetention(bundles: string[], maxBundles: number, maxBytes: number, ctx: RunContext): string[] {
  const existing = [...new Set(bundles)]
    .filter((b) => fs.existsSync(b))
    .map((b) => ({ b, st: fs.statSync(b) }))
    .sort((x, y) => y.st.mtimeMs - x.st.mtimeMs);
  const removed: string[] = [];
  let bytes = 0;
  existing.forEach(({ b, st }, i) => {
    bytes += st.size;
    if (i >= maxBundles || (i > 0 && bytes > maxBytes)) {
      try {
        fs.rmSync(b);
        removed.push(b);
        ctx.log.warn({ bundle: b, size: st.size }, 'retention: removed an old evidence bundle');
      } catch (e) {
        ctx.log.error({ bundle: b, err: (e as Error).message }, 'retention: could not remove an old evidence bundle');
      }
    }
  });
  return removed;
}

/**
 * On an alert (findings 1|2|4), seal an evidence bundle holding `report` (the check's rendered
 * JSON report) unless turned off. An identical set of
 * findings within the cooldown reuses the earlier bundle, so a cron job repeating the same alert
 * does not fill the disk. A failure to capture is reported as a notice: the check's findings and
 * exit code stand regardless.
 */
export async function captureOnAlert(r: CheckResult, report: CheckDocument, opts: AlertOptions, ctx: RunContext): Promise<EvidenceRef | null> {
  const enabled = opts.snapshot ?? r.policy.onAlert.snapshot;
  if (!enabled) return null;
  const notLinux = linuxOnlyProblem();
  if (notLinux) {
    r.notices.push(`no evidence captured: ${notLinux.replace(/^integ /, '')}`);
    return null;
  }
  const out = defaultEvidenceDir(opts.out, ctx.env);
  let previous: string[] = [];
  try {
    const db = openReadOnly(opts.db);
    try {
      const runs = new RunRepo(db);
      const since = new Date(Date.now() - r.policy.onAlert.cooldownSeconds * 1000).toISOString();
      const prev = runs.lastWithFindings(r.findingsDigest, since);
      if (prev?.evidence && fs.existsSync(prev.evidence)) {
        ctx.log.info({ bundle: prev.evidence, run: prev.id }, 'same findings within the cooldown: reusing the earlier bundle');
        return { bundle: prev.evidence, sha256: sha256File(prev.evidence).sha256, reused: true };
      }
      previous = runs.evidenceBundles().filter((b) => path.dirname(b) === path.resolve(out));
    } finally {
      db.close();
    }
  } catch (e) {
    ctx.log.warn({ err: (e as Error).message }, 'could not consult earlier runs for the cooldown');
  }
  try {
    const { runSnapshot } = await import('./snapshot.js');
    const s = r.summary;
    const snap = await runSnapshot(
      {
        out,
        note: `automatic: integ check found ${s.added} added, ${s.removed} removed, ${s.changed} changed (baseline #${r.baseline.id})`,
        trigger: {
          report,
          findings: r.findings,
          root: r.root === '/' ? '' : r.root,
          maxFileBytes: r.policy.onAlert.copyMaxFileBytes,
          maxTotalBytes: r.policy.onAlert.copyMaxTotalBytes,
        },
      },
      ctx,
    );
    const removed = applyRetention([...previous, snap.bundle], r.policy.retention.maxBundles, r.policy.retention.maxBytes, ctx);
    if (removed.length) r.notices.push(`retention removed ${removed.length} old evidence bundle(s): ${removed.map((b) => path.basename(b)).join(', ')}`);
    return { bundle: snap.bundle, sha256: snap.sha256, reused: false };
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    r.notices.push(`no evidence captured: ${(e as Error).message}`);
    ctx.log.error({ err: (e as Error).message }, 'evidence capture on alert failed');
    return null;
  }
}
