import chalk from 'chalk';
import type { BaselineResult } from '../app/baseline.js';
import { pathForTerminal } from '../core/pathenc.js';

export function baselineText(r: BaselineResult): string {
  const out: string[] = [];
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
  return `${out.join('\n')}\n`;
}
