import { pathJson } from '../core/pathenc.js';
import type { EntryRecord } from '../core/types.js';

/** Nanoseconds since the epoch → ISO-8601 UTC with nanoseconds kept. */
export function nsToIso(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString(); // …sss Z
  const frac = ((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
  return `${iso.slice(0, 19)}.${frac.toString().padStart(9, '0')}Z`;
}

const num = (b: bigint): number | string => (b <= BigInt(Number.MAX_SAFE_INTEGER) && b >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b.toString());

/** An entry as JSON: mode as an octal string, times as ISO-8601 UTC (nanoseconds), digests hex. */
export function recordJson(r: EntryRecord): Record<string, unknown> {
  return {
    type: r.type,
    mode: r.mode.toString(8).padStart(4, '0'),
    uid: r.uid,
    gid: r.gid,
    size: num(r.size),
    mtime: nsToIso(r.mtimeNs),
    ctime: nsToIso(r.ctimeNs),
    inode: num(r.inode),
    nlink: r.nlink,
    ...(r.target ? pathJson(r.target, 'target') : { target: null }),
    blake3: r.blake3,
    sha256: r.sha256,
  };
}
