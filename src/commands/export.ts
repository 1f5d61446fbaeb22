import type { Command } from 'commander';

export function registerExport(program: Command): void {
  program
    .command('export')
    .summary('self-contained copy of the current generation for read-only media')
    .description(
      'write a self-contained copy of the current baseline generation that works from read-only media\n' +
        '(no other generations or runs, journal_mode DELETE, vacuumed; the chain still verifies)',
    )
    .requiredOption('--out <file>', 'the copy to write (never overwritten)')
    .option('--db <file>', 'baseline store (default: $INTEG_DB, else the per-user or system store)')
    .option('--verify-key <file>', "verify the store's signatures with this public key before copying")
    .option('--format <fmt>', 'text or json', 'text')
    .option('--log <file>', 'write JSON logs here instead of stderr')
    .addHelpText(
      'after',
      `
Examples:
  $ sudo integ export --out /media/usb/web1-golden.db
  $ # later, booted from rescue media, the USB stick write-protected:
  $ integ check --db /media/usb/web1-golden.db --root /mnt/web1 --expect-digest blake3:4f…

The copy keeps the generation's number and digest. Exit: 0; 16 the store is not trustworthy;
66 no store; 73 OUT exists or cannot be created; 74 I/O error.`,
    )
    .action(async (flags: { out: string; db?: string; verifyKey?: string; format?: string; log?: string }) => {
      const { makeContext, parseFormat } = await import('./run-context.js');
      const format = parseFormat(flags.format);
      const { defaultDbPath } = await import('../util/paths.js');
      const ctx = await makeContext(flags.log);
      const { runExport } = await import('../app/export.js');
      const r = await runExport({ db: defaultDbPath(flags.db, ctx.env), out: flags.out, verifyKey: flags.verifyKey }, ctx);
      const { exportJson, exportText } = await import('../report/history-report.js');
      process.stdout.write(format === 'json' ? `${JSON.stringify(exportJson(r), null, 2)}\n` : exportText(r));
    });
}
