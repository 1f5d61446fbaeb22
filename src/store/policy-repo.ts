import type { Policy } from '../core/types.js';
import { openReadOnly, type DB } from './db.js';
import { NoInputError } from '../util/errors.js';
import { policyDigest } from './generation-digest.js';

/**
 * The policy texts check runs used, by digest (migration 5): `accept` re-reads paths with
 * exactly the policy the last check used, without a second --policy.
 */
export function recordPolicy(db: DB, policy: Pick<Policy, 'source' | 'text'>): void {
  db.prepare('INSERT OR IGNORE INTO policies (digest, source, text) VALUES (?, ?, ?)').run(policyDigest(policy.text), policy.source, policy.text);
}

/** The policy text and source a generation was taken with. */
export function generationPolicy(db: DB, gen: number): { text: string; source: string } | null {
  const r = db.prepare('SELECT policy_text, policy_source FROM generations WHERE id = ?').get(gen) as
    | { policy_text: string; policy_source: string }
    | undefined;
  return r ? { text: r.policy_text, source: r.policy_source } : null;
}

/**
 * The newest signed generation of a store file, or null (absent or empty: nothing signed yet).
 * Goes through the same guarded open as every other reader, so a foreign or tampered file is
 * refused (16) here exactly as the command itself would refuse it, and left byte-identical.
 * Only baseline and accept ask, and they write to the store next anyway.
 */
export function latestSignedGeneration(file: string): { id: number; keyId: string | null } | null {
  let db: DB;
  try {
    db = openReadOnly(file);
  } catch (e) {
    if (e instanceof NoInputError) return null; // absent or empty: nothing signed yet
    throw e;
  }
  try {
    const r = db.prepare('SELECT id, key_id FROM generations WHERE signature IS NOT NULL ORDER BY id DESC LIMIT 1').get() as
      | { id: number; key_id: string | null }
      | undefined;
    return r ? { id: r.id, keyId: r.key_id } : null;
  } finally {
    db.close();
  }
}

export function policyByDigest(db: DB, digest: string): { source: string; text: string } | null {
  try {
    return (db.prepare('SELECT source, text FROM policies WHERE digest = ?').get(digest) as { source: string; text: string } | undefined) ?? null;
  } catch {
    return null; // a store older than migration 5 opened without migrating
  }
}
