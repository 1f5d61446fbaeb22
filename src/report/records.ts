import { pathForTerminal, pathJson } from '../core/pathenc.js';
import type { Attribute, EntryRecord } from '../core/types.js';
import type { RecordJson } from './documents.js';

/** Nanoseconds since the epoch → ISO-8601 UTC with nanoseconds kept. */
export function nsToIso(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString(); // …sss Z
  const frac = ((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
  return `${iso.slice(0, 19)}.${frac.toString().padStart(9, '0')}Z`;
}

const num = (b: bigint): number | string => (b <= BigInt(Number.MAX_SAFE_INTEGER) && b >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b.toString());

/** An entry as JSON: mode as an octal string, times as ISO-8601 UTC (nanoseconds), digests hex. */
export function recordJson(r: EntryRecord): RecordJson {
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

const shortDigest = (r: EntryRecord): string => `${(r.blake3 ?? r.sha256 ?? '-').slice(0, 12)}…`;

/** "mode 644→755, uid 0→1000, …": what changed between two records, for text reports. */
export function describeChanges(before: EntryRecord, after: EntryRecord, attributes: readonly Attribute[]): string {
  const b = before;
  const a = after;
  return attributes
    .map((attr) => {
      switch (attr) {
        case 'mode': return `mode ${b.mode.toString(8)}→${a.mode.toString(8)}`;
        case 'uid': return `uid ${b.uid}→${a.uid}`;
        case 'gid': return `gid ${b.gid}→${a.gid}`;
        case 'size': return `size ${b.size}→${a.size}`;
        case 'type': return `type ${b.type}→${a.type}`;
        case 'target': return `target ${b.target ? pathForTerminal(b.target) : '-'}→${a.target ? pathForTerminal(a.target) : '-'}`;
        case 'mtime': return `mtime ${nsToIso(b.mtimeNs)}→${nsToIso(a.mtimeNs)}`;
        case 'ctime': return `ctime ${nsToIso(b.ctimeNs)}→${nsToIso(a.ctimeNs)}`;
        case 'content': return `content ${shortDigest(b)}→${shortDigest(a)}`;
        case 'inode': return `inode ${b.inode}→${a.inode}`;
        case 'nlink': return `nlink ${b.nlink}→${a.nlink}`;
        default: return attr;
      }
    })
    .join(', ');
}
