import fs from 'node:fs';
import path from 'node:path';
import type { Ecs, EcsEvent, EcsFile, EcsVersion } from '@elastic/ecs';
import type { CheckResult } from '../app/check.js';
import { pathToText } from '../core/pathenc.js';
import type { EntryRecord, Finding, FindingKind, ScanError, Severity } from '../core/types.js';
import { VERSION } from '../version.js';
import { nsToIso, recordJson } from './records.js';

/**
 * `--format ecs`: Elastic Common Schema events, one per line, typed with the official
 * @elastic/ecs definitions so the compiler rejects a misspelt field. Findings follow
 * Auditbeat's file_integrity module (event.action created / deleted / updated /
 * attributes_modified); integ's own extras live under the custom `integ.*` namespace.
 */
export const ECS_VERSION: typeof EcsVersion = '9.4.0';

/** integ's custom fields (ECS allows a custom top-level namespace). */
export interface IntegFields {
  integ: {
    kind?: FindingKind | 'unreadable' | 'run' | 'failure';
    command: string;
    attributes?: string[];
    before?: ReturnType<typeof recordJson> | null;
    blake3?: string | null;
    path_b64?: string;
    exit_code?: number;
    summary?: Record<string, number>;
    baseline?: { generation: number; digest: string; signed: boolean };
    evidence?: { bundle: string; sha256: string } | null;
    recorded?: boolean;
    notices?: string[];
  };
}
export type IntegEcsEvent = Ecs & IntegFields;

/** Numeric event.severity, on the 0–100 scale of Elastic's detection rules. */
export const SEVERITY_SCORE: Record<Severity, number> = { low: 21, medium: 47, high: 73, critical: 99 };

const ACTION: Record<FindingKind, string> = { added: 'created', removed: 'deleted', changed: 'updated' };
const TYPE: Record<FindingKind, string> = { added: 'creation', removed: 'deletion', changed: 'change' };
/** Attributes whose change Auditbeat reports as "updated" (the data); the rest is attributes_modified. */
const DATA_ATTRS = new Set(['content', 'type', 'target', 'size']);

/** Auditbeat's action for a finding. */
export function ecsAction(f: Pick<Finding, 'kind' | 'attributes'>): string {
  if (f.kind !== 'changed') return ACTION[f.kind];
  return f.attributes.some((a) => DATA_ATTRS.has(a)) ? 'updated' : 'attributes_modified';
}

/** Names for uids and gids, read from the checked root's passwd and group files. */
class Names {
  private readonly users = new Map<number, string>();
  private readonly groups = new Map<number, string>();
  constructor(root: string) {
    for (const [file, map] of [
      ['passwd', this.users],
      ['group', this.groups],
    ] as const) {
      try {
        for (const line of fs.readFileSync(path.join(root || '/', 'etc', file), 'utf8').split('\n')) {
          const f = line.split(':');
          if (f.length >= 3 && f[0] && /^\d+$/.test(f[2]!) && !map.has(Number(f[2]))) map.set(Number(f[2]), f[0]);
        }
      } catch {
        /* no names: numbers only */
      }
    }
  }
  user(uid: number): string | undefined {
    return this.users.get(uid);
  }
  group(gid: number): string | undefined {
    return this.groups.get(gid);
  }
}

function ecsFile(p: Buffer, rec: EntryRecord | null, names: Names): EcsFile {
  const text = pathToText(p);
  const file: EcsFile = { path: text, name: path.posix.basename(text), directory: path.posix.dirname(text) };
  if (!rec) return file;
  file.type = rec.type;
  file.mode = rec.mode.toString(8).padStart(4, '0');
  file.uid = String(rec.uid);
  file.gid = String(rec.gid);
  const owner = names.user(rec.uid);
  if (owner) file.owner = owner;
  const group = names.group(rec.gid);
  if (group) file.group = group;
  file.size = Number(rec.size);
  file.mtime = nsToIso(rec.mtimeNs);
  file.ctime = nsToIso(rec.ctimeNs);
  file.inode = rec.inode.toString();
  if (rec.sha256) file.hash = { sha256: rec.sha256 };
  if (rec.target) file.target_path = pathToText(rec.target);
  return file;
}

/** The fields every integ ECS event starts with, whatever the command. */
export function ecsHead(time: string, hostname: string): Pick<IntegEcsEvent, '@timestamp' | 'ecs' | 'host' | 'agent'> {
  return { '@timestamp': time, ecs: { version: ECS_VERSION }, host: { name: hostname, hostname }, agent: { name: 'integ', type: 'integ', version: VERSION } };
}

/** event.* of an integ event (module and provider are integ); rest follows in its own order. */
export function integEvent(kind: 'event' | 'alert', category: string, type: string, action: string, dataset: string, rest: EcsEvent = {}): EcsEvent {
  return { kind, category: [category], type: [type], action, module: 'integ', dataset, provider: 'integ', ...rest };
}

function base(r: CheckResult, root: string): Pick<IntegEcsEvent, '@timestamp' | 'ecs' | 'host' | 'agent' | 'observer'> {
  return {
    ...ecsHead(r.finishedAt, r.who.hostname),
    observer: {
      product: 'integ',
      vendor: 'integ',
      type: 'file-integrity',
      version: VERSION,
      hostname: root === '/' ? r.who.hostname : `${r.who.hostname}:${root}`,
    },
  };
}

function findingEvent(r: CheckResult, f: Finding, names: Names): IntegEcsEvent {
  const rec = f.after ?? f.before;
  const p = pathToText(f.path);
  const action = ecsAction(f);
  return {
    ...base(r, r.root),
    message: `${p} ${action}${f.kind === 'changed' ? ` (${f.attributes.join(', ')})` : ''} — rule ${f.rule}, severity ${f.severity}`,
    event: integEvent('alert', 'file', TYPE[f.kind], action, 'integ.check', {
      severity: SEVERITY_SCORE[f.severity],
      risk_score: SEVERITY_SCORE[f.severity],
      outcome: 'success',
      start: r.startedAt,
      end: r.finishedAt,
    }),
    log: { level: f.severity === 'critical' || f.severity === 'high' ? 'error' : 'warning' },
    file: ecsFile(f.path, rec, names),
    rule: { name: f.rule, ruleset: r.policy.source },
    integ: {
      kind: f.kind,
      command: 'check',
      attributes: f.attributes,
      before: f.before ? recordJson(f.before) : null,
      blake3: rec?.blake3 ?? null,
      ...(Buffer.from(p, 'utf8').equals(f.path) ? {} : { path_b64: f.path.toString('base64') }),
    },
  };
}

function errorEvent(r: CheckResult, e: ScanError, names: Names): IntegEcsEvent {
  const p = pathToText(e.path);
  return {
    ...base(r, r.root),
    message: `${p} could not be read: ${e.code} ${e.message}`,
    event: integEvent('event', 'file', 'info', 'unreadable', 'integ.check', { outcome: 'failure', severity: SEVERITY_SCORE.medium }),
    log: { level: 'warning' },
    file: ecsFile(e.path, null, names),
    error: { code: e.code, message: e.message },
    integ: { kind: 'unreadable', command: 'check' },
  };
}

function runEvent(r: CheckResult): IntegEcsEvent {
  const s = r.summary;
  return {
    ...base(r, r.root),
    message: `integ check: ${s.scanned} scanned, ${s.added} added, ${s.removed} removed, ${s.changed} changed, ${s.errors} unreadable — baseline #${r.baseline.id} ${r.baseline.digest} — exit ${r.exitCode}`,
    event: integEvent('event', 'file', 'info', 'check', 'integ.run', {
      outcome: 'success',
      start: r.startedAt,
      end: r.finishedAt,
      duration: (Date.parse(r.finishedAt) - Date.parse(r.startedAt)) * 1_000_000,
    }),
    log: { level: r.exitCode === 0 ? 'info' : 'warning' },
    integ: {
      kind: 'run',
      command: 'check',
      exit_code: r.exitCode,
      summary: { ...s },
      baseline: { generation: r.baseline.id, digest: r.baseline.digest, signed: r.baseline.signature !== null },
      evidence: r.evidence ? { bundle: r.evidence.bundle, sha256: r.evidence.sha256 } : null,
      recorded: r.runId !== null,
      notices: r.notices,
    },
  };
}

/** All ECS events of one check: findings, unreadable entries, then the run event. */
export function checkEcsEvents(r: CheckResult): IntegEcsEvent[] {
  const names = new Names(r.root === '/' ? '' : r.root);
  return [...r.findings.map((f) => findingEvent(r, f, names)), ...r.errors.map((e) => errorEvent(r, e, names)), runEvent(r)];
}

export function checkEcs(r: CheckResult): string {
  return `${checkEcsEvents(r)
    .map((e) => JSON.stringify(e))
    .join('\n')}\n`;
}

/** The one event written when a run ends in failure. */
export function failureEcsEvent(f: { command: string; hostname: string; time: string; exitCode: number; error: string; errorType: string }): IntegEcsEvent {
  return {
    ...ecsHead(f.time, f.hostname),
    message: `integ ${f.command} failed (exit ${f.exitCode}): ${f.error}`,
    event: integEvent('event', 'file', 'error', f.command, 'integ.run', {
      outcome: 'failure',
      severity: f.exitCode === 16 ? SEVERITY_SCORE.critical : SEVERITY_SCORE.high,
    }),
    log: { level: f.exitCode === 16 ? 'critical' : 'error' },
    error: { type: f.errorType, message: f.error, code: String(f.exitCode) },
    integ: { kind: 'failure', command: f.command, exit_code: f.exitCode },
  };
}
