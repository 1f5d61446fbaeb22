import type { Policy } from '../core/types.js';
import type { DB } from './db.js';
import { policyDigest } from './generation-digest.js';

/**
 * The policy texts check runs used, by digest (migration 5): `accept` re-reads paths with
 * exactly the policy the last check used, without a second --policy.
 */
export function recordPolicy(db: DB, policy: Pick<Policy, 'source' | 'text'>): void {
  db.prepare('INSERT OR IGNORE INTO policies (digest, source, text) VALUES (?, ?, ?)').run(policyDigest(policy.text), policy.source, policy.text);
}

export function policyByDigest(db: DB, digest: string): { source: string; text: string } | null {
  try {
    return (db.prepare('SELECT source, text FROM policies WHERE digest = ?').get(digest) as { source: string; text: string } | undefined) ?? null;
  } catch {
    return null; // a store older than migration 5 opened without migrating
  }
}
