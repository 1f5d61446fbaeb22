import os from 'node:os';
import type { SnapshotResult } from '../app/snapshot.js';
import type { VerifyResult } from '../evidence/verify.js';
import { VERSION } from '../version.js';
import { ecsHead, integEvent, SEVERITY_SCORE, type IntegEcsEvent } from './ecs.js';
import { NDJSON_SCHEMA } from './ndjson.js';
import { snapshotJson } from './snapshot-report.js';

/** `snapshot` and `verify` in the line formats: ndjson lines and ECS events, like check's. */
const head = (type: string, command: string, time: string): Record<string, unknown> => ({
  schema: NDJSON_SCHEMA,
  type,
  time,
  host: os.hostname(),
  command,
  tool: 'integ',
  version: VERSION,
});

const ecsBase = (time: string): Pick<IntegEcsEvent, '@timestamp' | 'ecs' | 'host' | 'agent'> => ecsHead(time, os.hostname());

export function snapshotLines(r: SnapshotResult, format: 'ndjson' | 'ecs'): string {
  if (format === 'ndjson') return `${JSON.stringify({ ...head('snapshot', 'snapshot', r.finishedAt), ...snapshotJson(r) })}\n`;
  const e: IntegEcsEvent = {
    ...ecsBase(r.finishedAt),
    message: `integ snapshot sealed ${r.bundle} sha256 ${r.sha256}`,
    event: integEvent('event', 'host', 'info', 'snapshot', 'integ.run', { outcome: 'success', start: r.startedAt, end: r.finishedAt }),
    file: { path: r.bundle, name: r.name, size: r.size, hash: { sha256: r.sha256 } },
    integ: { kind: 'run', command: 'snapshot', exit_code: 0 },
  };
  return `${JSON.stringify(e)}\n`;
}

/** One line per problem found, then the result. */
export function verifyLines(r: VerifyResult, format: 'ndjson' | 'ecs'): string {
  const now = new Date().toISOString();
  const exit = r.ok ? 0 : 16;
  if (format === 'ndjson') {
    const lines = r.problems.map((p) => JSON.stringify({ ...head('problem', 'verify', now), bundle: r.bundle, kind: p.kind, file: p.file, detail: p.detail }));
    const { problems: _p, schema: _s, ...rest } = r;
    lines.push(JSON.stringify({ ...head('summary', 'verify', now), ...rest, problems: r.problems.length, exit_code: exit }));
    return `${lines.join('\n')}\n`;
  }
  const events: IntegEcsEvent[] = r.problems.map((p) => ({
    ...ecsBase(now),
    message: `evidence bundle ${r.name}: ${p.kind} ${p.file ?? 'archive'}: ${p.detail}`,
    event: integEvent('alert', 'file', 'change', 'bundle-tampered', 'integ.verify', {
      severity: SEVERITY_SCORE.critical,
      outcome: 'failure',
      reason: p.detail,
    }),
    file: { path: r.bundle, ...(p.file ? { name: p.file } : {}) },
    rule: { name: p.kind },
    integ: { kind: 'failure', command: 'verify' },
  }));
  events.push({
    ...ecsBase(now),
    message: `integ verify ${r.bundle}: ${r.ok ? 'intact' : `${r.problems.length} problem(s)`}, signature ${r.signature}`,
    event: integEvent('event', 'file', 'info', 'verify', 'integ.run', { outcome: r.ok ? 'success' : 'failure' }),
    file: { path: r.bundle, ...(r.archive_sha256 ? { hash: { sha256: r.archive_sha256 } } : {}) },
    integ: { kind: 'run', command: 'verify', exit_code: exit },
  });
  return `${events.map((e) => JSON.stringify(e)).join('\n')}\n`;
}
