import type { CheckResult } from '../app/check.js';
import { pathJson } from '../core/pathenc.js';
import { VERSION } from '../version.js';
import { recordJson } from './records.js';

/**
 * `--format ndjson`: one compact JSON object per line. Every line carries `type`
 * ("finding", "error", "summary" or "failure"), the schema, the host and the run's time,
 * so a line can be shipped and read on its own.
 */
export const NDJSON_SCHEMA = 'integ.event/1';

function head(type: string, time: string, hostname: string, command: string): Record<string, unknown> {
  return { schema: NDJSON_SCHEMA, type, time, host: hostname, command, tool: 'integ', version: VERSION };
}

/** Lines for one check: each finding, each unreadable entry, then the summary. */
export function checkNdjson(r: CheckResult): string {
  const lines: string[] = [];
  const h = (type: string): Record<string, unknown> => head(type, r.finishedAt, r.who.hostname, 'check');
  for (const f of r.findings)
    lines.push(
      JSON.stringify({
        ...h('finding'),
        ...pathJson(f.path),
        kind: f.kind,
        rule: f.rule,
        severity: f.severity,
        attributes: f.attributes,
        before: f.before ? recordJson(f.before) : null,
        after: f.after ? recordJson(f.after) : null,
      }),
    );
  for (const e of r.errors) lines.push(JSON.stringify({ ...h('error'), ...pathJson(e.path), code: e.code, message: e.message }));
  lines.push(
    JSON.stringify({
      ...h('summary'),
      started_at: r.startedAt,
      finished_at: r.finishedAt,
      root: r.root,
      policy: r.policy.source,
      baseline: { generation: r.baseline.id, created_at: r.baseline.createdAt, digest: r.baseline.digest, signed: r.baseline.signature !== null },
      summary: r.summary,
      evidence: r.evidence ? { bundle: r.evidence.bundle, sha256: r.evidence.sha256, reused: r.evidence.reused } : null,
      recorded: r.runId !== null,
      run_id: r.runId,
      notices: r.notices,
      exit_code: r.exitCode,
    }),
  );
  return `${lines.join('\n')}\n`;
}

/** The one line written when a run ends in failure (16, 64–77, 130). */
export function failureNdjson(f: { command: string; hostname: string; time: string; exitCode: number; error: string; errorType: string }): string {
  return `${JSON.stringify({ ...head('failure', f.time, f.hostname, f.command), error: { type: f.errorType, message: f.error }, exit_code: f.exitCode })}\n`;
}
