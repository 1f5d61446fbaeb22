import type { Command } from 'commander';

export function registerRestore(program: Command): void {
  program
    .command('restore')
    .summary('put back the known-good version of files (content, mode, owner, xattrs, flags) after sealing the suspect ones')
    .argument('<paths...>', 'paths as the baseline names them (b64:… for names that are not UTF-8)')
    .description(
      'restore content, mode, owner, group, extended attributes (capabilities, ACLs, user.*) and inode flags of each PATH from a\n' +
        'generation whose rule kept content (keep_content). The current, suspect version of every path is sealed\n' +
        'into an evidence bundle first; each path is written beside its final name and renamed into place, never\n' +
        'through a symlink. A generation of kind "restore" records who, when and why, so the next check is clean.',
    )
    .option('--note <text>', 'why (required; recorded with the restore generation and in the bundle)')
    .option('--generation <n>', 'restore from this generation (default: the current one; see integ history)')
    .option('--root <dir>', 'restore under DIR (a mounted system being rebuilt before it boots)')
    .option('--dry-run', 'say what would be restored; seal and change nothing')
    .option('--out <dir>', 'evidence folder for the suspect versions (default: $INTEG_EVIDENCE, else the per-user or system one)')
    .option('--db <file>', 'baseline store (default: $INTEG_DB, else the per-user or system store)')
    .option('--policy <file>', 'policy whose trust.public_key must have signed the store (default: $INTEG_POLICY, else the embedded default)')
    .option('--sign-key <file>', 'sign the restore generation and the bundle with this Ed25519 private key')
    .option('--verify-key <file>', "verify the store's signatures with this public key first")
    .option('--format <fmt>', 'text or json', 'text')
    .option('--log <file>', 'write JSON logs here instead of stderr')
    .addHelpText(
      'after',
      `
Examples:
  $ sudo integ restore /etc/ssh/sshd_config --note "case 42: revert attacker's PermitRootLogin"
  $ sudo integ restore /etc/pam.d/sshd /etc/sudoers --generation 3 --note "case 42" --dry-run
  $ sudo integ restore --root /mnt/web1 /etc/passwd --note "rebuild before boot"

Exit: 0 restored (or nothing to do); 8 restored, but some recorded extended attributes or flags
could not be put back (listed per path); 64 no --note or no path; 65 a path is not in the generation,
or refused (a symlink on the way, a directory in the way); 66 the content was not kept (or no
store/generation); 16 the store or the kept content is not trustworthy; 73/74 cannot write.`,
    )
    .action(
      async (
        paths: string[],
        flags: {
          note?: string;
          generation?: string;
          root?: string;
          dryRun?: boolean;
          out?: string;
          db?: string;
          policy?: string;
          signKey?: string;
          verifyKey?: string;
          format?: string;
          log?: string;
        },
      ) => {
        const { makeContext, parseFormat, parseCount } = await import('./run-context.js');
        const { UsageError } = await import('../util/errors.js');
        const format = parseFormat(flags.format);
        if (flags.note === undefined || !flags.note.trim())
          throw new UsageError('--note TEXT is required: say why these paths are restored (it is recorded with the restore generation)');
        const generation = parseCount('--generation', flags.generation, 1);
        const { pathFromArg } = await import('../core/pathenc.js');
        const bytes = paths.map((p) => {
          const b = pathFromArg(p);
          if (!b.length || b[0] !== 0x2f) throw new UsageError(`${p}: expected an absolute path as the baseline names it`);
          return b;
        });
        const { defaultDbPath } = await import('../util/paths.js');
        const ctx = await makeContext(flags.log);
        const { runRestore } = await import('../app/restore.js');
        const r = await runRestore(
          {
            paths: bytes,
            note: flags.note,
            generation,
            root: flags.root,
            dryRun: Boolean(flags.dryRun),
            db: defaultDbPath(flags.db, ctx.env),
            out: flags.out,
            policy: flags.policy,
            signKey: flags.signKey,
            verifyKey: flags.verifyKey,
          },
          ctx,
        );
        const { restoreJson, restoreText } = await import('../report/recover-report.js');
        process.stdout.write(format === 'json' ? `${JSON.stringify(restoreJson(r), null, 2)}\n` : restoreText(r));
        process.exitCode = r.exitCode;
      },
    );
}
