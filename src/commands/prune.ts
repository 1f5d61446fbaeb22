import type { Command } from 'commander';

export function registerPrune(program: Command): void {
  program
    .command('prune')
    .summary('remove old baseline generations, keeping the newest N')
    .description('remove old baseline generations, keeping the newest N; their digests stay as chain anchors so verification keeps working')
    .requiredOption('--keep <n>', 'how many of the newest generations to keep (at least 1)')
    .option('--db <file>', 'baseline store (default: $INTEG_DB, else the per-user or system store)')
    .option('--vacuum', 'rewrite the file to give freed space back to the filesystem now')
    .option('--dry-run', 'say what would be pruned; change nothing')
    .option('--format <fmt>', 'text or json', 'text')
    .option('--log <file>', 'write JSON logs here instead of stderr')
    .addHelpText(
      'after',
      `
Examples:
  $ sudo integ prune --keep 10
  $ sudo integ prune --keep 1 --vacuum --db /var/lib/integ/integ.db
  $ integ prune --keep 3 --dry-run

Runs and findings recorded against pruned generations go too. The chain is verified first:
a store that is not trustworthy is not pruned (exit 16). Exit: 0; 64 bad --keep; 66 no store; 75 busy.`,
    )
    .action(async (flags: { keep: string; db?: string; vacuum?: boolean; dryRun?: boolean; format?: string; log?: string }) => {
      const { makeContext, parseCount, parseFormat } = await import('./run-context.js');
      const format = parseFormat(flags.format);
      const keep = parseCount('--keep', flags.keep, 1)!;
      const { defaultDbPath } = await import('../util/paths.js');
      const ctx = await makeContext(flags.log);
      const { runPrune } = await import('../app/prune.js');
      const r = await runPrune({ db: defaultDbPath(flags.db, ctx.env), keep, vacuum: Boolean(flags.vacuum), dryRun: Boolean(flags.dryRun) }, ctx);
      const { pruneJson, pruneText } = await import('../report/history-report.js');
      process.stdout.write(format === 'json' ? `${JSON.stringify(pruneJson(r), null, 2)}\n` : pruneText(r));
    });
}
