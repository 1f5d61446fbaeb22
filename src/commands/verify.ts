import type { Command } from 'commander';

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .argument('<bundle>', 'evidence bundle: a .tar.gz, or the folder extracted from one')
    .description("re-check an evidence bundle's seal and name every file that does not match")
    .option('--verify-key <file>', 'public key (FILE.pub from integ keygen) that must have signed the bundle')
    .option('--format <fmt>', 'text, json, ndjson or ecs (one event per line)', 'text')
    .option('--log <file>', 'write JSON logs here instead of stderr')
    .addHelpText(
      'after',
      `
Examples:
  $ integ verify /var/lib/integ/evidence/integ-web1-20261121T230000Z.tar.gz
  $ integ verify integ-web1-20261121T230000Z.tar.gz --verify-key /etc/integ/signing.pub
  $ integ verify ./integ-web1-20261121T230000Z/ --format json | jq .problems

Checks every file against SHA256SUMS and manifest.json, the hash chain of log.jsonl,
and with --verify-key the Ed25519 signature of manifest.json (an unsigned bundle then fails).
Each problem is one line: ALTERED <file>, ADDED <file>, REMOVED <file>, TRUNCATED archive,
LOG line <n>: chain broken, SIGNATURE … The last line repeats the archive's SHA-256:
compare it with the one printed when the bundle was sealed.

Exit codes: 0 intact, 16 altered/added/removed/truncated or bad signature, 65 not a regular file or folder
(a FIFO, /dev/zero) or beyond the reading bounds, 66 not found, 130 interrupted.`,
    )
    .action(async (bundle: string, flags: { verifyKey?: string; format?: string; log?: string }) => {
      const { makeContext } = await import('./run-context.js');
      const { parseReportFormat, setRunOutput } = await import('../output/run-output.js');
      const format = parseReportFormat(flags.format, {});
      setRunOutput({ command: 'verify', format, syslog: null, env: process.env });
      const ctx = await makeContext(flags.log);
      const { verifyBundle } = await import('../evidence/verify.js');
      const result = await verifyBundle(bundle, { verifyKey: flags.verifyKey }, ctx);
      const { renderVerify } = await import('../report/verify-report.js');
      const { verifyLines } = await import('../report/evidence-events.js');
      process.stdout.write(format === 'ndjson' || format === 'ecs' ? verifyLines(result, format) : renderVerify(result, format));
      const { exitCodeOf } = await import('../core/verdict.js');
      process.exitCode = exitCodeOf({ command: 'verify', intact: result.ok });
    });
}
