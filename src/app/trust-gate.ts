import type { Generation } from '../store/baseline-repo.js';
import type { DB } from '../store/db.js';
import { computeGenerationDigest } from '../store/generation-digest.js';
import type { RunContext } from '../util/context.js';
import { TrustError } from '../util/errors.js';

export interface TrustOptions {
  /** public key file: the current generation must carry a valid signature by it */
  verifyKey?: string;
  /** the current generation's digest must be exactly this (catches rollback to an older, validly signed generation) */
  expectDigest?: string;
}

/**
 * Runs before any comparison: a baseline that is not what it claims to be must not be
 * compared against. Recomputes the current generation's digest from its rows (an edited,
 * added or deleted row shows), checks the link to its parent, and with a key, the signature.
 */
export async function verifyTrust(db: DB, g: Generation, opts: TrustOptions, ctx: RunContext): Promise<void> {
  const problems: string[] = [];
  const d = computeGenerationDigest(db, g);
  if (d.digest !== g.digest) problems.push(`generation #${g.id}: content does not match its recorded digest (rows edited, added or deleted)`);
  if (d.entryCount !== g.entryCount) problems.push(`generation #${g.id}: ${d.entryCount} entries stored, ${g.entryCount} recorded`);
  if (g.parentId !== null) {
    const parent = db.prepare('SELECT digest FROM generations WHERE id = ?').get(g.parentId) as { digest: string } | undefined;
    const anchor = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'pruned'").get()
      ? (db.prepare('SELECT digest FROM pruned WHERE id = ?').get(g.parentId) as { digest: string } | undefined)
      : undefined;
    const parentDigest = parent?.digest ?? anchor?.digest;
    if (parentDigest === undefined) problems.push(`generation #${g.id}: parent generation #${g.parentId} is missing (chain broken)`);
    else if (parentDigest !== g.parentDigest) problems.push(`generation #${g.id}: parent digest does not match generation #${g.parentId} (chain broken)`);
  }
  if (opts.expectDigest && opts.expectDigest !== g.digest)
    problems.push(`current generation #${g.id} has digest ${g.digest}, expected ${opts.expectDigest} (rollback or replaced store?)`);
  if (opts.verifyKey) {
    const keys = await import('../trust/keys.js');
    const pub = await keys.loadPublicKey(opts.verifyKey);
    if (!g.signature) problems.push(`generation #${g.id} is not signed, but a signature was demanded (--verify-key / trust.public_key)`);
    else if (!keys.verify(Buffer.from(g.digest, 'utf8'), g.signature, pub)) problems.push(`generation #${g.id}: signature does not verify with ${opts.verifyKey}`);
  }
  if (problems.length) {
    for (const p of problems) ctx.log.error({ generation: g.id }, p);
    throw new TrustError(`baseline not trustworthy, nothing compared: ${problems.join('; ')}`);
  }
}
