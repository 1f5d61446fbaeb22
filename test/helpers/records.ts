import fs from 'node:fs';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import type { Observed } from '../../src/core/types.js';

/**
 * What a scan would record of `real` (from its lstat), under the policy path `as`: a placeholder
 * BLAKE3 for a regular file, no other digest; `over` replaces any field.
 */
export function recordOf(real: string, as: string = real, over: Partial<Observed> = {}): Observed {
  const st = fs.lstatSync(real, { bigint: true });
  return {
    path: Buffer.from(as),
    type: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'unknown',
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: st.size,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    inode: st.ino,
    nlink: Number(st.nlink),
    target: st.isSymbolicLink() ? fs.readlinkSync(real, { encoding: 'buffer' }) : null,
    blake3: st.isFile() ? 'ab'.repeat(32) : null,
    sha256: null,
    ...over,
  };
}

/** A pino logger at `level` whose JSON lines are kept in `lines`. */
export function capturedLog(level: pino.Level): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log = pino(
    { level },
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );
  return { log, lines };
}

/** A generation header for store tests (fixed values; `parent` chains it). */
export function generationHeader(parent: { id: number; digest: string } | null) {
  return {
    createdAt: '2026-11-21T23:00:00.000Z',
    kind: 'baseline' as const,
    user: 'root',
    uid: 0,
    hostname: 'web1',
    note: 'n',
    root: '/',
    policySource: 'p.yml',
    policyText: 'version: 1',
    policyDigest: 'blake3:p',
    hashAlgos: 'blake3',
    parentId: parent?.id ?? null,
    parentDigest: parent?.digest ?? null,
    toolVersion: '0.1.0',
  };
}
