import chalk from 'chalk';
import type { CheckResult } from '../core/check-result.js';
import { pathForTerminal, pathJson } from '../core/pathenc.js';
import type { IdNames } from '../core/fsattrs.js';
import type { EntryRecord, Finding, IocMatch, PackageOwner, Severity } from '../core/types.js';
import { idNames } from './idnames.js';
import { VERSION } from '../version.js';
import type { CheckDocument, IocMatchJson, PackageJson } from './documents.js';
import { aclNote, describeChanges, recordJson, terminalText } from './records.js';

export function iocJson(m: IocMatch): IocMatchJson {
  return { ...pathJson(m.path), rule: m.rule, algorithm: m.algorithm, digest: m.digest, label: m.label, source: m.source };
}

/** The CRITICAL section that comes first: files whose content is on a known-bad hash list. */
export function iocText(matches: readonly IocMatch[]): string[] {
  if (!matches.length) return [];
  const out = [chalk.bold.red(`CRITICAL: KNOWN-BAD CONTENT (${matches.length}) — matches a known-bad hash list`)];
  for (const m of matches)
    out.push(
      `  KNOWN-BAD  ${pathForTerminal(m.path)}  ${m.algorithm}:${m.digest}${m.label ? `  "${terminalText(m.label)}"` : ''}  (${terminalText(m.source)})`,
    );
  return out;
}
import type { ContentDiff } from '../app/content-diff.js';

/** The `integ.check/1` JSON document of the contract. */
export function checkJson(r: CheckResult): CheckDocument {
  return {
    schema: 'integ.check/1',
    tool: { name: 'integ', version: VERSION },
    host: { hostname: r.who.hostname },
    started_at: r.startedAt,
    finished_at: r.finishedAt,
    root: r.root,
    policy: { source: r.policy.source, hash: r.policy.hash },
    baseline: {
      generation: r.baseline.id,
      created_at: r.baseline.createdAt,
      note: r.baseline.note,
      digest: r.baseline.digest,
      signed: r.baseline.signature !== null,
    },
    summary: r.summary,
    changes: r.findings.map((f) => ({
      ...pathJson(f.path, 'path'),
      kind: f.kind,
      rule: f.rule,
      severity: f.severity,
      attributes: f.attributes,
      risk: f.risk ?? [],
      package: f.package ? packageJson(f.package) : null,
      before: f.before ? recordJson(f.before) : null,
      after: f.after ? recordJson(f.after) : null,
    })),
    errors: r.errors.map((e) => ({ ...pathJson(e.path, 'path'), code: e.code, message: e.message })),
    ioc_matches: r.iocMatches.map(iocJson),
    ioc_feeds: r.iocFeeds,
    evidence: r.evidence ? { bundle: r.evidence.bundle, sha256: r.evidence.sha256, reused: r.evidence.reused } : null,
    notices: r.notices,
    ...(r.root !== '/' ? { not_known_good: notKnownGood(r).map((f) => ({ ...pathJson(f.path), kind: f.kind })) } : {}),
    exit_code: r.exitCode,
  };
}

const SEV_COLOR: Record<Severity, (s: string) => string> = {
  critical: (s) => chalk.bold.red(s),
  high: (s) => chalk.red(s),
  medium: (s) => chalk.yellow(s),
  low: (s) => chalk.cyan(s),
};
const KIND_LABEL = { added: 'ADDED  ', removed: 'REMOVED', changed: 'CHANGED' } as const;

function detail(f: Finding): string {
  return f.kind === 'changed' && f.before && f.after ? describeChanges(f.before, f.after, f.attributes) : '';
}

/** The diff lines printed under a changed file whose known-good content is kept. */
function diffText(d: ContentDiff): string[] {
  if (d.kind === 'binary') return [`binary, ${d.bytesDiffer} bytes differ (${d.oldSize} → ${d.newSize} bytes)`];
  if (d.kind === 'none') return [`(no diff: ${d.reason})`];
  const colour = (l: string): string =>
    l.startsWith('+') && !l.startsWith('+++')
      ? chalk.green(l)
      : l.startsWith('-') && !l.startsWith('---')
        ? chalk.red(l)
        : l.startsWith('@@')
          ? chalk.cyan(l)
          : l;
  return [...d.lines.map(colour), ...(d.omitted ? [chalk.dim(`… ${d.omitted} more diff line(s) not shown`)] : [])];
}

/** What makes a file in a backup differ from the known-good one; inode, times and link count change on any restore. */
const SUBSTANTIVE = new Set(['content', 'type', 'mode', 'uid', 'gid', 'size', 'target']);

/**
 * Paths under a --root (a restored backup, an image) that are not what the baseline knows as
 * good: added, or changed in content, type, mode, owner, size or link target. Entries that
 * differ only in inode, times or link count (what any restore changes) are not listed.
 */
export function notKnownGood(r: CheckResult): Finding[] {
  return r.root === '/' ? [] : r.findings.filter((f) => f.kind === 'added' || (f.kind === 'changed' && f.attributes.some((a) => SUBSTANTIVE.has(a))));
}

/** "file 4755 root:root (ACL present)": what an added or removed entry is, so a set-uid root file cannot be overlooked. */
function summaryOf(r: EntryRecord, names: IdNames): string {
  const owner = `${names.user(r.uid) ?? r.uid}:${names.group(r.gid) ?? r.gid}`;
  return `${r.type} ${r.mode.toString(8).padStart(4, '0')} ${owner}${aclNote(r)}`;
}

function findingLines(f: Finding, names: IdNames, withSeverity = false): string[] {
  const rec = f.after ?? f.before;
  const what = f.kind === 'changed' ? `[${f.attributes.join(', ')}]` : rec ? summaryOf(rec, names) : '';
  const risk = f.risk?.length ? `  ${chalk.bold.red(`risk: ${f.risk.join(', ')}`)}` : '';
  const out = [`  ${KIND_LABEL[f.kind]}  ${pathForTerminal(f.path)}  ${what}  (${f.rule}${withSeverity ? `, ${f.severity}` : ''})${risk}`];
  const d = detail(f);
  if (d) out.push(chalk.dim(`           ${d}`));
  if (f.package) out.push(`           package: ${packageText(f.package, f.kind)}`);
  return out;
}

export function packageJson(p: PackageOwner): PackageJson {
  return { manager: p.manager, name: p.name, version: p.version, digest_matches: p.digestMatches, conffile: p.conffile };
}

/** "matches coreutils 9.1-1 as shipped" / "DOES NOT MATCH what coreutils 9.1-1 shipped". */
export function packageText(p: PackageOwner, kind: Finding['kind']): string {
  const who = `${p.name} ${p.version}`;
  if (kind === 'removed') return `shipped by ${who}${p.conffile ? ' (conffile)' : ''}`;
  if (p.digestMatches === null) return `owned by ${who} (no digest to compare)`;
  if (p.conffile) return p.digestMatches ? `conffile of ${who}, as shipped` : `conffile of ${who}, edited since installation`;
  return p.digestMatches ? `matches ${who} as shipped` : chalk.bold(`DOES NOT MATCH what ${who} shipped`);
}

/** Findings grouped by severity, then errors, then a one-line summary. */
export function checkText(r: CheckResult, diffs?: Map<string, ContentDiff>): string {
  const out: string[] = [];
  const names = idNames(r.root);
  out.push(...iocText(r.iocMatches));
  const risky = r.findings.filter((f) => f.risk?.length);
  if (risky.length) {
    out.push(chalk.bold.red(`RISK (${risky.length})`));
    for (const f of risky) out.push(...findingLines(f, names, true));
  }
  for (const sev of ['critical', 'high', 'medium', 'low'] as const) {
    const group = r.findings.filter((f) => f.severity === sev && !f.risk?.length);
    if (!group.length) continue;
    out.push(SEV_COLOR[sev](`${sev.toUpperCase()} (${group.length})`));
    for (const f of group) {
      out.push(...findingLines(f, names));
      const cd = diffs?.get(f.path.toString('hex'));
      if (cd) for (const l of diffText(cd)) out.push(`           ${l}`);
    }
  }
  const bad = notKnownGood(r);
  if (bad.length) {
    out.push(
      chalk.bold(
        `NOT KNOWN-GOOD under ${r.root} (${bad.length}): these files differ from baseline #${r.baseline.id} or are not in it — do not restore them from here`,
      ),
    );
    for (const f of bad) out.push(`  ${f.kind === 'added' ? 'not in baseline' : 'differs        '}  ${pathForTerminal(f.path)}`);
  }
  if (r.errors.length) {
    out.push(chalk.magenta(`UNREADABLE (${r.errors.length}) — scan incomplete`));
    for (const e of r.errors) out.push(`  ${e.code.padEnd(8)} ${pathForTerminal(e.path)}: ${e.message}`);
  }
  for (const n of r.notices) out.push(chalk.dim(`note: ${n}`));
  if (r.evidence)
    out.push(`evidence: ${r.evidence.bundle}${r.evidence.reused ? ' (reused: same findings within the cooldown)' : ''}\nsha256:   ${r.evidence.sha256}`);
  const s = r.summary;
  const verdict = r.exitCode === 0 ? chalk.green('OK') : chalk.bold.red('ALERT');
  out.push(
    `${verdict} ${s.scanned} scanned, ${s.added} added, ${s.removed} removed, ${s.changed} changed, ${s.errors} unreadable${r.iocFeeds.length ? `, ${r.iocMatches.length} known-bad` : ''} — ` +
      `baseline #${r.baseline.id} ${r.baseline.digest} — exit ${r.exitCode}`,
  );
  return `${out.join('\n')}\n`;
}
