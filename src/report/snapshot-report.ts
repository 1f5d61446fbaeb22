import chalk from 'chalk';
import type { SnapshotResult } from '../app/snapshot.js';
import type { FindingsResult } from '../evidence/findings.js';
import type { SnapshotDiff } from '../evidence/snapshot-diff.js';
import { textForTerminal } from '../core/pathenc.js';
import type { SnapshotDiffDocument, SnapshotDocument } from './documents.js';

export function snapshotJson(r: SnapshotResult): SnapshotDocument {
  return {
    schema: 'integ.snapshot/1',
    bundle: r.bundle,
    sha256: r.sha256,
    size: r.size,
    name: r.name,
    started_at: r.startedAt,
    finished_at: r.finishedAt,
    artifacts: r.artifacts,
    timings: r.timings,
    steps: r.steps.map((s) => ({ step: s.step, name: s.name, status: s.status, duration_ms: s.duration_ms, error: s.error, errors: s.errors.length })),
    findings: r.findings?.findings ?? null,
    findings_notes: r.findings?.notes ?? [],
  };
}

/** One line for a terminal: control and bidi characters escaped so a process name cannot forge lines. */
function oneLine(s: string, max = 200): string {
  const t = textForTerminal(s);
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** The triage summary: one line per finding (severity, kind, pid, executable, detail), then coverage notes. */
export function triageText(f: FindingsResult | null): string[] {
  if (f === null) return [chalk.yellow('triage: findings not derived (the findings step did not run)')];
  const out: string[] = [chalk.bold(f.findings.length ? `triage: ${f.findings.length} finding${f.findings.length === 1 ? '' : 's'}` : 'triage: no findings')];
  const colour = (sev: string): ((s: string) => string) =>
    sev === 'critical' ? chalk.bold.red : sev === 'high' ? chalk.red : sev === 'medium' ? chalk.yellow : chalk.dim;
  for (const x of f.findings) {
    const pid = x.pid !== undefined ? `pid ${x.pid}` : '-';
    const exe = x.exe ?? x.path ?? '-';
    out.push(
      `  ${colour(x.severity)(x.severity.toUpperCase().padEnd(8))} ${x.kind.padEnd(18)} ${pid.padEnd(11)} ${oneLine(exe, 80)}  ${chalk.dim(oneLine(x.detail))}`,
    );
  }
  for (const n of f.notes) out.push(chalk.yellow(`  note: ${oneLine(n, 400)}`));
  return out;
}

export function snapshotText(r: SnapshotResult): string {
  const out: string[] = [];
  for (const s of r.steps) {
    const mark = s.status === 'ok' ? chalk.green('ok     ') : s.status === 'partial' ? chalk.yellow('partial') : chalk.red(s.status.padEnd(7));
    out.push(
      `  ${mark} ${s.step}. ${s.name.padEnd(14)} ${s.duration_ms.toFixed(0).padStart(6)} ms${s.errors.length ? chalk.dim(`  (${s.errors.length} not readable: ${s.errors[0]?.code ?? ''} …)`) : ''}`,
    );
  }
  out.push(
    `${r.artifacts} artifacts in ${r.timings.total_ms.toFixed(0)} ms (steps 1-4: ${r.timings.steps_1_4_ms.toFixed(0)} ms, /proc/net bracket: ${r.timings.core_bracket_ms.toFixed(1)} ms)`,
  );
  out.push(`bundle: ${r.bundle}`);
  out.push(`sha256: ${r.sha256}`);
  out.push(...triageText(r.findings));
  return `${out.join('\n')}\n`;
}

/** The `integ.snapshot-diff/1` JSON document. */
export function snapshotDiffJson(d: SnapshotDiff, a: string, b: string): SnapshotDiffDocument {
  return { schema: 'integ.snapshot-diff/1', a, b, ...d };
}

export function snapshotDiffText(d: SnapshotDiff, a: string, b: string): string {
  // Everything below comes from the bundles (process names, command lines…): JSON escapes C0
  // controls, and textForTerminal the C1 and bidirectional ones JSON leaves as they are.
  const t = textForTerminal;
  const out: string[] = [`A: ${t(a)}`, `B: ${t(b)}`];
  for (const s of d.sections) {
    if (!s.added.length && !s.removed.length) continue;
    out.push(chalk.bold(`${t(s.name)}:`));
    for (const x of s.added) out.push(chalk.red(`  NEW   ${t(JSON.stringify(x))}`));
    for (const x of s.removed) out.push(chalk.dim(`  GONE  ${t(JSON.stringify(x))}`));
  }
  for (const s of d.skipped) out.push(chalk.yellow(`not compared: ${t(s.name)}: ${t(s.reason)}`));
  out.push(d.same ? chalk.green('same: nothing new or gone') : chalk.bold.red('different'));
  return `${out.join('\n')}\n`;
}
