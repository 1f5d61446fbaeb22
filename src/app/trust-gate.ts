import { BaselineRepo, type ChainLink, type Generation } from '../store/baseline-repo.js';
import type { DB } from '../store/db.js';
import { computeGenerationDigest, DigestRowError, type GenerationDigestResult } from '../store/generation-digest.js';
import type { RunContext } from '../util/context.js';
import { TrustError } from '../util/errors.js';
import { noteProblems } from '../store/record-repo.js';

export interface TrustOptions {
  /** public key file: the current generation (and every signed one) must carry a valid signature by it */
  verifyKey?: string;
  /** the current generation's digest must be exactly this (catches rollback to an older, validly signed generation) */
  expectDigest?: string;
  /** what the refusal means for the caller, for the message: "nothing compared" (default), "nothing written" … */
  refusal?: string;
  /**
   * The caller recomputes the current generation's content digest itself, in the same ordered
   * pass it reads the rows with (check), and calls contentProblemOf() before using anything.
   */
  deferContent?: boolean;
}

/** What the gate established, for reports and logs. */
export interface TrustReport {
  /** generations whose links were checked, oldest first */
  chain: number[];
  /** the pruned generation the oldest kept one links to, if any */
  anchor: { id: number; digest: string } | null;
  /** generations whose signature verified with the key (empty without a key) */
  signaturesVerified: number[];
  /** generations older than the first signed one, accepted unsigned (covered by the chain) */
  unsignedBeforeSigning: number[];
  keyId: string | null;
}

type Link = ChainLink;

const short = (d: string | null): string => (d === null ? '-' : d.length > 23 ? `${d.slice(0, 23)}…` : d);

/** Recompute one generation's content digest from its rows; a problem description, or null when it matches. */
export function contentProblem(db: DB, g: Generation): string | null {
  try {
    return contentProblemOf(computeGenerationDigest(db, g), g);
  } catch (e) {
    if (e instanceof DigestRowError) return e.message;
    throw e;
  }
}

/** Compare a recomputed digest with what the generation records; a problem description, or null. */
export function contentProblemOf(d: GenerationDigestResult, g: Generation): string | null {
  const count = d.entryCount !== g.entryCount ? `${d.entryCount} entries stored, ${g.entryCount} recorded` : null;
  if (d.digest !== g.digest)
    return `generation #${g.id}: content does not match its recorded digest (rows edited, added or deleted, or the header changed${count ? `; ${count}` : ''})`;
  if (count) return `generation #${g.id}: ${count}`;
  return null;
}

function prunedAnchors(db: DB): Map<number, string> {
  return new Map(new BaselineRepo(db).prunedAnchors().map((a) => [a.id, a.digest]));
}

/**
 * The hash chain over the stored headers: generations are made one on top of the other
 * (each new one's parent is the newest before it), so in id order every generation must
 * name the one before it as parent and carry that one's stored digest. The oldest kept
 * generation links to nothing (the first ever) or to a pruned anchor. A deleted generation,
 * an edited digest or a re-pointed parent shows here.
 */
export function chainProblems(db: DB): { problems: string[]; chain: Link[]; anchor: { id: number; digest: string } | null } {
  const chain = new BaselineRepo(db).chainLinks();
  const pruned = prunedAnchors(db);
  const ids = new Set(chain.map((l) => l.id));
  const problems: string[] = [];
  let anchor: { id: number; digest: string } | null = null;
  for (const [i, g] of chain.entries()) {
    const prev = i > 0 ? chain[i - 1]! : null;
    if (g.parentId === null) {
      if (prev) problems.push(`generation #${g.id}: has no parent, but generation #${prev.id} comes before it (chain broken)`);
      else if (g.parentDigest !== null) problems.push(`generation #${g.id}: records a parent digest but no parent (chain broken)`);
      continue;
    }
    let parentDigest: string;
    if (prev) {
      if (g.parentId !== prev.id) {
        if (ids.has(g.parentId))
          problems.push(`generation #${g.id}: its parent is #${g.parentId}, but #${prev.id} comes between them (chain forked or re-pointed)`);
        else problems.push(`generation #${g.id}: its parent #${g.parentId} is missing and not recorded as pruned (a generation was deleted; chain broken)`);
        continue;
      }
      parentDigest = prev.digest;
    } else {
      const a = pruned.get(g.parentId);
      if (a === undefined) {
        problems.push(`generation #${g.id}: its parent #${g.parentId} is missing and not recorded as pruned (a generation was deleted; chain broken)`);
        continue;
      }
      anchor = { id: g.parentId, digest: a };
      parentDigest = a;
    }
    if (parentDigest !== g.parentDigest)
      problems.push(
        `generation #${g.id}: records parent digest ${short(g.parentDigest)}, but generation #${g.parentId}${prev ? '' : ' (pruned anchor)'} has ${short(parentDigest)} (chain broken: a digest was edited)`,
      );
  }
  return { problems, chain, anchor };
}

/**
 * Runs before any comparison: a baseline that is not what it claims to be must not be
 * compared against. Checks, all before throwing, so the message names everything wrong:
 * - the current generation's content: its digest is recomputed from its rows (an edited,
 *   added or deleted row, or an edited header field, shows);
 * - the whole chain of stored headers (see chainProblems); older generations' rows are not
 *   re-hashed here (their digests are pinned by the chain; `diff --generation` re-hashes the
 *   generations it reads);
 * - with a key: the current generation must be signed, every signed generation's signature
 *   must verify, and once one generation is signed every later one must be too (a dropped
 *   signature or a generation made without the key shows);
 * - with an expected digest: the current generation must have exactly it (rollback).
 * Any problem: TrustError (exit 16) listing them.
 */
export async function verifyTrust(db: DB, g: Generation, opts: TrustOptions, ctx: RunContext): Promise<TrustReport> {
  // Load the key first: a missing or wrong key fails fast, before any hashing.
  const keys = opts.verifyKey ? await import('../trust/keys.js') : null;
  const pub = keys && opts.verifyKey ? await keys.loadPublicKey(opts.verifyKey) : null;
  const wantKeyId = keys && pub ? keys.keyId(pub) : null;

  const problems: string[] = [];
  const content = opts.deferContent ? null : contentProblem(db, g);
  if (content) problems.push(content);
  const { problems: links, chain, anchor } = chainProblems(db);
  problems.push(...links);
  // The responder's notes are part of the record: their hash chain (and signatures, with a key) too.
  problems.push(...noteProblems(db, keys && pub ? (d, s) => keys.verify(Buffer.from(d, 'utf8'), s, pub) : undefined));
  const newest = chain[chain.length - 1];
  if (!newest || newest.id !== g.id) problems.push(`generation #${g.id} is not the newest generation in the store (#${newest?.id ?? '-'})`);

  if (opts.expectDigest && opts.expectDigest !== g.digest)
    problems.push(`current generation #${g.id} has digest ${g.digest}, expected ${opts.expectDigest} (rollback or replaced store?)`);

  const signaturesVerified: number[] = [];
  const unsignedBeforeSigning: number[] = [];
  if (keys && pub) {
    let seenSigned = false;
    for (const l of chain) {
      const isCurrent = l.id === g.id;
      // The current generation's digest is the recomputed one when content matched; sign over what is stored.
      const digest = isCurrent ? g.digest : l.digest;
      if (!l.signature) {
        if (isCurrent) problems.push(`generation #${l.id} (current) is not signed, but a signature was demanded (--verify-key / trust.public_key)`);
        else if (seenSigned) problems.push(`generation #${l.id} is not signed, though an earlier generation is (signature dropped, or made without the key)`);
        else unsignedBeforeSigning.push(l.id);
        continue;
      }
      seenSigned = true;
      if (keys.verify(Buffer.from(digest, 'utf8'), l.signature, pub)) signaturesVerified.push(l.id);
      else
        problems.push(
          `generation #${l.id}: signature does not verify with ${opts.verifyKey} (key id ${wantKeyId}` +
            `${l.keyId && l.keyId !== wantKeyId ? `; the generation names key id ${l.keyId}` : ''})`,
        );
    }
  }
  if (problems.length) {
    for (const p of problems) ctx.log.debug({ generation: g.id }, p); // the CLI prints and logs the failure once
    throw new TrustError(`baseline not trustworthy, ${opts.refusal ?? 'nothing compared'}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  ctx.log.info({ generation: g.id, chain: chain.length, anchor, signed: signaturesVerified.length }, 'baseline trusted');
  return { chain: chain.map((l) => l.id), anchor, signaturesVerified, unsignedBeforeSigning, keyId: wantKeyId };
}
