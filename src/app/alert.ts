import type { CheckOptions, CheckResult, EvidenceRef } from './check.js';
import type { RunContext } from '../util/context.js';

/** Placeholder replaced when the snapshot pipeline lands (see issue 3). */
export async function captureOnAlert(r: CheckResult, findingsDigest: string, opts: CheckOptions, ctx: RunContext): Promise<EvidenceRef | null> {
  void r; void findingsDigest; void opts; void ctx;
  return null;
}
