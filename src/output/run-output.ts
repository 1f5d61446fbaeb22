import os from 'node:os';
import type { CheckResult } from '../app/check.js';
import { pathToText } from '../core/pathenc.js';
import type { Severity } from '../core/types.js';
import { EXIT, UsageError } from '../util/errors.js';
import { DEFAULT_SYSLOG, parseFacility, parseSyslogTarget, sendSyslog, type SyslogMessage, type SyslogSeverity } from './syslog.js';

/**
 * Where a run's machine-readable output goes besides stdout, and what is written when the
 * run fails: a command registers its format and syslog target as soon as its flags are
 * parsed; src/cli.ts's error mapping then calls emitFailure, so a failing run (16, 65, 66,
 * 73, 74, 75 …) still leaves one ndjson/ECS line on stdout and one syslog message.
 */
import { REPORT_FORMATS, type ReportFormat } from '../report/check-formats.js';
export type { ReportFormat };

export interface RunOutput {
  command: string;
  format: ReportFormat;
  /** syslog target, or null for none */
  syslog: string | null;
  facility: number;
}

let current: RunOutput | null = null;

/** Validates --format for commands that speak every report format. */
export function parseReportFormat(v: string | undefined, env: NodeJS.ProcessEnv, allowed: readonly ReportFormat[] = REPORT_FORMATS): ReportFormat {
  const f = v ?? env.INTEG_FORMAT ?? 'text';
  if (!(allowed as readonly string[]).includes(f)) throw new UsageError(`--format must be one of ${allowed.join(', ')}, got "${f}"`);
  return f as ReportFormat;
}

/**
 * --syslog [TARGET] (true: the default socket), else $INTEG_SYSLOG (set from the
 * configuration's `syslog.target`), else none. Validated here, before any work.
 */
export function resolveSyslog(flag: string | boolean | undefined, env: NodeJS.ProcessEnv): string | null {
  const t = flag === true ? DEFAULT_SYSLOG : typeof flag === 'string' ? flag : env.INTEG_SYSLOG || null;
  if (t) parseSyslogTarget(t);
  return t;
}

export function setRunOutput(o: { command: string; format: ReportFormat; syslog: string | null; env: NodeJS.ProcessEnv }): RunOutput {
  current = { command: o.command, format: o.format, syslog: o.syslog, facility: parseFacility(o.env.INTEG_SYSLOG_FACILITY || undefined) };
  return current;
}

const SEV: Record<Severity, SyslogSeverity> = { critical: 'crit', high: 'err', medium: 'warning', low: 'notice' };

/** One message per finding and unreadable entry, then one summary. */
export function checkSyslogMessages(r: CheckResult): SyslogMessage[] {
  const msgs: SyslogMessage[] = [];
  for (const f of r.findings) {
    const p = pathToText(f.path);
    msgs.push({
      severity: SEV[f.severity],
      msgid: 'finding',
      params: [
        ['path', p],
        ['kind', f.kind],
        ['rule', f.rule],
        ['severity', f.severity],
        ['attributes', f.attributes.join(',')],
      ],
      text: `${f.kind.toUpperCase()} ${p}${f.kind === 'changed' ? ` [${f.attributes.join(', ')}]` : ''} (rule ${f.rule}, ${f.severity})`,
    });
  }
  for (const e of r.errors) {
    const p = pathToText(e.path);
    msgs.push({
      severity: 'warning',
      msgid: 'unreadable',
      params: [
        ['path', p],
        ['code', e.code],
      ],
      text: `UNREADABLE ${p}: ${e.code} ${e.message}`,
    });
  }
  const s = r.summary;
  msgs.push({
    severity: r.exitCode === 0 ? 'info' : 'warning',
    msgid: 'summary',
    params: [
      ['scanned', String(s.scanned)],
      ['added', String(s.added)],
      ['removed', String(s.removed)],
      ['changed', String(s.changed)],
      ['errors', String(s.errors)],
      ['exit_code', String(r.exitCode)],
      ['generation', String(r.baseline.id)],
      ['digest', r.baseline.digest],
    ],
    text: `check ${r.exitCode === 0 ? 'OK' : 'ALERT'}: ${s.scanned} scanned, ${s.added} added, ${s.removed} removed, ${s.changed} changed, ${s.errors} unreadable, exit ${r.exitCode}`,
  });
  return msgs;
}

/** Send a check's messages; a syslog failure is a warning on stderr, not a change of verdict. */
export async function syslogCheck(r: CheckResult, out: RunOutput): Promise<void> {
  if (!out.syslog) return;
  try {
    await sendSyslog(out.syslog, checkSyslogMessages(r), out.facility);
  } catch (e) {
    process.stderr.write(`integ: warning: ${(e as Error).message} (the report above is complete)\n`);
  }
}

/** Called by src/cli.ts for every run that ends in failure. */
export async function emitFailure(err: unknown, exitCode: number): Promise<void> {
  if (exitCode !== EXIT.OK) failureLog?.error({ event: 'run-failed', exit_code: exitCode, command: current?.command }, (err as Error)?.message ?? String(err));
  const o = current;
  if (!o || exitCode === EXIT.OK) return;
  const f = {
    command: o.command,
    hostname: os.hostname(),
    time: new Date().toISOString(),
    exitCode,
    error: (err as Error)?.message ?? String(err),
    errorType: (err as Error)?.name ?? 'Error',
  };
  if (o.format === 'ndjson') {
    const { failureNdjson } = await import('../report/ndjson.js');
    process.stdout.write(failureNdjson(f));
  } else if (o.format === 'ecs') {
    const { failureEcsEvent } = await import('../report/ecs.js');
    process.stdout.write(`${JSON.stringify(failureEcsEvent(f))}\n`);
  } else if (o.format === 'json') {
    // A script parsing --format json gets a document either way, never an empty stdout.
    process.stdout.write(
      `${JSON.stringify({ schema: 'integ.failure/1', command: f.command, host: { hostname: f.hostname }, time: f.time, error: { type: f.errorType, message: f.error }, exit_code: exitCode }, null, 2)}\n`,
    );
  }
  if (o.syslog) {
    try {
      await sendSyslog(
        o.syslog,
        [
          {
            severity: exitCode === EXIT.UNTRUSTED ? 'crit' : 'err',
            msgid: 'failure',
            params: [
              ['command', o.command],
              ['exit_code', String(exitCode)],
            ],
            text: `${o.command} failed (exit ${exitCode}): ${f.error.split('\n').join(' ')}`,
          },
        ],
        o.facility,
      );
    } catch (e) {
      process.stderr.write(`integ: warning: ${(e as Error).message}\n`);
    }
  }
}

let failureLog: { error: (o: object, msg: string) => void } | null = null;

/** The --log FILE logger, so the failure that ends a run is recorded there as well. */
export function setFailureLog(log: { error: (o: object, msg: string) => void }): void {
  failureLog = log;
}
