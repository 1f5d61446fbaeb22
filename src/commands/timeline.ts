import type { Command } from 'commander';

const FORMATS = ['text', 'json', 'csv', 'bodyfile'] as const;

export function registerTimeline(program: Command): void {
  program
    .command('timeline')
    .summary('the incident record in time order: generations, checks, findings, file times, evidence, notes')
    .description(
      'merge, in time order: generations (baseline, accept, restore), check runs and their findings,\n' +
        'the change times (mtime/ctime) of changed files, evidence bundles sealed (with sha256), triage findings\n' +
        "inside them, and notes. csv has Timesketch's columns; bodyfile is the Sleuth Kit format for mactime.",
    )
    .option('--since <time>', 'only events at or after TIME (ISO-8601, e.g. 2026-11-21T23:00Z, or an age: 30m, 24h, 7d)')
    .option('--until <time>', 'only events at or before TIME')
    .option('--format <fmt>', 'text, json, csv (Timesketch) or bodyfile (mactime)', 'text')
    .option('--db <file>', 'baseline store (default: $INTEG_DB, else the per-user or system store)')
    .option('--log <file>', 'write JSON logs here instead of stderr')
    .addHelpText(
      'after',
      `
Examples:
  $ sudo integ timeline --since 7d
  $ sudo integ timeline --format csv > integ-web1.csv          # import into Timesketch
  $ sudo integ timeline --format bodyfile > integ.body && mactime -b integ.body -d

Exit: 0; 64 bad flag or time; 66 no store.`,
    )
    .action(async (flags: { since?: string; until?: string; format?: string; db?: string; log?: string }) => {
      const { UsageError } = await import('../util/errors.js');
      const format = flags.format ?? 'text';
      if (!(FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, got "${format}"`);
      const { makeContext } = await import('./run-context.js');
      const { defaultDbPath } = await import('../util/paths.js');
      const ctx = await makeContext(flags.log);
      const { buildTimeline } = await import('../app/timeline.js');
      const t = await buildTimeline({ db: defaultDbPath(flags.db, ctx.env), since: flags.since, until: flags.until }, ctx);
      const r = await import('../report/timeline-report.js');
      const out =
        format === 'json'
          ? `${JSON.stringify(r.timelineJson(t), null, 2)}\n`
          : format === 'csv'
            ? r.timelineCsv(t)
            : format === 'bodyfile'
              ? r.timelineBodyfile(t)
              : r.timelineText(t);
      process.stdout.write(out);
    });
}
