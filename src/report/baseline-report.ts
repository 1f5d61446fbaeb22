import chalk from 'chalk';
import type { BaselineResult } from '../app/baseline.js';
import { pathForTerminal, pathJson } from '../core/pathenc.js';
import { VERSION } from '../version.js';
import { iocJson, iocText } from './check-report.js';

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
    exit_code: r.exitCode,
  };
}

export function baselineText(r: BaselineResult): string {
  const out: string[] = [];
  out.push(...iocText(r.iocMatches));
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
  out.push(`digest ${g.digest}${g.signature ? ` (signed, key ${g.keyId})` : ''}`);
  return `${out.join('\n')}\n`;
}
