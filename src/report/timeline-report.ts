import type { Timeline, TimelineEvent } from '../app/timeline.js';
import { VERSION } from '../version.js';

/** Extra CSV columns after Timesketch's three required ones. */
export const CSV_COLUMNS = [
  'message',
  'datetime',
  'timestamp_desc',
  'timestamp',
  'source',
  'host',
  'user',
  'path',
  'generation',
  'run',
  'severity',
  'sha256',
  'digest',
] as const;

const micro = (ns: bigint): string => (ns / 1000n).toString();

function fieldsJson(e: TimelineEvent): Record<string, unknown> {
  return {
    datetime: e.datetime,
    timestamp: Number(e.ns / 1000n),
    timestamp_desc: e.timestamp_desc,
    source: e.source,
    message: e.message,
    host: e.host,
    user: e.user,
    path: e.path,
    generation: e.generation,
    run: e.run,
    severity: e.severity,
    sha256: e.sha256,
    digest: e.digest,
  };
}

export function timelineJson(t: Timeline): Record<string, unknown> {
  return {
    schema: 'integ.timeline/1',
    tool: { name: 'integ', version: VERSION },
    since: t.since,
    until: t.until,
    notes_head: t.notesHead,
    events: t.events.map(fieldsJson),
  };
}

/** Control characters would let a file name forge lines: show them escaped. */
const safe = (s: string): string => s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

export function timelineText(t: Timeline): string {
  const lines = t.events.map((e) => `${e.datetime.padEnd(30)} ${e.timestamp_desc.padEnd(34)} ${safe(e.message)}`);
  lines.push(
    `${t.events.length} event(s)${t.since ? ` since ${t.since}` : ''}${t.until ? ` until ${t.until}` : ''}${t.notesHead ? `; notes head ${t.notesHead}` : ''}`,
  );
  return `${lines.join('\n')}\n`;
}

/** RFC 4180: quote every field that needs it. */
function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Timesketch CSV: message, datetime, timestamp_desc, then timestamp (µs) and integ's fields. */
export function timelineCsv(t: Timeline): string {
  const out = [CSV_COLUMNS.join(',')];
  for (const e of t.events) {
    const f = fieldsJson(e);
    out.push(CSV_COLUMNS.map((c) => csvField(c === 'timestamp' ? micro(e.ns) : f[c])).join(','));
  }
  return `${out.join('\r\n')}\r\n`;
}

const TYPE_CHAR: Record<string, string> = { file: 'r', dir: 'd', symlink: 'l', fifo: 'p', socket: 's', chardev: 'c', blockdev: 'b' };

/** "r/rrw-r--r--" as the Sleuth Kit writes modes in a body file. */
export function modeString(type: string, mode: number): string {
  const t = TYPE_CHAR[type] ?? '-';
  const rwx = (bits: number, special: boolean, ch: string): string =>
    `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-'}`;
  return `${t}/${t}${rwx(mode >> 6, Boolean(mode & 0o4000), 's')}${rwx(mode >> 3, Boolean(mode & 0o2000), 's')}${rwx(mode, Boolean(mode & 0o1000), 't')}`;
}

/** A name field may not contain "|" (the separator) or a newline. */
const bodyName = (s: string): string => safe(s).replace(/\|/g, '\\x7c');
const secs = (ns: bigint): string => (ns >= 0n ? ns / 1_000_000_000n : -((-ns + 999_999_999n) / 1_000_000_000n)).toString();

/**
 * The Sleuth Kit body file (3.x): MD5|name|inode|mode_as_string|UID|GID|size|atime|mtime|ctime|crtime,
 * for `mactime -b FILE`. A changed file seen by a check is one line with its mtime and ctime (atime
 * and crtime unknown: 0). Every other event is one line named "[integ] <what>: <message>" with its
 * time in all four columns, so mactime lists it once as "macb".
 */
export function timelineBodyfile(t: Timeline): string {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const e of t.events) {
    if (e.source === 'file' && e.file) {
      const key = `${e.path} ${e.file.mtimeNs} ${e.file.ctimeNs}`;
      if (seen.has(key)) continue; // mtime and ctime events of one observation: one line
      seen.add(key);
      const f = e.file;
      out.push(
        [
          '0',
          bodyName(e.path ?? ''),
          BigInt.asUintN(64, f.inode).toString(),
          modeString(f.type, f.mode),
          f.uid,
          f.gid,
          f.size.toString(),
          '0',
          secs(f.mtimeNs),
          secs(f.ctimeNs),
          '0',
        ].join('|'),
      );
      continue;
    }
    const s = secs(e.ns);
    out.push(['0', bodyName(`[integ] ${e.timestamp_desc}: ${e.message}`), '0', '0', '0', '0', '0', s, s, s, s].join('|'));
  }
  return out.length ? `${out.join('\n')}\n` : '';
}
