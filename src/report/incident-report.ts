import os from 'node:os';
import type { ReportModel } from '../app/report.js';
import { VERSION } from '../version.js';

/** A tiny document model rendered to HTML or Markdown, so both formats say exactly the same. */
type Block =
  | { h2: string; id: string }
  | { h3: string }
  | { p: string }
  | { ul: string[] }
  | { table: { head: string[]; rows: string[][]; mono?: number[] } }
  | { dl: [string, string][] };

const TOP_PATHS = 10;
/** Rows per table in the report; the rest is counted (the full record is in `integ timeline`). */
export const REPORT_MAX_ROWS = 2000;

function bounded<T>(rows: T[], what: string): { rows: T[]; more: Block[] } {
  return rows.length > REPORT_MAX_ROWS
    ? {
        rows: rows.slice(0, REPORT_MAX_ROWS),
        more: [{ p: `… ${rows.length - REPORT_MAX_ROWS} more ${what} not shown; see "integ timeline --format csv" for the full record.` }],
      }
    : { rows, more: [] };
}
const FILL = '(to be filled in)';

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The plain-language summary for management, then the detail sections. */
export function reportBlocks(m: ReportModel): Block[] {
  const s = m.summary;
  const b: Block[] = [];
  const sevText = ['critical', 'high', 'medium', 'low']
    .filter((k) => s.counts[k])
    .map((k) => `${s.counts[k]} ${k}`)
    .join(', ');
  const top = m.findings.slice(0, TOP_PATHS).map((f) => `${f.path} (${f.kind}, ${f.severity})`);

  b.push({ h2: 'Summary for management', id: 'summary' });
  b.push({ h3: 'What happened' });
  b.push({
    p: m.findings.length
      ? `Integrity checks found ${plural(m.findings.length, 'file')} on ${m.hosts.join(', ')} that differ from their known-good state (${sevText}). ` +
        'Unexpected changes to system files are a common sign of an intrusion: attackers change configuration, add scheduled jobs or keys to keep access, and replace programs.'
      : 'No unexpected change to the monitored files was found in the period this report covers.',
  });
  b.push({ h3: 'When it was detected' });
  b.push({
    p: s.firstAlert
      ? `First detected by an integrity check at ${s.firstAlert} (UTC).${s.earliestChange ? ` The earliest file change integ recorded is at ${s.earliestChange}; the intrusion began no later than that (file times can be forged, so treat this as an indication).` : ''}`
      : 'No check has raised an alert.',
  });
  b.push({ h3: 'What is affected' });
  if (top.length) b.push({ ul: [...top, ...(m.findings.length > TOP_PATHS ? [`… and ${m.findings.length - TOP_PATHS} more (see Findings)`] : [])] });
  else b.push({ p: 'Nothing.' });
  b.push({ h3: 'What was done' });
  b.push({
    ul: [
      `${plural(s.bundles, 'evidence bundle')} sealed (fingerprints in the Evidence section), so what was found can be shown unaltered later.`,
      s.restored.length
        ? `${plural(s.restored.length, 'file')} restored to the known-good version: ${s.restored.join(', ')}.`
        : 'No file was restored by integ.',
      s.accepted ? `${plural(s.accepted, 'set')} of changes accepted as legitimate (with the reason recorded).` : 'No change was accepted as legitimate.',
      `${plural(s.notes, 'note')} recorded by the responders (see Notes).`,
    ],
  });
  b.push({ h3: 'Current state' });
  b.push({
    p: !s.lastCheck
      ? 'No check has been run yet.'
      : s.lastCheck.exitCode === 0
        ? `The last check, at ${s.lastCheck.at}, found no difference: the monitored files match the known-good state. Keep watching closely for a while; attackers often return.`
        : `The last check, at ${s.lastCheck.at}, still reports ${plural(s.lastCheck.findings, 'difference')} (exit code ${s.lastCheck.exitCode}): the incident is not closed. See the open findings below.`,
  });

  b.push({ h2: 'Timeline (UTC)', id: 'timeline' });
  const tl = bounded(m.timeline.events, 'events');
  b.push({ table: { head: ['Time', 'Event', 'Detail'], rows: tl.rows.map((e) => [e.datetime, e.timestamp_desc, e.message]), mono: [0] } }, ...tl.more);

  b.push({ h2: 'Findings', id: 'findings' });
  const fb = bounded(m.findings, 'findings');
  if (m.findings.length)
    b.push(
      {
        table: {
          head: ['Path', 'Kind', 'Severity', 'Rule', 'What differs', 'First seen', 'Last seen', 'Status', 'Observed content (blake3 / sha256)'],
          rows: fb.rows.map((f) => [
            f.path,
            f.kind,
            f.severity,
            f.rule,
            f.attributes.join(', ') || '-',
            f.firstSeen,
            f.lastSeen,
            f.open ? 'open' : f.restored ? 'restored' : 'no longer reported',
            f.observed ? [f.observed.blake3, f.observed.sha256].filter(Boolean).join(' / ') || '-' : '(removed)',
          ]),
          mono: [0, 8],
        },
      },
      ...fb.more,
    );
  else b.push({ p: 'None.' });

  b.push({ h2: 'Evidence', id: 'evidence' });
  if (m.timeline.evidence.length)
    b.push({
      table: {
        head: ['Sealed at', 'Kind', 'Bundle', 'SHA-256', 'Bytes'],
        rows: m.timeline.evidence.map((e) => [e.sealedAt, e.kind, e.path, e.sha256, e.size === null ? '-' : String(e.size)]),
        mono: [2, 3],
      },
    });
  else b.push({ p: 'No evidence bundle was sealed.' });
  b.push({ p: 'Check a bundle with "integ verify BUNDLE" and its SHA-256 with "sha256sum BUNDLE".' });

  b.push({ h2: 'Notes', id: 'notes' });
  if (m.timeline.notes.length)
    b.push({
      table: { head: ['#', 'Time', 'Who', 'Host', 'Note'], rows: m.timeline.notes.map((n) => [String(n.id), n.createdAt, n.user, n.hostname, n.text]) },
    });
  else b.push({ p: 'No notes.' });

  b.push({ h2: 'Post-mortem', id: 'postmortem' });
  b.push({ p: 'For the review meeting after the incident (事後反省会): the figures integ can give, and what the team fills in.' });
  const span = (a: string | null, z: string | null): string => {
    if (!a || !z) return '-';
    const sec = Math.round((Date.parse(z) - Date.parse(a)) / 1000);
    return sec < 0 ? '-' : sec < 3600 ? `${Math.round(sec / 60)} min` : sec < 172800 ? `${(sec / 3600).toFixed(1)} h` : `${(sec / 86400).toFixed(1)} days`;
  };
  const cleanAfter = s.firstAlert ? (m.timeline.events.find((e) => e.timestamp_desc === 'Check clean' && e.datetime > s.firstAlert!)?.datetime ?? null) : null;
  b.push({
    dl: [
      ['From the earliest change recorded to detection', span(s.earliestChange, s.firstAlert)],
      ['From detection to the first clean check', cleanAfter ? span(s.firstAlert, cleanAfter) : 'not clean yet'],
      ['What went well (良かった点)', FILL],
      ['What to improve: policy, procedures, technical preparation, communication (改善すべき点)', FILL],
    ],
  });

  b.push({ h2: 'Appendix: fields for a report to a CSIRT (e.g. JPCERT/CC)', id: 'csirt' });
  b.push({
    p: 'Fields an external incident report asks for (JPCERT/CC incident report form and similar). integ fills in what it knows; complete the rest before sending.',
  });
  b.push({
    dl: [
      ['Reporter name, organisation, e-mail, phone (報告者情報)', FILL],
      ['Date of this report (報告日時)', m.generatedAt],
      ['Incident type (インシデントの種類)', m.findings.length ? 'Unauthorised modification of system files (integrity compromise); possible intrusion' : FILL],
      ['Date and time of occurrence (発生日時)', s.earliestChange ? `no later than ${s.earliestChange} (earliest file change recorded)` : FILL],
      ['Date and time of discovery (発見日時)', s.firstAlert ?? FILL],
      ['Affected systems: host names (対象システム)', m.hosts.join(', ') || FILL],
      ['Affected systems: IP addresses, OS, services', `${FILL} (report generated on ${os.type()} ${os.release()})`],
      [
        'Description (インシデントの概要)',
        m.findings.length
          ? `${plural(m.findings.length, 'file')} changed, added or removed: ${m.findings
              .slice(0, 5)
              .map((f) => f.path)
              .join(', ')}${m.findings.length > 5 ? ', …' : ''}`
          : FILL,
      ],
      ['Impact (影響)', FILL],
      [
        'Response taken and current status (対応状況)',
        `${s.restored.length ? `restored ${s.restored.length} file(s); ` : ''}${s.bundles} evidence bundle(s) sealed; current state: ${s.state}`,
      ],
      [
        'Indicators: changed files and their content hashes',
        m.findings
          .filter((f) => f.observed?.sha256 || f.observed?.blake3)
          .slice(0, 20)
          .map((f) => `${f.path} ${f.observed!.sha256 ? `sha256:${f.observed!.sha256}` : `blake3:${f.observed!.blake3}`}`)
          .join('; ') || '-',
      ],
      ['Attacker source addresses (攻撃元情報)', `${FILL} (see the network artifacts in the evidence bundles)`],
      ['Evidence preserved (証拠保全)', m.timeline.evidence.map((e) => `${e.path} sha256:${e.sha256}`).join('; ') || 'none'],
      ['Requested assistance (希望する対応)', FILL],
      ['Time zone of all times', 'UTC'],
    ],
  });
  b.push({ h3: 'Integrity of this record' });
  b.push({
    dl: [
      [
        'Current generation',
        m.integrity.generation === null ? '-' : `#${m.integrity.generation} ${m.integrity.digest} (${m.integrity.signed ? 'signed' : 'unsigned'})`,
      ],
      ['Newest note digest (notes head)', m.integrity.notesHead ?? '-'],
      ['Generated by', `integ ${VERSION} at ${m.generatedAt}`],
    ],
  });
  return b;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const CSS = `
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans", "Noto Sans CJK JP", sans-serif; color: #111; background: #fff; margin: 2rem auto; max-width: 80rem; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; border-bottom: 2px solid #333; padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; margin: 1rem 0 .3rem; }
.meta { color: #444; }
section#summary { border: 2px solid #333; padding: .2rem 1rem 1rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { border: 1px solid #999; padding: .25rem .4rem; text-align: left; vertical-align: top; }
th { background: #eee; }
td { overflow-wrap: anywhere; }
.mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; }
dl { display: grid; grid-template-columns: minmax(12rem, 22rem) 1fr; gap: .25rem 1rem; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
nav a { margin-right: 1rem; }
@media print {
  body { margin: 0; max-width: none; font-size: 11pt; }
  nav { display: none; }
  h2 { break-after: avoid; }
  tr, dt, dd { break-inside: avoid; }
  thead { display: table-header-group; }
  a { color: inherit; text-decoration: none; }
}`;

/** One self-contained HTML page: inline CSS, no script, no external resource (the CSP forbids any). */
export function reportHtml(m: ReportModel): string {
  const out: string[] = [];
  let open = false;
  for (const b of reportBlocks(m)) {
    if ('h2' in b) {
      if (open) out.push('</section>');
      out.push(`<section id="${b.id}"><h2>${esc(b.h2)}</h2>`);
      open = true;
    } else if ('h3' in b) out.push(`<h3>${esc(b.h3)}</h3>`);
    else if ('p' in b) out.push(`<p>${esc(b.p)}</p>`);
    else if ('ul' in b) out.push(`<ul>${b.ul.map((x) => `<li>${esc(x)}</li>`).join('')}</ul>`);
    else if ('dl' in b) out.push(`<dl>${b.dl.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`);
    else {
      const mono = new Set(b.table.mono ?? []);
      out.push(
        `<table><thead><tr>${b.table.head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>` +
          b.table.rows.map((r) => `<tr>${r.map((c, i) => `<td${mono.has(i) ? ' class="mono"' : ''}>${esc(c)}</td>`).join('')}</tr>`).join('') +
          '</tbody></table>',
      );
    }
  }
  if (open) out.push('</section>');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="integ ${esc(VERSION)}">
<title>${esc(m.title)}</title>
<style>${CSS}
</style>
</head>
<body>
<header><h1>${esc(m.title)}</h1>
<p class="meta">Generated ${esc(m.generatedAt)} by integ ${esc(VERSION)}. All times are UTC.${m.timeline.since || m.timeline.until ? ` Period: ${esc(m.timeline.since ?? 'start')} to ${esc(m.timeline.until ?? 'now')}.` : ''}</p>
<nav><a href="#summary">Summary</a><a href="#timeline">Timeline</a><a href="#findings">Findings</a><a href="#evidence">Evidence</a><a href="#notes">Notes</a><a href="#postmortem">Post-mortem</a><a href="#csirt">CSIRT fields</a></nav></header>
<main>
${out.join('\n')}
</main>
</body>
</html>
`;
}

/** Markdown: a cell may not contain "|" or a newline. */
const mdCell = (s: string): string =>
  s
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/\r?\n/g, ' ')
    .replace(/[<>]/g, (c) => (c === '<' ? '&lt;' : '&gt;'));
const mdText = (s: string): string => s.replace(/[\\`*_[\]<>#|]/g, (c) => `\\${c}`);

export function reportMarkdown(m: ReportModel): string {
  const out: string[] = [`# ${mdText(m.title)}`, '', `Generated ${m.generatedAt} by integ ${VERSION}. All times are UTC.`, ''];
  for (const b of reportBlocks(m)) {
    if ('h2' in b) out.push(`## ${mdText(b.h2)}`, '');
    else if ('h3' in b) out.push(`### ${mdText(b.h3)}`, '');
    else if ('p' in b) out.push(mdText(b.p), '');
    else if ('ul' in b) out.push(...b.ul.map((x) => `- ${mdText(x)}`), '');
    else if ('dl' in b) out.push('| Field | Value |', '|---|---|', ...b.dl.map(([k, v]) => `| ${mdCell(k)} | ${mdCell(v)} |`), '');
    else
      out.push(
        `| ${b.table.head.map(mdCell).join(' | ')} |`,
        `|${b.table.head.map(() => '---').join('|')}|`,
        ...b.table.rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`),
        '',
      );
  }
  return `${out.join('\n')}\n`;
}
