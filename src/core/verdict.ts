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
 * What a command found, as far as its exit code is concerned. Failures are not outcomes: they
 * are IntegErrors, mapped in src/cli.ts.
 */
export type Outcome =
  /** check: findings, unreadable entries, files on a known-bad hash list */
  | { command: 'check'; summary: Summary; knownBad?: number }
  /** baseline: recorded; some entries could not be read; files on a known-bad hash list */
  | { command: 'baseline'; unreadable: number; knownBad?: number }
  /** diff (stores or bundles): whether the two sides are the same */
  | { command: 'diff'; same: boolean }
  /** verify: the bundle's seal (and signature) hold */
  | { command: 'verify'; intact: boolean }
  /** every other command: it did what was asked */
  | { command: 'done' };

/**
 * The one function that decides every command's exit code from its outcome (restic's
 * ComputeExitCode is the model). The codes themselves are the EXIT table.
 */
export function exitCodeOf(o: Outcome): number {
  switch (o.command) {
    case 'check':
      return checkExitCode(o.summary, o.knownBad ?? 0);
    case 'baseline':
      return (o.unreadable > 0 ? EXIT.INCOMPLETE : EXIT.OK) | ((o.knownBad ?? 0) > 0 ? EXIT.KNOWN_BAD : 0);
    case 'diff':
      return o.same ? EXIT.OK : EXIT.DIFFERENT;
    case 'verify':
      return o.intact ? EXIT.OK : EXIT.UNTRUSTED;
    case 'done':
      return EXIT.OK;
  }
}

/** A check found added, removed or changed entries (the alert that captures evidence). */
export function isAlert(s: Summary): boolean {
  return s.added + s.removed + s.changed > 0;
}

/**
 * check's exit code (the 'check' case of exitCodeOf): AIDE/Tripwire bitmask, plus 8 for an
 * incomplete scan, plus 32 when content matches a known-bad hash list.
 */
export function checkExitCode(s: Summary, iocMatches = 0): number {
  return (
    (s.added > 0 ? EXIT.ADDED : 0) |
    (s.removed > 0 ? EXIT.REMOVED : 0) |
    (s.changed > 0 ? EXIT.CHANGED : 0) |
    (s.errors > 0 ? EXIT.INCOMPLETE : 0) |
    (iocMatches > 0 ? EXIT.KNOWN_BAD : 0)
  );
}
