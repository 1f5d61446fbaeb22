import fs from 'node:fs';
import { latestSignedGeneration } from '../store/policy-repo.js';
import { UsageError } from '../util/errors.js';

/**
 * Once a generation is signed, a new generation without a key would break the signed chain:
 * every later `check --verify-key` fails with 16. Refuse (64, nothing written) unless the
 * operator says --allow-unsigned. The key may come from the configuration (sign_key).
 */
export function refuseUnsignedAfterSigned(o: { db: string; signKey?: string; allowUnsigned: boolean; command: 'baseline' | 'accept' }): void {
  if (o.signKey || o.allowUnsigned || o.db === ':memory:' || !fs.existsSync(o.db)) return;
  const signed = latestSignedGeneration(o.db);
  if (!signed) return;
  throw new UsageError(
    `generation #${signed.id} of ${o.db} is signed${signed.keyId ? ` (key id ${signed.keyId})` : ''}: an unsigned ${o.command} would break the signed chain ` +
      'and every later "check --verify-key" would fail. Give --sign-key FILE (or sign_key: in the configuration), ' +
      'or --allow-unsigned to knowingly record an unsigned generation. Nothing was written.',
  );
}
