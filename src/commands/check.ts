import type { Command } from 'commander';

export function registerCheck(program: Command): void {
  program
    .command('check')
    .summary('re-hash and compare with the current baseline; exit code says what changed')
    .description('re-hash in parallel, compare with the current baseline, report added/removed/changed entries, record the run')
    .option('--policy <file>', 'policy YAML (default: $INTEG_POLICY, else the embedded default)')
    .option('--db <file>', 'baseline store (default: $INTEG_DB, else the per-user or system store)')
    .option('--root <dir>', "read the policy's paths under DIR instead of /")
    .option('--jobs <n>', 'hashing threads (default: available cores; 0 = main thread)')
    .option('--format <fmt>', 'text, json, ndjson (one object per line) or ecs (Elastic Common Schema, one event per line) (default: $INTEG_FORMAT, else text)')
    .option(
      '--syslog [target]',
      'also send RFC 5424 messages: unix:/dev/log (default), udp://HOST:PORT or tcp://HOST:PORT (default: $INTEG_SYSLOG / the configuration)',
    )
    .option('--snapshot', 'on an alert, capture an evidence bundle (default, unless the policy says on_alert.snapshot: false)')
    .option('--no-snapshot', 'do not capture evidence on an alert')
    .option('--out <dir>', 'where evidence bundles go (default: $INTEG_EVIDENCE, else /var/lib/integ/evidence or ~/.local/state/integ/evidence)')
    .option(
      '--verify-key <file>',
      "verify the baseline's signature and hash chain with this public key before comparing (default: $INTEG_VERIFY_KEY / verify_key in the configuration)",
    )
    .option('--expect-digest <digest>', 'fail with 16 unless the current generation has exactly this digest')
    .option('--ioc <file>', 'known-bad hash list (sha256/sha1/md5 hex a line, optional label); repeatable', (v: string, prev: string[] = []) => [...prev, v])
    .option('--log <file>', 'write JSON logs here instead of stderr')
    .addHelpText(
      'after',
      `
Examples:
  $ sudo integ check                                  # text report; exit code says what was found
  $ sudo integ check --format json | jq '.changes[] | select(.severity == "critical")'
  $ sudo integ check --no-snapshot --jobs 1           # gentle, e.g. on a busy host
  $ sudo integ check --verify-key /etc/integ/key.pub --expect-digest blake3:4f…
  $ integ check --root /mnt/suspect --db golden.db    # an image against a golden baseline
  $ sudo integ check --format ecs >> /var/log/integ/events.ndjson   # for Filebeat / Elastic Agent / Wazuh
  $ sudo integ check --syslog udp://siem.example:514
  $ sudo integ check --ioc /etc/integ/malware-sha256.txt  # also match every file against a feed

Exit (summed): 1 added, 2 removed, 4 changed, 8 scan incomplete (unreadable entries listed),
32 known-bad content found (a file matches an --ioc list, changed or not).
Otherwise: 16 baseline not trustworthy, 64 usage, 65 bad policy, 66 no baseline yet, 75 store busy, 130 interrupted.`,
    )
    .action(
      async (
        flags: {
          policy?: string;
          db?: string;
          root?: string;
          jobs?: string;
          format?: string;
          syslog?: string | boolean;
          snapshot?: boolean;
          out?: string;
          verifyKey?: string;
          expectDigest?: string;
          ioc?: string[];
          log?: string;
        },
        cmd: Command,
      ) => {
        const { makeContext, parseCount } = await import('./run-context.js');
        const { defaultDbPath } = await import('../util/paths.js');
        const { clampJobs, defaultJobs } = await import('../app/common.js');
        const { parseReportFormat, resolveSyslog, setRunOutput, syslogCheck } = await import('../output/run-output.js');
        const format = parseReportFormat(flags.format, process.env);
        const out = setRunOutput({ command: 'check', format, syslog: resolveSyslog(flags.syslog, process.env), env: process.env });
        const { jobs, notice: jobsNotice } = clampJobs(parseCount('--jobs', flags.jobs) ?? defaultJobs());
        if (jobsNotice) process.stderr.write(`integ: notice: ${jobsNotice}\n`);
        const ctx = await makeContext(flags.log);
        // --snapshot / --no-snapshot only when given; otherwise the policy decides.
        const snapSource = cmd.getOptionValueSource('snapshot');
        const snapshot = snapSource === 'cli' ? flags.snapshot : undefined;
        const { createProgress } = await import('../report/progress.js');
        const { recordCheckRun, runCheck } = await import('../app/check.js');
        const progress = await createProgress(ctx, 'check', null);
        const opts = {
          policy: flags.policy,
          db: defaultDbPath(flags.db, ctx.env),
          root: flags.root,
          jobs,
          verifyKey: flags.verifyKey ?? (ctx.env.INTEG_VERIFY_KEY || undefined),
          expectDigest: (await import('../core/digest-arg.js')).parseExpectDigest(flags.expectDigest),
          ioc: flags.ioc,
        };
        const r = await runCheck(opts, ctx, progress);
        const { checkJson } = await import('../report/check-report.js');
        // The app step returns data; here, at the edge: evidence on an alert (with the rendered
        // report inside), then the run is recorded (naming that evidence), then the report.
        const { isAlert } = await import('../core/verdict.js');
        // Known-bad content alone is an alert too (exit bit 32).
        if (isAlert(r.summary) || r.iocMatches.length > 0) {
          const { captureOnAlert } = await import('../app/alert.js');
          r.evidence = await captureOnAlert(r, checkJson(r), { snapshot, out: flags.out, db: opts.db }, ctx);
        }
        recordCheckRun(r, opts.db);
        const diffs = format === 'text' ? (await import('../app/content-diff.js')).contentDiffs(r, opts.db) : undefined;
        const { renderCheck } = await import('../report/check-formats.js');
        process.stdout.write(await renderCheck(r, format, diffs));
        ctx.log.info(
          {
            event: 'run-summary',
            command: 'check',
            ...r.summary,
            exit_code: r.exitCode,
            generation: r.baseline.id,
            digest: r.baseline.digest,
            recorded: r.runId !== null,
          },
          'check finished',
        );
        await syslogCheck(r, out);
        process.exitCode = r.exitCode;
      },
    );
}
