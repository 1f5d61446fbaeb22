import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';

/** An evidence bundle: a .tar.gz, or the folder extracted from one (it has a manifest.json). */
function looksLikeBundle(p: string): boolean {
  if (p.endsWith('.tar.gz')) return true;
  try {
    return fs.statSync(p).isDirectory() && fs.existsSync(path.join(p, 'manifest.json'));
  } catch {
    return false;
  }
}

export function registerDiff(program: Command): void {
  program
    .command('diff')
    .summary('compare two baselines (two stores, or two generations) or two snapshots')
    .argument('[a]', 'first store (or evidence bundle)')
    .argument('[b]', 'second store (or evidence bundle)')
    .description(
      'compare two baselines — the current generations of two stores ("is web1 still like web2?"),\n' +
        'or two generations of one store — or two evidence bundles. Exit 0 same, 1 different.',
    )
    .option('--generation <n...>', 'compare generations N and M of one store (--db) instead of two stores')
    .option('--db <file>', 'with --generation: the store (default: $INTEG_DB, else the per-user or system store)')
    .option('--ignore <attrs>', 'attributes not to compare, comma-separated (e.g. inode,ctime,mtime between two hosts)')
    .option('--compare <attrs>', 'between different hosts or roots, also compare these host-local attributes (inode,ctime,mtime,nlink, or all)')
    .option('--verify-key <file>', "verify each store's signatures with this public key first")
    .option('--format <fmt>', 'text or json', 'text')
    .option('--log <file>', 'write JSON logs here instead of stderr')
    .addHelpText(
      'after',
      `
Examples:
  $ integ diff web1.db web2.db                                    # two hosts of one role (host-independent attributes)
  $ integ diff web1.db web2.db --compare mtime                    # … and modification times too
  $ sudo integ diff --generation 3 7                              # what changed between two generations
  $ integ diff --generation 1 2 --db golden.db --format json | jq .summary
  $ integ diff integ-web1-20261121T230000Z.tar.gz integ-web1-20261122T230000Z.tar.gz

A is the reference: ADDED means only in B, REMOVED only in A. All attributes are compared
unless --ignore says otherwise (content type mode uid gid size mtime ctime inode nlink target);
between different hosts or roots inode, ctime, mtime and nlink are left out (the header says so)
unless --compare names them.
Both sides pass the trust gate first (chain, content digests; signatures with --verify-key).
Exit: 0 same; 1 different; 16 a store is not trustworthy; 64 usage; 66 missing store or generation.`,
    )
    .action(
      async (
        a: string | undefined,
        b: string | undefined,
        flags: { generation?: string[]; db?: string; ignore?: string; compare?: string; verifyKey?: string; format?: string; log?: string },
      ) => {
        const { makeContext, parseFormat } = await import('./run-context.js');
        const { UsageError } = await import('../util/errors.js');
        const { exitCodeOf } = await import('../core/verdict.js');
        const format = parseFormat(flags.format);

        // ── Snapshot-bundle diff: both arguments are bundles. ──────────────────────────────
        if (a !== undefined && b !== undefined && looksLikeBundle(a) && looksLikeBundle(b)) {
          if (flags.generation) throw new UsageError('--generation compares generations of one store, not bundles');
          const ctx = await makeContext(flags.log);
          const { diffBundles } = await import('../app/snapshot-diff.js');
          const d = await diffBundles(a, b, ctx);
          const { snapshotDiffJson, snapshotDiffText } = await import('../report/snapshot-report.js');
          process.stdout.write(format === 'json' ? `${JSON.stringify(snapshotDiffJson(d, a, b), null, 2)}\n` : snapshotDiffText(d, a, b));
          process.exitCode = exitCodeOf({ command: 'diff', same: d.same });
          return;
        }
        // ── Store diff. ───────────────────────────────────────────────────────────────────
        if ((a !== undefined && looksLikeBundle(a)) || (b !== undefined && looksLikeBundle(b)))
          throw new UsageError('cannot compare an evidence bundle with a store: give two bundles or two stores');
        const { ATTRIBUTES } = await import('../core/types.js');
        type Attr = (typeof ATTRIBUTES)[number];
        const ignore = (flags.ignore ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        for (const x of ignore)
          if (!(ATTRIBUTES as readonly string[]).includes(x))
            throw new UsageError(`--ignore: unknown attribute "${x}" (expected some of: ${ATTRIBUTES.join(', ')})`);
        let gens: [number, number] | undefined;
        if (flags.generation) {
          if (a !== undefined) throw new UsageError('give either two stores (integ diff A B) or --generation N M [--db F], not both');
          const g = flags.generation;
          if (g.length !== 2 || !g.every((s) => /^\d+$/.test(s))) throw new UsageError(`--generation takes two generation numbers, got "${g.join(' ')}"`);
          gens = [Number(g[0]), Number(g[1])];
        } else if (a === undefined || b === undefined) {
          throw new UsageError('give two stores (integ diff A B) or --generation N M [--db F]');
        } else if (/^\d+$/.test(a) && /^\d+$/.test(b) && !fs.existsSync(a) && !fs.existsSync(b)) {
          throw new UsageError(
            `"${a}" and "${b}" look like generation numbers: integ diff --generation ${a} ${b} [--db F] compares two generations of one store (integ diff A B compares two store files)`,
          );
        }
        const compare = (await import('../app/diff-hosts.js')).parseCompare(flags.compare);
        const { defaultDbPath } = await import('../util/paths.js');
        const ctx = await makeContext(flags.log);
        const { openStoreDiff } = await import('../app/store-diff.js');
        const d = await openStoreDiff(
          gens
            ? { generations: gens, db: defaultDbPath(flags.db, ctx.env), ignore: ignore as Attr[], compare, verifyKey: flags.verifyKey }
            : { stores: [a!, b!], ignore: ignore as Attr[], compare, verifyKey: flags.verifyKey },
          ctx,
        );
        const { renderStoreDiff } = await import('../report/store-diff-report.js');
        try {
          const s = renderStoreDiff(d, format, (chunk) => process.stdout.write(chunk));
          process.exitCode = exitCodeOf({ command: 'diff', same: s.added + s.removed + s.changed === 0 });
        } finally {
          d.differences.return(undefined as never);
          d.close();
        }
      },
    );
}
