import { EXIT } from '../util/errors.js';
import type { Finding } from './types.js';

export interface Summary {
  scanned: number;
  added: number;
  removed: number;
  changed: number;
  errors: number;
}

export function summarize(scanned: number, findings: readonly Finding[], errors: number): Summary {
  let added = 0;
  let removed = 0;
  let changed = 0;
  for (const f of findings) {
    if (f.kind === 'added') added++;
    else if (f.kind === 'removed') removed++;
    else changed++;
  }
  return { scanned, added, removed, changed, errors };
}

/**
 * The one function that decides a check's exit code: AIDE/Tripwire bitmask, plus 8 for an
 * incomplete scan, plus 32 when content matches a known-bad hash list.
 */
export function checkExitCode(s: Summary, iocMatches = 0): number {
  return (
    (s.added > 0 ? EXIT.ADDED : 0) | (s.removed > 0 ? EXIT.REMOVED : 0) | (s.changed > 0 ? EXIT.CHANGED : 0) | (s.errors > 0 ? EXIT.INCOMPLETE : 0) |
    (iocMatches > 0 ? EXIT.KNOWN_BAD : 0)
  );
}
