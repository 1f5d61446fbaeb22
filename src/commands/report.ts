import type { Command } from 'commander';

export function registerReport(program: Command): void {
  program
    .command('report')
    .summary('write the incident report: summary for management, timeline, findings, evidence, notes, CSIRT fields')
    .description(
      'write one self-contained incident report from the store: a plain-language summary for management\n' +
        '(what happened, when it was detected, what is affected, what was done, current state), then the timeline,\n' +
        'the findings, the evidence list with hashes, the notes, and an appendix with the fields a report to a CSIRT\n' +
        '(e.g. JPCERT/CC) asks for. HTML has inline CSS only, no script and no external resource; it prints well.',
    )
    .option('--out <file>', 'write the report here (0600), else to stdout')
    .option('--format <fmt>', 'html or md (default: md when --out ends in .md, else html)')
    .option('--title <text>', 'report title (default: "Incident report: HOST")')
    .option('--since <time>', 'only what happened at or after TIME (ISO-8601 or an age: 24h, 7d)')
    .option('--until <time>', 'only what happened at or before TIME')
    .option('--db <file>', 'baseline store (default: $INTEG_DB, else the per-user or system store)')
    .option('--log <file>', 'write JSON logs here instead of stderr')
    .addHelpText(
      'after',
      `
Examples:
  $ sudo integ report --out /root/case42/report.html
  $ sudo integ report --format md --since 7d > case42.md

Exit: 0 written; 64 bad flag or time; 66 no store; 73/74 cannot write the file.`,
    )
    .action(async (flags: { out?: string; format?: string; title?: string; since?: string; until?: string; db?: string; log?: string }) => {
      const { UsageError } = await import('../util/errors.js');
      const format = flags.format ?? (flags.out?.toLowerCase().endsWith('.md') ? 'md' : 'html');
      if (format !== 'html' && format !== 'md') throw new UsageError(`--format must be "html" or "md", got "${format}"`);
      const { makeContext } = await import('./run-context.js');
      const { defaultDbPath } = await import('../util/paths.js');
      const ctx = await makeContext(flags.log);
      const { buildReport, writeReport } = await import('../app/report.js');
      const m = await buildReport({ db: defaultDbPath(flags.db, ctx.env), since: flags.since, until: flags.until, title: flags.title }, ctx);
      const { reportHtml, reportMarkdown } = await import('../report/incident-report.js');
      const text = format === 'md' ? reportMarkdown(m) : reportHtml(m);
      if (flags.out) {
        writeReport(flags.out, text);
        process.stdout.write(
          `report written: ${flags.out} (${format}, ${m.findings.length} finding(s), ${m.timeline.evidence.length} bundle(s), ${m.timeline.notes.length} note(s); state: ${m.summary.state})\n`,
        );
      } else process.stdout.write(text);
    });
}
