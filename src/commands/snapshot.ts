import type { Command } from 'commander';

export function registerSnapshot(program: Command): void {
  program
    .command('snapshot')
    .summary('capture volatile state into a sealed, verifiable evidence bundle')
    .description(
      'capture volatile state (processes, sockets, sessions, kernel and network state, running executables,\n' +
        'configuration) in order of volatility into a timestamped, sealed, verifiable evidence bundle.\n' +
        "Reads the kernel's files directly and runs no external programs. Linux only.",
    )
    .option('--out <dir>', 'where the bundle goes (default: $INTEG_EVIDENCE, else /var/lib/integ/evidence or ~/.local/state/integ/evidence)')
    .option('--note <text>', 'case notes recorded in the manifest, e.g. "case 42: outbound traffic to 203.0.113.9"')
    .option('--format <fmt>', 'text, json, ndjson or ecs (one event per line)', 'text')
    .option('--sign-key <file>', 'sign the manifest with this Ed25519 private key (see integ keygen)')
    .option(
      '--root <dir>',
      "read host files (accounts, homes, persistence places, config, ld.so.preload) under DIR, e.g. a mounted image; /proc and /sys stay the live kernel's",
    )
    .option('--shadow-hashes', 'keep password hashes from /etc/shadow in the bundle (default: redacted, state and fingerprint only)')
    .option(
      '--ioc <file>',
      'known-bad hash list (sha256/sha1/md5 hex a line, optional label) to match running executables against; repeatable',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--log <file>', 'write JSON logs here instead of stderr')
    .option('--db <file>', "record the bundle in this store's incident record (default: $INTEG_DB or the default store, if it exists)")
    .addHelpText(
      'after',
      `
Examples:
  $ sudo integ snapshot --note "case 42: suspicious outbound traffic"
  $ sudo integ snapshot --out /media/usb/evidence --sign-key /root/integ.key --format json
  $ integ verify /var/lib/integ/evidence/integ-web1-20261121T230000Z.tar.gz
  $ integ diff reference.tar.gz now.tar.gz     # what is new since the peacetime reference
  $ sudo integ snapshot --root /mnt/image       # persistence and accounts from a mounted disk image
  $ sudo integ snapshot --ioc /etc/integ/malware-sha256.txt   # running executables against a feed

The text output ends with a triage summary: one line per finding (hidden process, masquerade,
deleted or memfd executable, executable in /tmp, preload, unowned listener, module mismatch),
most severe first; artifacts/findings.json in the bundle has the same list.
Password hashes from /etc/shadow are redacted unless --shadow-hashes is given.

Prints the bundle's path and its SHA-256 (write it in your notes).
Exit: 0 sealed (some artifacts may be partial without root: see the manifest); 64 not Linux; 66 --root not a directory;
73/74 cannot write the output (nothing that looks complete is left); 73 also when --out is a folder other
users could rename entries in (not root's or yours, or group/world-writable without the sticky bit);
130 interrupted (SIGINT, SIGTERM, SIGHUP, SIGQUIT).`,
    )
    .action(
      async (flags: {
        out?: string;
        note?: string;
        format?: string;
        signKey?: string;
        log?: string;
        root?: string;
        shadowHashes?: boolean;
        db?: string;
        ioc?: string[];
      }) => {
        const { makeContext } = await import('./run-context.js');
        const { defaultEvidenceDir } = await import('../util/paths.js');
        const { parseReportFormat, setRunOutput } = await import('../output/run-output.js');
        const format = parseReportFormat(flags.format, {});
        setRunOutput({ command: 'snapshot', format, syslog: null, env: process.env });
        const ctx = await makeContext(flags.log);
        const { runSnapshot } = await import('../app/snapshot.js');
        let fsRoot: string | undefined;
        if (flags.root !== undefined) {
          const fs = await import('node:fs');
          const { NoInputError } = await import('../util/errors.js');
          if (!fs.statSync(flags.root, { throwIfNoEntry: false })?.isDirectory()) throw new NoInputError(`--root ${flags.root}: not a directory`);
          fsRoot = (await import('node:path')).resolve(flags.root);
        }
        // Feeds are read (and a malformed line refused with 65) before anything is collected.
        const iocMatch = flags.ioc?.length ? await (await import('../app/snapshot-ioc.js')).snapshotIocMatcher(flags.ioc) : undefined;
        const r = await runSnapshot(
          {
            out: defaultEvidenceDir(flags.out, ctx.env),
            note: flags.note ?? null,
            signKey: flags.signKey,
            shadowHashes: flags.shadowHashes === true,
            ...(fsRoot ? { roots: { fsRoot } } : {}),
            ...(iocMatch ? { iocMatch } : {}),
          },
          ctx,
        );
        const { defaultDbPath } = await import('../util/paths.js');
        const notice = await (await import('../app/evidence-record.js')).recordSnapshotEvidence(
          defaultDbPath(flags.db, ctx.env),
          flags.db !== undefined,
          r,
          flags.note ?? null,
        );
        if (notice) ctx.log.warn({}, notice);
        const { snapshotJson, snapshotText } = await import('../report/snapshot-report.js');
        const { snapshotLines } = await import('../report/evidence-events.js');
        process.stdout.write(
          format === 'ndjson' || format === 'ecs'
            ? snapshotLines(r, format)
            : format === 'json'
              ? `${JSON.stringify(snapshotJson(r), null, 2)}\n`
              : snapshotText(r),
        );
        const { exitCodeOf } = await import('../core/verdict.js');
        process.exitCode = exitCodeOf({ command: 'done' });
      },
    );
}
