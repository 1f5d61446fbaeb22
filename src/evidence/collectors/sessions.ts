/**
 * Step 3, sessions: who is logged in (utmp, logind) and who logged in lately (wtmp read
 * from its end, wtmpdb). Artifacts: sessions, logins.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { ArtifactOutput, CollectContext, CollectError } from '../types.js';
import { bundleSafePath, decodeLossless, errCode, expired, fileType, readRegular, timeoutError, toError, under } from './fsread.js';
import { formatIPv6 } from './net.js';

/** sizeof(struct utmp) for glibc on x86_64 (and arm64): 384 bytes. */
export const UTMP_RECORD_SIZE = 384;

export const UT_TYPES: Record<number, string> = {
  0: 'EMPTY',
  1: 'RUN_LVL',
  2: 'BOOT_TIME',
  3: 'NEW_TIME',
  4: 'OLD_TIME',
  5: 'INIT_PROCESS',
  6: 'LOGIN_PROCESS',
  7: 'USER_PROCESS',
  8: 'DEAD_PROCESS',
  9: 'ACCOUNTING',
};

export interface UtmpRecord {
  /** index of the record in the file (0-based) */
  index: number;
  type: string;
  type_code: number;
  pid: number;
  line: string;
  id: string;
  user: string;
  host: string;
  exit: { termination: number; exit: number };
  session: number;
  time: string | null;
  tv_sec: number;
  tv_usec: number;
  addr: string | null;
}

/** A char[] field: up to the first NUL, or the whole field when it has none (not NUL-terminated). */
function cstr(buf: Buffer, off: number, len: number): string {
  const field = buf.subarray(off, off + len);
  const nul = field.indexOf(0);
  return decodeLossless(nul < 0 ? field : field.subarray(0, nul));
}

/** ut_addr_v6: network-order bytes; an IPv4 address uses only the first word. */
function utAddr(buf: Buffer, off: number): string | null {
  const b = buf.subarray(off, off + 16);
  if (b.every((x) => x === 0)) return null;
  if (b.subarray(4).every((x) => x === 0)) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  return formatIPv6(b);
}

/** Decode one 384-byte record starting at off (glibc x86_64 layout). */
export function parseUtmpRecord(buf: Buffer, off: number, index: number): UtmpRecord {
  const typeCode = buf.readInt32LE(off);
  // glibc keeps tv_sec as int32 for compatibility; read unsigned so 2038+ stays positive.
  const sec = buf.readUInt32LE(off + 340);
  const usec = buf.readInt32LE(off + 344);
  return {
    index,
    type: UT_TYPES[typeCode] ?? `TYPE_${typeCode}`,
    type_code: typeCode,
    pid: buf.readInt32LE(off + 4),
    line: cstr(buf, off + 8, 32),
    id: cstr(buf, off + 40, 4),
    user: cstr(buf, off + 44, 32),
    host: cstr(buf, off + 76, 256),
    exit: { termination: buf.readInt16LE(off + 332), exit: buf.readInt16LE(off + 334) },
    session: buf.readInt32LE(off + 336),
    time: sec === 0 ? null : new Date(sec * 1000 + Math.floor(usec / 1000)).toISOString(),
    tv_sec: sec,
    tv_usec: usec,
    addr: utAddr(buf, off + 348),
  };
}

/** Every whole record of a utmp/wtmp image; a trailing partial record is reported, not parsed. */
export function parseUtmp(buf: Buffer, firstIndex = 0): { records: UtmpRecord[]; trailing_bytes: number } {
  const n = Math.floor(buf.length / UTMP_RECORD_SIZE);
  const records: UtmpRecord[] = [];
  for (let i = 0; i < n; i++) records.push(parseUtmpRecord(buf, i * UTMP_RECORD_SIZE, firstIndex + i));
  return { records, trailing_bytes: buf.length - n * UTMP_RECORD_SIZE };
}

export interface LogindSession {
  id: string;
  user: string | null;
  uid: number | null;
  tty: string | null;
  remote_host: string | null;
  remote_user: string | null;
  service: string | null;
  type: string | null;
  class: string | null;
  state: string | null;
  active: boolean | null;
  remote: boolean | null;
  leader: number | null;
  scope: string | null;
  started_at: string | null;
  /** every key=value of the file */
  fields: Record<string, string>;
}

/** A file under /run/systemd/sessions: "KEY=value" lines, "#" comments. */
export function parseLogindSession(id: string, text: string): LogindSession {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.indexOf('=');
    if (i <= 0) continue;
    fields[line.slice(0, i)] = line.slice(i + 1);
  }
  const num = (k: string): number | null => (fields[k] !== undefined && /^\d+$/.test(fields[k]!) ? Number(fields[k]) : null);
  const bool = (k: string): boolean | null => (fields[k] === undefined ? null : fields[k] === '1' || fields[k] === 'yes');
  const realtime = num('REALTIME');
  return {
    id,
    user: fields['USER'] ?? null,
    uid: num('UID'),
    tty: fields['TTY'] ?? null,
    remote_host: fields['REMOTE_HOST'] ?? null,
    remote_user: fields['REMOTE_USER'] ?? null,
    service: fields['SERVICE'] ?? null,
    type: fields['TYPE'] ?? null,
    class: fields['CLASS'] ?? null,
    state: fields['STATE'] ?? null,
    active: bool('ACTIVE'),
    remote: bool('REMOTE'),
    leader: num('LEADER'),
    scope: fields['SCOPE'] ?? null,
    // REALTIME is in microseconds since the epoch.
    started_at: realtime === null ? null : new Date(Math.floor(realtime / 1000)).toISOString(),
    fields,
  };
}

export interface LoginEntry {
  user: string;
  line: string;
  host: string;
  addr: string | null;
  pid: number;
  login_at: string | null;
  /** the next DEAD_PROCESS on the same line, as last(1) pairs them; null when still open or unknown */
  logout_at: string | null;
  /** the record index in the file */
  index: number;
}

export interface WtmpTail {
  logins: LoginEntry[];
  /** byte offset of the first byte read (the file is read from its end) */
  read_from: number;
  file_size: number;
  bytes_read: number;
  reached_start: boolean;
  boots: Array<{ time: string | null; kernel: string }>;
  trailing_bytes: number;
  data: Buffer;
}

/**
 * The last `want` USER_PROCESS records of a wtmp file, read backwards in chunks up to
 * maxBytes, each paired with its logout (the closest later DEAD_PROCESS on that line).
 */
export function readWtmpTail(file: string, want: number, maxBytes: number, stopAt: number): WtmpTail {
  const st = fs.lstatSync(file);
  if (!st.isFile()) throw Object.assign(new Error(`not a regular file (${fileType(st)})`), { code: 'ENOTREG' });
  const size = st.size;
  const whole = Math.floor(size / UTMP_RECORD_SIZE) * UTMP_RECORD_SIZE;
  const chunkRecords = 1024;
  let end = whole;
  const logins: LoginEntry[] = [];
  const boots: WtmpTail['boots'] = [];
  const logoutByLine = new Map<string, string | null>();
  const chunks: Buffer[] = [];
  let bytes = 0;
  while (end > 0 && logins.length < want && bytes < maxBytes && Date.now() < stopAt) {
    const budget = Math.floor((maxBytes - bytes) / UTMP_RECORD_SIZE) * UTMP_RECORD_SIZE;
    if (budget <= 0) break;
    const start = end - Math.min(end, chunkRecords * UTMP_RECORD_SIZE, budget);
    const { data } = readRegular(file, end - start, start);
    if (data.length < end - start) break;
    chunks.unshift(data);
    bytes += data.length;
    const firstIndex = start / UTMP_RECORD_SIZE;
    for (let i = data.length / UTMP_RECORD_SIZE - 1; i >= 0 && logins.length < want; i--) {
      const r = parseUtmpRecord(data, i * UTMP_RECORD_SIZE, firstIndex + i);
      if (r.type_code === 8 && r.line) logoutByLine.set(r.line, r.time);
      else if (r.type_code === 2) boots.push({ time: r.time, kernel: r.host });
      else if (r.type_code === 7) {
        logins.push({
          user: r.user,
          line: r.line,
          host: r.host,
          addr: r.addr,
          pid: r.pid,
          login_at: r.time,
          logout_at: logoutByLine.get(r.line) ?? null,
          index: r.index,
        });
        logoutByLine.delete(r.line);
      }
    }
    end = start;
  }
  return {
    logins,
    read_from: end,
    file_size: size,
    bytes_read: bytes,
    reached_start: end === 0,
    boots,
    trailing_bytes: size - whole,
    data: Buffer.concat(chunks),
  };
}

interface WtmpdbRow {
  [k: string]: unknown;
}

/** The last `want` rows of a wtmpdb database (table wtmp; Login/Logout in µs since the epoch). */
export function readWtmpdb(file: string, want: number): Array<Record<string, unknown>> {
  const require = createRequire(import.meta.url);
  const Database = require('better-sqlite3') as typeof import('better-sqlite3');
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    db.pragma('query_only = ON');
    const rows = db.prepare('SELECT * FROM wtmp ORDER BY Login DESC LIMIT ?').all(want) as WtmpdbRow[];
    const us = (v: unknown): string | null =>
      typeof v === 'number' || typeof v === 'bigint' ? (Number(v) > 0 ? new Date(Math.floor(Number(v) / 1000)).toISOString() : null) : null;
    return rows.map((r) => ({
      id: r['ID'] ?? null,
      type: r['Type'] ?? null,
      user: r['User'] ?? null,
      line: r['TTY'] ?? null,
      host: r['RemoteHost'] ?? null,
      service: r['Service'] ?? null,
      login_at: us(r['Login']),
      logout_at: us(r['Logout']),
    }));
  } finally {
    db.close();
  }
}

export interface SessionsOptions {
  /** how many recent logins to report (default 50) */
  logins?: number;
  /** bytes of wtmp read from its end at most (default 8 MiB) */
  wtmpMaxBytes?: number;
}

const UTMP_MAX = 4 << 20;

export async function collectSessions(ctx: CollectContext, opts: SessionsOptions = {}): Promise<ArtifactOutput> {
  const errors: CollectError[] = [];
  const raw: ArtifactOutput['raw'] = [];
  const want = opts.logins ?? 50;
  const R = ctx.fsRoot;
  const sessionNotes: string[] = [];
  const loginNotes: string[] = [];

  // utmp: /var/run/utmp, which is /run/utmp through a symlink on most systems; lstat refuses
  // the symlink, so try the real place next.
  let utmp: { path: string; records: UtmpRecord[]; trailing_bytes: number; truncated: boolean } | null = null;
  for (const rel of ['var/run/utmp', 'run/utmp']) {
    const p = under(R, rel);
    try {
      const r = readRegular(p, UTMP_MAX);
      const parsed = parseUtmp(r.data);
      utmp = { path: `/${rel}`, records: parsed.records.filter((x) => x.type_code !== 0), trailing_bytes: parsed.trailing_bytes, truncated: r.truncated };
      raw.push({ file: rel, data: r.data });
      break;
    } catch (err) {
      const c = errCode(err);
      if (c === 'ENOENT' || c === 'ENOTREG') continue;
      errors.push(toError(err, p, 'sessions'));
    }
  }
  if (!utmp) sessionNotes.push('no utmp found (/var/run/utmp, /run/utmp): systems without utmp rely on logind and wtmpdb');

  // logind: regular files only (the *.ref entries beside them are FIFOs).
  const logind: LogindSession[] = [];
  const sessDir = under(R, 'run/systemd/sessions');
  let names: string[] = [];
  try {
    names = fs.readdirSync(sessDir).sort();
  } catch (err) {
    if (errCode(err) !== 'ENOENT') errors.push(toError(err, sessDir, 'sessions'));
  }
  for (const name of names) {
    if (expired(ctx)) {
      errors.push(timeoutError('logind sessions', 'sessions'));
      break;
    }
    if (name.includes('.')) continue;
    try {
      const r = readRegular(`${sessDir}/${name}`, 64 << 10);
      raw.push({ file: bundleSafePath(`run/systemd/sessions/${name}`), data: r.data });
      logind.push(parseLogindSession(name, r.data.toString('utf8')));
    } catch (err) {
      if (errCode(err) !== 'ENOTREG' && errCode(err) !== 'ENOENT') errors.push(toError(err, `${sessDir}/${name}`, 'sessions'));
    }
  }

  // wtmp, from its end.
  let wtmp: Omit<WtmpTail, 'data'> & { path: string } = {
    path: '/var/log/wtmp',
    logins: [],
    read_from: 0,
    file_size: 0,
    bytes_read: 0,
    reached_start: true,
    boots: [],
    trailing_bytes: 0,
  };
  let wtmpFound = false;
  try {
    const t = readWtmpTail(under(R, 'var/log/wtmp'), want, opts.wtmpMaxBytes ?? 8 << 20, ctx.deadline);
    const { data, ...rest } = t;
    wtmp = { path: '/var/log/wtmp', ...rest };
    wtmpFound = true;
    raw.push({ file: 'var/log/wtmp.tail', data });
    if (t.logins.length < want && !t.reached_start) {
      if (expired(ctx)) errors.push(timeoutError('wtmp read stopped early', 'logins'));
      else loginNotes.push(`wtmp: read the last ${t.bytes_read} of ${t.file_size} bytes (bound)`);
    }
  } catch (err) {
    if (errCode(err) !== 'ENOENT') errors.push(toError(err, under(R, 'var/log/wtmp'), 'logins'));
  }

  let wtmpdb: Array<Record<string, unknown>> | null = null;
  const dbPath = under(R, 'var/lib/wtmpdb/wtmp.db');
  try {
    const st = fs.lstatSync(dbPath);
    if (!st.isFile()) throw Object.assign(new Error(`not a regular file (${fileType(st)})`), { code: 'ENOTREG' });
    wtmpdb = readWtmpdb(dbPath, want);
    loginNotes.push('wtmpdb: rows read through SQLite (read-only); the database file is not copied');
  } catch (err) {
    if (errCode(err) !== 'ENOENT') errors.push(toError(err, dbPath, 'logins'));
  }
  if (!wtmpFound && wtmpdb === null) loginNotes.push('neither /var/log/wtmp nor /var/lib/wtmpdb/wtmp.db found');

  const current = (utmp?.records ?? [])
    .filter((r) => r.type_code === 7)
    .map((r) => ({ user: r.user, line: r.line, host: r.host, addr: r.addr, pid: r.pid, login_at: r.time }));
  return {
    json: [
      {
        name: 'sessions',
        data: { current, utmp, logind, notes: sessionNotes },
        method: 'parse /var/run/utmp (384-byte glibc records); read /run/systemd/sessions/* (regular files, key=value)',
      },
      {
        name: 'logins',
        data: { limit: want, wtmp, wtmpdb, notes: loginNotes },
        method: 'read /var/log/wtmp backwards from its end (bounded); SELECT from /var/lib/wtmpdb/wtmp.db opened read-only',
      },
    ],
    raw,
    errors,
  };
}
