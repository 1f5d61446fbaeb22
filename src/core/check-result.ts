/**
 * What a check produces: pure data, below app/ (which computes it), report/ (which renders it)
 * and the command (which captures evidence with the rendered report, then records the run).
 */
import type { Generation } from './generation.js';
import type { Finding, IocMatch, Policy, ScanError } from './types.js';
import type { Summary } from './verdict.js';

/** Who ran a command, on which host. */
export interface Who {
  user: string;
  uid: number;
  hostname: string;
}

/** The evidence bundle an alert captured (or reused within the cooldown). */
export interface EvidenceRef {
  bundle: string;
  sha256: string;
  reused: boolean;
}

export interface CheckResult {
  startedAt: string;
  finishedAt: string;
  who: Who;
  root: string;
  policy: Policy;
  baseline: Generation;
  summary: Summary;
  findings: Finding[];
  errors: ScanError[];
  /** files whose content is on a known-bad hash list, changed or not (exit bit 32) */
  iocMatches: IocMatch[];
  /** the feed files matched against (empty: none given) */
  iocFeeds: string[];
  /** digest of the set of findings: an identical alert within the cooldown reuses its bundle */
  findingsDigest: string;
  evidence: EvidenceRef | null;
  /** notices for the operator (policy changed since the baseline, run not recorded …) */
  notices: string[];
  /** false when the store cannot be written (read-only media): the run is not recorded */
  storeWritable: boolean;
  /** a copy written by `integ export` (not in WAL mode): opened read-only, never written to */
  storeIsCopy?: boolean;
  runId: number | null;
  exitCode: number;
}
