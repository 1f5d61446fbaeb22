import type { Command } from 'commander';

export function registerBaseline(program: Command): void {
  program
    .command('baseline')
    .summary('walk, hash and record a new baseline generation')
    .description("walk the policy's paths, hash every file in parallel, record a new baseline generation and make it current")
    .option('--policy <file>', 'policy YAML (default: $INTEG_POLICY, else the embedded baselines/default.yml)')
    .option('--db <file>', 'baseline store (default: $INTEG_DB, else /var/lib/integ/integ.db for root, ~/.local/state/integ/integ.db otherwise)')
    .option('--note <text>', 'why this baseline was taken, e.g. "after patching 2026-11"')
    .option('--root <dir>', "read the policy's paths under DIR (mounted image, restored backup, container root)")
    .option('--jobs <n>', 'hashing threads (default: available cores; 0 hashes on the main thread)')
    .option(
      '--sign-key <file>',
      'sign the generation with this Ed25519 private key (see integ keygen; default: $INTEG_SIGN_KEY / sign_key in the configuration)',
    )
    .option('--allow-unsigned', 'record an unsigned generation although an earlier one is signed (breaks --verify-key for later checks)')
    .option('--ioc <file>', 'known-bad hash list (sha256/sha1/md5 hex a line, optional label); repeatable', (v: string, prev: string[] = []) => [...prev, v])
    .option('--no-packages', 'do not compare packaged files with the package database (dpkg/rpm digests cost a second hash of those files)')
    .option('--format <fmt>', 'text or json', 'text')
    .option('--log <file>', 'write JSON logs here instead of stderr')
    .addHelpText(
      'after',
      `
Examples:
  $ sudo integ baseline --note "after patching 2026-11"
  $ integ baseline --policy baselines/webserver.yml --db ./web.db
  $ sudo integ baseline --root /mnt/image --db /media/usb/image.db --note "golden image"
  $ sudo integ baseline --sign-key /root/integ.key --note "signed after patch day"
  $ sudo integ baseline --ioc /etc/integ/malware-sha256.txt --format json   # also lists packaged files that already differ

Exit: 0 recorded; 64 the store has a signed generation and no key was given (--sign-key, or --allow-unsigned); 8 recorded, but some entries could not be read (listed); 32 (added) a file
matches a known-bad hash list (--ioc): the host may already be compromised; 65 bad policy or feed;
73/74 cannot write the store; 75 another run holds the store; 130 interrupted (previous baseline kept).`,
    )
    .action(
      async (flags: {
        policy?: string;
        db?: string;
        note?: string;
        root?: string;
        jobs?: string;
        signKey?: string;
        allowUnsigned?: boolean;
        ioc?: string[];
        packages?: boolean;
        format?: string;
        log?: string;
      }) => {
        const { makeContext, parseCount, parseFormat } = await import('./run-context.js');
        const format = parseFormat(flags.format);
        const { defaultDbPath } = await import('../util/paths.js');
        const { clampJobs, defaultJobs } = await import('../app/common.js');
        const { jobs, notice: jobsNotice } = clampJobs(parseCount('--jobs', flags.jobs) ?? defaultJobs());
        if (jobsNotice) process.stderr.write(`integ: notice: ${jobsNotice}\n`);
        const ctx = await makeContext(flags.log);
        const { createProgress } = await import('../report/progress.js');
        const { runBaseline } = await import('../app/baseline.js');
        const db = defaultDbPath(flags.db, ctx.env);
        const signKey = flags.signKey ?? (ctx.env.INTEG_SIGN_KEY || undefined);
        (await import('../app/signed-guard.js')).refuseUnsignedAfterSigned({ db, signKey, allowUnsigned: Boolean(flags.allowUnsigned), command: 'baseline' });
        const progress = await createProgress(ctx, 'baseline', null);
        const r = await runBaseline(
          { policy: flags.policy, db, note: flags.note ?? null, root: flags.root, jobs, signKey, ioc: flags.ioc, packages: flags.packages },
          ctx,
          progress,
        );
        const { baselineJson, baselineText } = await import('../report/baseline-report.js');
        process.stdout.write(format === 'json' ? `${JSON.stringify(baselineJson(r), null, 2)}\n` : baselineText(r));
        ctx.log.info(
          {
            event: 'run-summary',
            command: 'baseline',
            generation: r.generation.id,
            entries: r.entries,
            bytes: r.bytes,
            errors: r.errors.length,
            digest: r.generation.digest,
            exit_code: r.exitCode,
          },
          'baseline finished',
        );
        process.exitCode = r.exitCode;
      },
    );
}
