import { blake3Hex, createBlake3 } from '../util/blake3.js';
import type { DB } from './db.js';
import type { Generation } from './baseline-repo.js';
import { ENTRY_COLUMNS } from './baseline-repo.js';

const hex = (b: Buffer | null): string => (b === null ? '-' : b.length === 0 ? '""' : b.toString('hex'));

/**
 * The canonical digest of a generation: blake3 over a text header (every header field that
 * matters, including the parent's digest, which chains generations) followed by one line per
 * entry in path byte order. Recomputing it from the rows detects any edited, added or deleted
 * row, and a parent digest that no longer matches detects a broken chain.
 */
export function computeGenerationDigest(db: DB, g: Pick<Generation, 'id' | 'createdAt' | 'kind' | 'user' | 'uid' | 'hostname' | 'note' | 'root' | 'policyDigest' | 'hashAlgos' | 'parentDigest' | 'toolVersion'>): { digest: string; entryCount: number; totalBytes: number; errorCount: number } {
  const h = createBlake3();
  const header = [
    'integ.generation/1',
    `id ${g.id}`,
    `parent ${g.parentDigest ?? '-'}`,
    `created_at ${g.createdAt}`,
    `kind ${g.kind}`,
    `user ${JSON.stringify(g.user)} uid ${g.uid}`,
    `hostname ${JSON.stringify(g.hostname)}`,
    `note ${JSON.stringify(g.note)}`,
    `root ${JSON.stringify(g.root)}`,
    `policy ${g.policyDigest}`,
    `hash ${g.hashAlgos}`,
    `tool ${g.toolVersion}`,
    '',
  ].join('\n');
  h.update(header);
  const st = db.prepare(`SELECT path, rule, error, ${ENTRY_COLUMNS} FROM entries WHERE gen = ? ORDER BY path`).raw(true).safeIntegers(true);
  let entryCount = 0;
  let totalBytes = 0n;
  let errorCount = 0;
  let chunk = '';
  for (const r of st.iterate(g.id) as Iterable<unknown[]>) {
    const [path, rule, error, type, mode, uid, gid, size, mtime, ctime, inode, nlink, target, b3, s256] = r as [Buffer, string, string | null, string, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, Buffer | null, string | null, string | null];
    chunk += `${hex(path)} ${rule} ${type} ${mode} ${uid} ${gid} ${size} ${mtime} ${ctime} ${inode} ${nlink} ${hex(target)} ${b3 ?? '-'} ${s256 ?? '-'} ${error ?? '-'}\n`;
    if (chunk.length > 1 << 16) {
      h.update(chunk);
      chunk = '';
    }
    entryCount++;
    if (type === 'file') totalBytes += size;
    if (error !== null) errorCount++;
  }
  h.update(`${chunk}entries ${entryCount}\n`);
  return { digest: `blake3:${h.digest().toString('hex')}`, entryCount, totalBytes: Number(totalBytes), errorCount };
}

/** Digest of a policy text, stored with each generation. */
export function policyDigest(text: string): string {
  return `blake3:${blake3Hex(text)}`;
}
