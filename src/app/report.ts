import fs from 'node:fs';
import path from 'node:path';
import { pathToText } from '../core/pathenc.js';
import { openReadOnly } from '../store/db.js';
import { allRunFindings, restoreRows } from '../store/incident-repo.js';
import type { RunContext } from '../util/context.js';
import { writeErrorFor } from '../util/errors.js';
import { nsToIso } from '../report/records.js';
import { buildTimeline, type Timeline } from './timeline.js';

/** One path across every check: when it was first and last reported, and whether the last check still reports it. */
export interface ReportFinding {
  path: string;
  kind: string;
  rule: string;
  severity: string;
  attributes: string[];
  firstSeen: string;
  lastSeen: string;
  runs: number;
  /** still reported by the newest check run */
  open: boolean;
  /** restored by a restore generation after it was reported */
  restored: boolean;
  /** what the check observed (digests identify the suspect content) */
  observed: {
    type: string | null;
    mode: string | null;
    uid: number | null;
    gid: number | null;
    size: string | null;
    mtime: string | null;
    blake3: string | null;
    sha256: string | null;
  } | null;
}

export interface ReportModel {
  title: string;
  generatedAt: string;
  hosts: string[];
  timeline: Timeline;
  findings: ReportFinding[];
  summary: {
    firstAlert: string | null;
    earliestChange: string | null;
    lastCheck: { at: string; exitCode: number; findings: number } | null;
    counts: Record<string, number>;
    restored: string[];
    accepted: number;
    bundles: number;
    notes: number;
    state: 'clean' | 'open findings' | 'not checked since the alert' | 'no alert';
  };
  integrity: { generation: number | null; digest: string | null; signed: boolean; notesHead: string | null };
}

const SEV = ['critical', 'high', 'medium', 'low'];

/** Everything the incident report says, from the store (read-only). */
export async function buildReport(opts: { db: string; since?: string; until?: string; title?: string }, ctx: Pick<RunContext, 'log'>): Promise<ReportModel> {
  const timeline = await buildTimeline(opts, ctx);
  const db = openReadOnly(opts.db);
  const findings = new Map<string, ReportFinding>();
  let restoredPaths: { path: string; at: string }[] = [];
  try {
    const inWindow = new Set(
      timeline.runs.filter((r) => (!timeline.since || r.finishedAt >= timeline.since) && (!timeline.until || r.finishedAt <= timeline.until)).map((r) => r.id),
    );
    const lastRun = timeline.runs[timeline.runs.length - 1];
    const finishedAt = new Map(timeline.runs.map((r) => [r.id, r.finishedAt] as const));
    for (const r of allRunFindings(db)) {
      const run = r.run;
      if (!inWindow.has(run)) continue;
      const p = pathToText(r.path);
      const at = finishedAt.get(run) ?? '';
      const a = r.after;
      const observed =
        a === null
          ? null
          : {
              type: a.type,
              mode: a.mode.toString(8).padStart(4, '0'),
              uid: a.uid,
              gid: a.gid,
              size: a.size.toString(),
              mtime: nsToIso(a.mtimeNs),
              blake3: a.blake3,
              sha256: a.sha256,
            };
      const f = findings.get(p);
      const base = { kind: r.kind, rule: r.rule, severity: r.severity, attributes: r.attributes.split(',').filter(Boolean), lastSeen: at, observed };
      if (f) Object.assign(f, base, { runs: f.runs + 1, open: lastRun?.id === run });
      else findings.set(p, { path: p, ...base, firstSeen: at, runs: 1, open: lastRun?.id === run, restored: false });
    }
    restoredPaths = restoreRows(db).map((x) => ({ path: pathToText(x.path), at: x.at }));
  } finally {
    db.close();
  }
  for (const r of restoredPaths) {
    const f = findings.get(r.path);
    if (f && r.at >= f.firstSeen) f.restored = true;
  }
  const list = [...findings.values()].sort((a, b) => SEV.indexOf(a.severity) - SEV.indexOf(b.severity) || a.path.localeCompare(b.path));
  const alerts = timeline.events.filter((e) => e.timestamp_desc === 'Check alert');
  const fileTimes = timeline.events.filter((e) => e.source === 'file');
  const lastRun = timeline.runs[timeline.runs.length - 1] ?? null;
  const counts: Record<string, number> = {};
  for (const f of list) counts[f.severity] = (counts[f.severity] ?? 0) + 1;
  const firstAlert = alerts[0]?.datetime ?? null;
  const state: ReportModel['summary']['state'] = !firstAlert
    ? 'no alert'
    : !lastRun
      ? 'not checked since the alert'
      : lastRun.exitCode === 0
        ? 'clean'
        : 'open findings';
  const cur = timeline.generations[timeline.generations.length - 1] ?? null;
  const hosts = [...new Set([...timeline.generations.map((g) => g.hostname), ...timeline.runs.map((r) => r.hostname)])];
  return {
    title: opts.title ?? `Incident report: ${hosts.join(', ') || 'unknown host'}`,
    generatedAt: new Date().toISOString(),
    hosts,
    timeline,
    findings: list,
    summary: {
      firstAlert,
      earliestChange: fileTimes[0]?.datetime ?? null,
      lastCheck: lastRun ? { at: lastRun.finishedAt, exitCode: lastRun.exitCode, findings: lastRun.added + lastRun.removed + lastRun.changed } : null,
      counts,
      restored: [...new Set(restoredPaths.map((r) => r.path))].sort(),
      accepted: timeline.generations.filter((g) => g.kind === 'accept').length,
      bundles: timeline.evidence.length,
      notes: timeline.notes.length,
      state,
    },
    integrity: { generation: cur?.id ?? null, digest: cur?.digest ?? null, signed: cur?.signature != null, notesHead: timeline.notesHead },
  };
}

/** Write the report beside its final name, 0600 (it names evidence and paths), then rename. */
export function writeReport(out: string, text: string): void {
  const abs = path.resolve(out);
  const tmp = path.join(path.dirname(abs), `.${path.basename(abs)}.${process.pid}.partial`);
  try {
    fs.writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
    const fd = fs.openSync(tmp, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, abs);
  } catch (e) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      /* best effort */
    }
    throw writeErrorFor(e, `cannot write the report ${out}`);
  }
}
