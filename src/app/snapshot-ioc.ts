import path from 'node:path';
import type { IocMatcher } from '../evidence/findings.js';

/**
 * The known-bad feeds of `snapshot --ioc`, as the matcher the findings derivation calls for
 * every running executable it hashed (sha256, the digest the executables step records).
 * A malformed feed line is exit 65 naming file:line, exactly as for check and baseline.
 */
export async function snapshotIocMatcher(files: readonly string[]): Promise<IocMatcher> {
  const { loadIocFeeds } = await import('../core/ioc.js');
  const set = await loadIocFeeds([...new Set(files.map((f) => path.resolve(f)))]);
  return ({ sha256 }) => {
    const hit = set.match({ sha256 });
    return hit ? { label: hit.label ?? `${hit.algorithm} ${hit.digest}`, source: hit.source } : undefined;
  };
}
