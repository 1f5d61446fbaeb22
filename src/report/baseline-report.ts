import chalk from 'chalk';
import type { BaselineResult } from '../app/baseline.js';
import { pathForTerminal, pathJson } from '../core/pathenc.js';
import { VERSION } from '../version.js';
import { iocJson, iocText } from './check-report.js';
import type { PackageMismatch } from '../pkg/dpkg.js';

/** `baseline --format json`: the generation recorded, unreadable entries, known-bad matches. */
export function baselineJson(r: BaselineResult): Record<string, unknown> {
  const g = r.generation;
  return {
    schema: 'integ.baseline/1',
    tool: { name: 'integ', version: VERSION },
    host: { hostname: g.hostname },
    generation: g.id,
    created_at: g.createdAt,
    note: g.note,
    digest: g.digest,
    signed: g.signature !== null,
    root: r.root,
    entries: r.entries,
    bytes: r.bytes,
    seconds: r.seconds,
    errors: r.errors.map((e) => ({ ...pathJson(e.path), code: e.code, message: e.message })),
    ioc_matches: r.iocMatches.map(iocJson),
    ioc_feeds: r.iocFeeds,
    packaged_checked: r.packagedChecked,
    package_mismatches: r.packageMismatches.map(mismatchJson),
    conffiles_modified: r.conffilesModified.map(mismatchJson),
    packages_unverified: r.packagesUnverified.map((e) => ({ ...pathJson(e.path), code: e.code, message: e.message })),
    exit_code: r.exitCode,
  };
}

function mismatchJson(m: PackageMismatch): Record<string, unknown> {
  return { ...pathJson(m.path), package: m.package, algorithm: m.algorithm, expected: m.expected, actual: m.actual, conffile: m.conffile };
}

export function baselineText(r: BaselineResult): string {
  const out: string[] = [];
  out.push(...iocText(r.iocMatches));
  if (r.packageMismatches.length) {
    out.push(
      chalk.bold.red(
        `WARNING: ${r.packageMismatches.length} packaged file${r.packageMismatches.length > 1 ? 's' : ''} already differ${r.packageMismatches.length > 1 ? '' : 's'} from what the package shipped — was this host already tampered with? (recorded as found)`,
      ),
    );
    for (const m of r.packageMismatches)
      out.push(`  DOES NOT MATCH  ${pathForTerminal(m.path)}  (${m.package.name} ${m.package.version}: ${m.algorithm} ${m.expected} shipped, ${m.actual} now)`);
  }
  if (r.conffilesModified.length) {
    out.push(
      chalk.dim(
        `note: ${r.conffilesModified.length} configuration file${r.conffilesModified.length > 1 ? 's' : ''} (dpkg conffiles) edited since installation:`,
      ),
    );
    for (const m of r.conffilesModified) out.push(chalk.dim(`  edited  ${pathForTerminal(m.path)}  (${m.package.name} ${m.package.version})`));
  }
  if (r.packagesUnverified.length) {
    out.push(chalk.yellow(`NOT COMPARED WITH ITS PACKAGE (${r.packagesUnverified.length}) — changed or unreadable after it was recorded`));
    for (const e of r.packagesUnverified) out.push(`  ${e.code.padEnd(8)} ${pathForTerminal(e.path)}: ${e.message}`);
  }
  if (r.errors.length) {
    out.push(chalk.magenta(`UNREADABLE (${r.errors.length}) — recorded by metadata only, or not at all`));
    for (const e of r.errors) out.push(`  ${e.code.padEnd(8)} ${pathForTerminal(e.path)}: ${e.message}`);
  }
  const mb = r.bytes / 1e6;
  const g = r.generation;
  out.push(
    `baseline #${g.id} recorded: ${r.entries} entries, ${mb.toFixed(1)} MB in ${r.seconds.toFixed(2)} s ` +
      `(${(r.seconds > 0 ? mb / r.seconds : 0).toFixed(1)} MB/s)${r.errors.length ? `, ${r.errors.length} unreadable` : ''}`,
  );
  if (r.kept) out.push(`content kept for ${r.kept} file(s) (keep_content)`);
  out.push(`digest ${g.digest}${g.signature ? ` (signed, key ${g.keyId})` : ''}`);
  if (r.packagedChecked)
    out.push(
      `packages: ${r.packagedChecked} packaged files compared with the package database, ${r.packageMismatches.length} differ, ${r.conffilesModified.length} conffiles edited`,
    );
  return `${out.join('\n')}\n`;
}
