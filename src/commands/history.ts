import type { Command } from 'commander';

/** `integ history` and `integ show PATH`: read-only views of the generation chain. */
export function registerHistory(program: Command): void {
  program
    .command('history')
    .summary('list the baseline generations')
    .description('list the baseline generations: number, time, user, kind, note, entries, digest, signed or not')
    .option('--db <file>', 'baseline store (default: $INTEG_DB, else the per-user or system store)')
    .option('--format <fmt>', 'text or json', 'text')
    .addHelpText(
      'after',
      `
Examples:
  $ sudo integ history
  $ integ history --db /media/usb/web1.db --format json | jq '.generations[] | {generation, note, digest}'

The current generation is marked *. Read-only. Exit: 0; 16 the chain of generations does not verify
(the list is still printed); 66 no store.`,
    )
    .action(async (flags: { db?: string; format?: string }) => {
      const { parseFormat } = await import('./run-context.js');
      const format = parseFormat(flags.format);
      const { defaultDbPath } = await import('../util/paths.js');
      const { runHistory } = await import('../app/history.js');
      const r = runHistory({ db: defaultDbPath(flags.db, process.env) });
      const { historyJson, historyText } = await import('../report/history-report.js');
      process.stdout.write(format === 'json' ? `${JSON.stringify(historyJson(r), null, 2)}\n` : historyText(r));
      if (r.chainProblems.length) {
        const { EXIT } = await import('../util/errors.js');
        process.stderr.write(
          `integ: the chain of generations in ${r.db} does not verify (${r.chainProblems.length} problem${r.chainProblems.length === 1 ? '' : 's'}, listed in the report)\n`,
        );
        process.exitCode = EXIT.UNTRUSTED;
      }
    });

  program
    .command('show')
    .summary("one path's record in every generation")
    .argument('<path>', 'a path as the policy names it (b64:… for names that are not UTF-8)')
    .description('print one path\'s record in every baseline generation ("what was this file on date D")')
    .option('--db <file>', 'baseline store (default: $INTEG_DB, else the per-user or system store)')
    .option('--format <fmt>', 'text or json', 'text')
    .addHelpText(
      'after',
      `
Examples:
  $ sudo integ show /etc/passwd
  $ integ show /usr/bin/sudo --format json | jq '.generations[] | {generation, created_at, change}'

Each generation says whether the path was first seen, added, removed, changed (and in what)
or the same as in the generation before. Read-only. Exit: 0; 66 path in no generation, or no store.`,
    )
    .action(async (p: string, flags: { db?: string; format?: string }) => {
      const { parseFormat } = await import('./run-context.js');
      const format = parseFormat(flags.format);
      const { pathFromArg } = await import('../core/pathenc.js');
      let path = pathFromArg(p);
      if (path[0] !== 0x2f) {
        const { UsageError } = await import('../util/errors.js');
        throw new UsageError(
          `"${p}" is a relative path; the store records absolute paths as the policy names them (did you mean "${(await import('node:path')).resolve(p)}"? With --root DIR, give the path without DIR)`,
        );
      }
      // "/etc/" and "/etc" name the same entry; the store has no trailing slashes.
      while (path.length > 1 && path[path.length - 1] === 0x2f) path = path.subarray(0, -1);
      const { defaultDbPath } = await import('../util/paths.js');
      const { runShow } = await import('../app/history.js');
      const r = runShow({ db: defaultDbPath(flags.db, process.env), path });
      const { showJson, showText } = await import('../report/history-report.js');
      process.stdout.write(format === 'json' ? `${JSON.stringify(showJson(r), null, 2)}\n` : showText(r));
    });
}
