import chalk from 'chalk';
import { Command, CommanderError } from 'commander';
import { EXIT, IntegError } from './util/errors.js';
import { registerBaseline } from './commands/baseline.js';
import { registerCheck } from './commands/check.js';
import { registerSnapshot } from './commands/snapshot.js';
import { registerVerify } from './commands/verify.js';
import { registerKeygen } from './commands/keygen.js';
import { registerAccept } from './commands/accept.js';
import { registerHistory } from './commands/history.js';
import { registerDiff } from './commands/diff.js';
import { registerPrune } from './commands/prune.js';
import { registerExport } from './commands/export.js';
import { registerPolicy } from './commands/policy.js';
import { registerRecoveryCommands } from './commands/recovery.js';

import { VERSION } from './version.js';

/** How to get out of exit 16 (README: "Recovering from exit 16"). */
export const UNTRUSTED_HINT =
  ' — to recover: keep this store as evidence, compare with a known-good copy or similar hosts (integ diff OLD.db THIS.db), ' +
  'then start a new store from trusted media (integ baseline --db NEW.db --sign-key KEY; README "Recovering from exit 16")';

const REPORT_URL = 'https://github.com/integ-project/integ/issues';

export function buildProgram(): Command {
  const program = new Command('integ')
    .description(
      'Host integrity monitor and live-response collector. In peacetime record what the system normally ' +
        'looks like (baseline), detect tampering by re-hashing and comparing (check), and on an incident preserve ' +
        'volatile state in a sealed, verifiable evidence bundle (snapshot).',
    )
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: false })
    .exitOverride();
  program.addHelpText(
    'after',
    `
Examples:
  $ sudo integ baseline --note "after patching 2026-11"
  $ sudo integ check                      # exit 0 clean; 1/2/4 added/removed/changed; +8 unreadable
  $ sudo integ check --format json | jq .summary
  $ sudo integ snapshot --note "case 42: suspicious outbound traffic"
  $ integ verify /var/lib/integ/evidence/integ-web1-20261121T230000Z.tar.gz

Exit codes: 0 clean, 1|2|4 added|removed|changed (summed), +8 scan incomplete, 16 not trustworthy,
64 usage, 65 bad policy/input, 66 no baseline/input, 70 internal error, 73/74 cannot create/I/O error,
75 store busy, 77 permission denied, 130 interrupted.`,
  );
  registerBaseline(program);
  registerCheck(program);
  registerSnapshot(program);
  registerVerify(program);
  registerAccept(program);
  registerHistory(program);
  registerDiff(program);
  registerPrune(program);
  registerExport(program);
  registerRecoveryCommands(program);
  registerKeygen(program);
  registerPolicy(program);
  for (const cmd of program.commands) cmd.exitOverride();
  // /etc/integ/integ.yml (or the XDG one, or $INTEG_CONFIG) fills unset INTEG_* variables before any command runs.
  program.hook('preAction', async () => {
    (await import('./config/config.js')).applyConfig(process.env);
  });
  return program;
}

/** The one place that turns errors into exit codes. */
export async function main(argv: string[]): Promise<void> {
  // no-color.org: a non-empty NO_COLOR turns colour off (chalk already does so when stdout is not a TTY).
  if (process.env.NO_COLOR) chalk.level = 0;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    // A reader that went away (| head) is not an error of ours.
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    // Anything else (a full disk, /dev/full, EIO) lost the report: say so and exit 74.
    const why = err.code === 'ENOSPC' ? 'no space left on device' : err.message;
    process.stderr.write(`integ: cannot write the report to standard output: ${why}\n`);
    process.exit(EXIT.IOERR);
  });
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    process.exitCode = exitCodeFor(err);
    // A failing run still leaves one machine-readable event (ndjson/ecs/syslog) when one was asked for.
    await (await import('./output/run-output.js')).emitFailure(err, process.exitCode);
  }
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) {
    // --help and --version succeed; help shown because no command was given is a usage error.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    // commander has already printed its one-line message.
    return EXIT.USAGE;
  }
  if (err instanceof IntegError) {
    process.stderr.write(`integ: ${err.message}${err.exitCode === EXIT.UNTRUSTED ? UNTRUSTED_HINT : ''}\n`);
    return err.exitCode;
  }
  const e = err as Error;
  process.stderr.write(
    `integ: internal error: ${e?.message ?? String(err)}\n${e?.stack ?? ''}\n` +
      `This is a bug in integ ${VERSION}. Please report it with the command line and the output above at ${REPORT_URL}\n`,
  );
  return EXIT.SOFTWARE;
}
