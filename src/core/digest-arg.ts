import { UsageError } from '../util/errors.js';

/**
 * --expect-digest as people copy it: the full "blake3:<64 hex>" that history, baseline and
 * check print, or the bare 64 hex digits; case and surrounding blanks do not matter.
 * A truncated or malformed value is a usage error, never a silent mismatch.
 */
export function parseExpectDigest(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const s = v.trim().toLowerCase();
  const m = /^(?:blake3:)?([0-9a-f]{64})$/.exec(s);
  if (!m)
    throw new UsageError(
      `--expect-digest: expected the full generation digest, blake3: and 64 hex digits, as "integ history" prints it; got "${v}"${/…|\.\.\./.test(v) ? ' (that one was shortened)' : ''}`,
    );
  return `blake3:${m[1]}`;
}
