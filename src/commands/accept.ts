import type { Command } from 'commander';

export function registerAccept(program: Command): void {
  program
    .command('accept')
    .summary('fold findings of the last check into a new baseline generation')
    .argument('[paths...]', 'findings of the last check to accept, exactly as it reported them (b64:… for names that are not UTF-8)')
    .description(
      'fold chosen findings of the last check into a new baseline generation (kind "accept"),\n' +
        'recording who, when and why; each accepted path is re-read first and refused if it changed again since the check',
    )
    .option('--all', 'accept every open finding of the last check')
    .option('--rule <name>', 'only findings of this policy rule (alone: all of them)')
    .option(
      '--packaged',
      'accept exactly the findings whose new content matches what their package shipped (dpkg md5sums or rpm digests); the rest stay for review',
    )
    .option('--note <text>', 'why these changes are expected (required; recorded with the generation)')
    .option('--force', 'accept what the check saw even if a path changed again since (the next check reports the new change)')
    .option(
      '--sign-key <file>',
      'sign the new generation with this Ed25519 private key (see integ keygen; default: $INTEG_SIGN_KEY / sign_key in the configuration)',
    )
    .option('--allow-unsigned', 'record an unsigned generation although an earlier one is signed (breaks --verify-key for later checks)')
    .option('--db <file>', 'baseline store (default: $INTEG_DB, else the per-user or system store)')
    .option('--policy <file>', 'the policy the check used (default: the one the store recorded for that check)')
    .option('--root <dir>', 're-read the paths under DIR (default: the root the check used)')
    .option('--format <fmt>', 'text or json', 'text')
    .option('--log <file>', 'write JSON logs here instead of stderr')
    .addHelpText(
      'after',
      `
Examples:
  $ sudo integ check                                        # review what it reports
  $ sudo integ accept /etc/ssh/sshd_config --note "CHG-1234: hardened ciphers"
  $ sudo integ accept --all --note "apt upgrade 2026-11-21" --sign-key /root/integ.key
  $ sudo integ accept --rule binaries --note "kernel update"
  $ sudo integ accept --packaged --note "patch day 2026-11"    # only what dpkg vouches for
  $ integ accept b64:L2V0Yy9mb2/+ --note "odd file name, reviewed"

Findings may be accepted in several steps from one check. Exit: 0 accepted; 64 a signed store and no key (--sign-key or --allow-unsigned), nothing or an
unknown path named, no --note, or no check run yet; 65 refused: a path changed again since
the check (re-run check, or --force), the findings are stale (a baseline or accept from
another check came in between), or a different policy; 16 the store is not trustworthy;
66 no store; 75 store busy. Refusals write nothing.`,
    )
    .action(
      async (
        paths: string[],
        flags: {
          all?: boolean;
          packaged?: boolean;
          rule?: string;
          note?: string;
          force?: boolean;
          signKey?: string;
          allowUnsigned?: boolean;
          db?: string;
          policy?: string;
          root?: string;
          format?: string;
          log?: string;
        },
      ) => {
        const { makeContext, parseFormat } = await import('./run-context.js');
        const { UsageError } = await import('../util/errors.js');
        const format = parseFormat(flags.format);
        if (flags.note === undefined || !flags.note.trim())
          throw new UsageError('--note TEXT is required: say why these changes are accepted (it is recorded with the generation)');
        const { pathFromArg } = await import('../core/pathenc.js');
        const bytes = paths.map((p) => {
          const b = pathFromArg(p);
          if (!b.length || b[0] !== 0x2f) throw new UsageError(`${p}: expected an absolute path as the check reported it`);
          return b;
        });
        const { defaultDbPath } = await import('../util/paths.js');
        const ctx = await makeContext(flags.log);
        const signKey = flags.signKey ?? (ctx.env.INTEG_SIGN_KEY || undefined);
        const db = defaultDbPath(flags.db, ctx.env);
        (await import('../app/signed-guard.js')).refuseUnsignedAfterSigned({ db, signKey, allowUnsigned: Boolean(flags.allowUnsigned), command: 'accept' });
        const { runAccept } = await import('../app/accept.js');
        const r = await runAccept(
          {
            paths: bytes,
            all: Boolean(flags.all),
            packaged: Boolean(flags.packaged),
            rule: flags.rule,
            note: flags.note,
            force: Boolean(flags.force),
            signKey,
            db,
            policy: flags.policy,
            root: flags.root,
          },
          ctx,
        );
        const { acceptJson, acceptText } = await import('../report/history-report.js');
        process.stdout.write(format === 'json' ? `${JSON.stringify(acceptJson(r), null, 2)}\n` : acceptText(r));
        process.exitCode = r.exitCode;
      },
    );
}
