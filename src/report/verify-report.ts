import path from 'node:path';
import type { VerifyResult } from '../evidence/verify.js';
import { textForTerminal } from '../core/pathenc.js';

/** The report: one line per problem, then a verdict line; or one JSON document. */
export function renderVerify(r: VerifyResult, format: 'text' | 'json'): string {
  if (format === 'json') return JSON.stringify(r, null, 2) + '\n';
  const out: string[] = [];
  // Names and details come from the bundle, which may be hostile: one escaped line each.
  for (const p of r.problems) {
    out.push(textForTerminal(p.kind === 'LOG' ? `LOG ${p.detail}` : `${p.kind} ${p.file ?? 'archive'}: ${p.detail}`));
  }
  const sig = {
    valid: `signature valid (key ${textForTerminal(r.key_id ?? '?')})`,
    invalid: 'signature INVALID',
    absent: 'not signed',
    'not-checked': `signed by key ${textForTerminal(r.key_id ?? '?')}, not checked (give --verify-key)`,
  }[r.signature];
  const name = textForTerminal(r.name || path.basename(r.bundle));
  if (r.ok) {
    out.push(`OK ${name}: ${r.files} files match SHA256SUMS and manifest.json; log chain intact (${r.log_lines} lines); ${sig}`);
  } else {
    const n = r.problems.length;
    out.push(`FAILED ${name}: ${n} problem${n === 1 ? '' : 's'}; ${sig}; this bundle is not trustworthy`);
  }
  if (r.archive_sha256) out.push(`archive sha256: ${r.archive_sha256}`);
  return out.join('\n') + '\n';
}
