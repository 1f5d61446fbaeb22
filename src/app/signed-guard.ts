import fs from 'node:fs';
import Database from 'better-sqlite3';
import { UsageError } from '../util/errors.js';

/**
 * Once a generation is signed, a new generation without a key would break the signed chain:
 * every later `check --verify-key` fails with 16. Refuse (64, nothing written) unless the
 * operator says --allow-unsigned. The key may come from the configuration (sign_key).
 */
export function refuseUnsignedAfterSigned(o: { db: string; signKey?: string; allowUnsigned: boolean; command: 'baseline' | 'accept' }): void {
  if (o.signKey || o.allowUnsigned || o.db === ':memory:' || !fs.existsSync(o.db)) return;
  let signed: { id: number; key_id: string | null } | undefined;
  try {
    const db = new Database(o.db, { readonly: true, fileMustExist: true });
    try {
      signed = db.prepare('SELECT id, key_id FROM generations WHERE signature IS NOT NULL ORDER BY id DESC LIMIT 1').get() as typeof signed;
    } finally {
      db.close();
    }
  } catch {
    return; // not a store, or unreadable: the command itself reports that with the right code
  }
  if (!signed) return;
  throw new UsageError(
    `generation #${signed.id} of ${o.db} is signed${signed.key_id ? ` (key id ${signed.key_id})` : ''}: an unsigned ${o.command} would break the signed chain ` +
      'and every later "check --verify-key" would fail. Give --sign-key FILE (or sign_key: in the configuration), ' +
      'or --allow-unsigned to knowingly record an unsigned generation. Nothing was written.',
  );
}
