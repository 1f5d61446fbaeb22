import { pathToText } from '../core/pathenc.js';
import { blake3Hex, createBlake3 } from '../scan/blake3.js';
import type { DB } from './db.js';
import type { Generation } from './baseline-repo.js';
import { ENTRY_COLUMNS, entryColumnsFor, type EntryValues } from './rows.js';

/**
 * A row the digest cannot vouch for: its error field is not an errno-style code (all integ ever
 * writes there). In the digest line the error is one token followed by the optional xattrs and
 * flags part; a free-text error could carry that part itself (with xattrs and flags emptied) and
 * the line, hence the digest, would not change while the comparison of both would be turned off.
 */
export class DigestRowError extends Error {
  override name = 'DigestRowError';
}
const ERROR_CODE = /^[A-Z0-9_]+$/;

/** Bytes of digest lines staged before they are hashed. */
const STAGE = 1 << 16;

const hex = (b: Buffer | null): string => (b === null ? '-' : b.length === 0 ? '""' : b.toString('hex'));

type Header = Pick<
  Generation,
  'id' | 'createdAt' | 'kind' | 'user' | 'uid' | 'hostname' | 'note' | 'root' | 'policyDigest' | 'hashAlgos' | 'parentDigest' | 'toolVersion'
>;

/** The row shape the digest reads: DIGEST_COLUMNS, raw, with safe integers. */
export const DIGEST_COLUMNS = `path, rule, error, ${ENTRY_COLUMNS}`;
/** DIGEST_COLUMNS as this store answers them (NULL xattrs/flags on an unmigrated read-only store). */
export function digestColumns(db: DB): string {
  return `path, rule, error, ${entryColumnsFor(db.prepare<[], string>("SELECT name FROM pragma_table_info('entries')").pluck(true).all())}`;
}
export type DigestRow = [path: Buffer, rule: string, error: string | null, ...entry: EntryValues];

export interface GenerationDigestResult {
  digest: string;
  entryCount: number;
  totalBytes: number;
  errorCount: number;
}

/**
 * The canonical digest of a generation: blake3 over a text header (every header field that
 * matters, including the parent's digest, which chains generations) followed by one line per
 * entry in path byte order. Recomputing it from the rows detects any edited, added or deleted
 * row, and a parent digest that no longer matches detects a broken chain.
 * Incremental, so `check` can compute it from the same ordered pass it compares with.
 */
export class GenerationDigester {
  private readonly h = createBlake3();
  private readonly genId: number | undefined;
  /**
   * Lines written by addAt, as UTF-8, until the stage is full. Each line is encoded while it is
   * new: a line made by a template literal is a tree of string pieces, and a text concatenated
   * from thousands of them cost a walk over every piece when it was finally hashed (~0.1 s of a
   * baseline's main thread on /usr, most of it cache misses).
   */
  private readonly stage = Buffer.allocUnsafe(STAGE);
  private staged = 0;
  private entryCount = 0;
  private totalBytes = 0n;
  private errorCount = 0;
  private last: Buffer | null = null;

  /**
   * With `db`, finish() also covers the generation's kept-content rows (path → content digest),
   * so a kept row that is edited, added or deleted changes the digest. A generation without kept
   * content digests exactly as before kept content existed.
   */
  constructor(
    g: Header,
    private readonly db?: DB,
  ) {
    this.h.update(
      [
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
      ].join('\n'),
    );
    this.genId = g.id;
  }

  /**
   * Add `n` rows already formatted as digest lines by SQLite (LINE_SQL, byte for byte what
   * addAt() writes for such rows), in path order after every row added so far. `bytes` is the
   * size sum of their files, `errors` how many have an error.
   */
  addLines(lines: string, n: number, bytes: number, errors: number, first: Buffer, last: Buffer): void {
    if (this.last !== null && Buffer.compare(this.last, first) >= 0) throw new Error('generation digest: rows out of path order');
    this.last = last;
    this.flush();
    this.h.update(lines);
    this.entryCount += n;
    this.totalBytes += BigInt(bytes);
    this.errorCount += errors;
  }

  /** Add the next row; rows must come in path byte order (ORDER BY path). */
  add(r: DigestRow): void {
    this.addAt(r, 0);
  }

  /** add() of the DigestRow that starts at index `o` of `r`, without copying it. */
  addAt(r: readonly unknown[], o: number): void {
    const v = r as unknown as Record<number, unknown>;
    const path = v[o] as DigestRow[0];
    const rule = v[o + 1] as DigestRow[1];
    const error = v[o + 2] as DigestRow[2];
    const type = v[o + 3] as DigestRow[3];
    const [mode, uid, gid, size, mtime, ctime, inode, nlink] = [v[o + 4], v[o + 5], v[o + 6], v[o + 7] as bigint, v[o + 8], v[o + 9], v[o + 10], v[o + 11]];
    const target = v[o + 12] as DigestRow[12];
    const b3 = v[o + 13] as DigestRow[13];
    const s256 = v[o + 14] as DigestRow[14];
    const xattrs = v[o + 15] as DigestRow[15];
    const flags = v[o + 16] as DigestRow[16];
    if (this.last !== null && Buffer.compare(this.last, path) >= 0) throw new Error('generation digest: rows out of path order');
    if (error !== null && !(typeof error === 'string' && ERROR_CODE.test(error)))
      throw new DigestRowError(
        `generation #${this.genId}: the row of ${pathToText(path)} has an error field integ never writes (${JSON.stringify(error)}): the store was edited`,
      );
    this.last = path;
    // Extended attributes and flags (migration 3) are appended only when recorded, so rows
    // of older generations hash exactly as they did; nulling them out of a newer row shows.
    const fsattrs = (xattrs ?? null) === null && (flags ?? null) === null ? '' : ` x ${xattrs == null ? '-' : JSON.stringify(xattrs)} f ${flags ?? '-'}`;
    this.put(
      `${hex(path)} ${rule} ${type} ${mode} ${uid} ${gid} ${size} ${mtime} ${ctime} ${inode} ${nlink} ${hex(target)} ${b3 ?? '-'} ${s256 ?? '-'} ${error ?? '-'}${fsattrs}\n`,
    );
    this.entryCount++;
    if (type === 'file') this.totalBytes += size;
    if (error !== null) this.errorCount++;
  }

  /** The line's UTF-8 into the stage (the stage hashed first when the line might not fit). */
  private put(line: string): void {
    // at most 3 bytes per UTF-16 unit (a surrogate pair is 2 units for 4 bytes; a lone one, U+FFFD, 3)
    if (this.staged + 3 * line.length > STAGE) {
      this.flush();
      if (3 * line.length > STAGE) {
        this.h.update(line); // the same bytes, encoded by the hasher
        return;
      }
    }
    this.staged += this.stage.write(line, this.staged, 'utf8');
  }

  private flush(): void {
    if (this.staged === 0) return;
    this.h.update(this.stage.subarray(0, this.staged));
    this.staged = 0;
  }

  finish(): GenerationDigestResult {
    this.flush();
    this.h.update(`entries ${this.entryCount}\n`);
    if (this.db && this.genId !== undefined) {
      let kept = '';
      let n = 0;
      for (const [path, digest] of keptRows(this.db, this.genId)) {
        kept += `kept ${hex(path)} ${digest}\n`;
        n++;
      }
      if (n) this.h.update(`${kept}kept ${n}\n`);
    }
    return {
      digest: `blake3:${this.h.digest().toString('hex')}`,
      entryCount: this.entryCount,
      totalBytes: Number(this.totalBytes),
      errorCount: this.errorCount,
    };
  }
}

/**
 * One statement that reads up to :lim rows of generation :gen in path order (after :after, with
 * `after`) and returns them as a batch: the digest lines (as text: byte for byte what addAt() writes), the
 * compare texts (core/entry-cmp.ts, cmpText), newline-separated, and the paths, NUL-separated.
 * check's reader then hands over a batch as three blobs, and JavaScript touches no per-row
 * value. The aggregate sees the rows in the subquery's order; the reader checks that the paths
 * came strictly increasing (so lines and texts are in path order too).
 *
 * `okn` counts the rows of the shape every store integ writes has, for which the SQL text equals
 * the JavaScript text (property-tested): BLOB path without NUL bytes, known type, integer
 * numbers, digests without a space or newline, xattrs of printable ASCII without a backslash (so the JSON
 * string is the text in quotes with quotes escaped), flags a 32-bit integer. A batch with any
 * other row is read again row by row and formatted in JavaScript.
 *
 * `fsattrs`: whether the table has the xattrs and flags columns (migration 3).
 */
export function batchSql(fsattrs: boolean, after: boolean): string {
  const x = fsattrs ? 'xattrs' : 'NULL';
  const f = fsattrs ? 'flags' : 'NULL';
  const hexOr = (c: string): string => `CASE WHEN ${c} IS NULL THEN '-' WHEN length(${c}) = 0 THEN '""' ELSE lower(hex(${c})) END`;
  // printf, not ||: one call formats the whole text (a chain of || copies it once per piece).
  const mid = `printf('%s %d %d %d %d %d %d %d %d %s %s %s', type, mode, uid, gid, size, mtime_ns, ctime_ns, inode, nlink, ${hexOr('target')}, coalesce(blake3, '-'), coalesce(sha256, '-'))`;
  const word = (c: string): string =>
    `(${c} IS NULL OR (typeof(${c}) = 'text' AND instr(${c}, ' ') = 0 AND instr(${c}, char(10)) = 0 AND instr(${c}, char(0)) = 0))`;
  const ints = ['mode', 'uid', 'gid', 'size', 'mtime_ns', 'ctime_ns', 'inode', 'nlink'].map((c) => `typeof(${c}) = 'integer'`).join(' AND ');
  const ok = [
    "typeof(path) = 'blob' AND length(path) > 0 AND instr(path, X'00') = 0",
    // printf's %s ends a text at a NUL byte; JavaScript keeps it
    "typeof(rule) = 'text' AND instr(rule, char(0)) = 0",
    // an errno-style code (anything else is refused by addAt, see DigestRowError)
    "(error IS NULL OR (typeof(error) = 'text' AND length(error) > 0 AND NOT error GLOB '*[^A-Z0-9_]*'))",
    "type IN ('file', 'dir', 'symlink', 'fifo', 'socket', 'chardev', 'blockdev', 'unknown')",
    ints,
    "(target IS NULL OR typeof(target) = 'blob')",
    word('blake3'),
    word('sha256'),
    `(${x} IS NULL OR (typeof(${x}) = 'text' AND NOT ${x} GLOB '*[^ -~]*' AND instr(${x}, '\\') = 0))`,
    `(${f} IS NULL OR (typeof(${f}) = 'integer' AND ${f} BETWEEN -2147483648 AND 4294967295))`,
  ].join(' AND ');
  // In the outer query: x and f are the inner's xattrs and flags, m its mid text.
  const fsattrsText = `CASE WHEN x IS NULL AND f IS NULL THEN '' ELSE printf(' x %s f %s', CASE WHEN x IS NULL THEN '-' ELSE '"' || replace(x, '"', '\\"') || '"' END, coalesce(f, '-')) END`;
  const line = `printf('%s %s %s %s%s', lower(hex(path)), rule, m, coalesce(error, '-'), ${fsattrsText}) || char(10)`;
  const cmp = `printf('%s %s %s', m, coalesce(f, '-'), CASE WHEN x IS NULL THEN '-' ELSE 'x' || x END)`;
  return `SELECT count(*) AS n, coalesce(sum(ok), 0) AS okn,
      coalesce(sum(CASE WHEN ok AND type = 'file' THEN size ELSE 0 END), 0) AS bytes, count(error) AS errs,
      group_concat(${line}, '') AS lines,
      CAST(group_concat(path, X'00') AS BLOB) AS paths,
      CAST(group_concat(${cmp}, char(10)) AS BLOB) AS cmps
    FROM (SELECT path, rule, error, type, size, ${x} AS x, ${f} AS f, (${ok}) AS ok, ${mid} AS m
          FROM entries WHERE gen = :gen${after ? ' AND path > :after' : ''} ORDER BY path LIMIT :lim)`;
}

/** The rows of a generation in path byte order, as the digest reads them. */
function orderedRows(db: DB, gen: number): Iterable<DigestRow> {
  return db
    .prepare<[number], DigestRow>(`SELECT ${digestColumns(db)} FROM entries WHERE gen = ? ORDER BY path`)
    .raw(true)
    .safeIntegers(true)
    .iterate(gen);
}

/** The kept-content rows of a generation in path byte order (none before migration 4). */
export function keptRows(db: DB, gen: number): Iterable<[Buffer, string]> {
  if (!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kept'").get()) return [];
  return db.prepare('SELECT path, digest FROM kept WHERE gen = ? ORDER BY path').raw(true).all(gen) as [Buffer, string][];
}

export function computeGenerationDigest(db: DB, g: Header): GenerationDigestResult {
  const d = new GenerationDigester(g, db);
  for (const r of orderedRows(db, g.id)) d.add(r);
  return d.finish();
}

/** Digest of a policy text, stored with each generation. */
export function policyDigest(text: string): string {
  return `blake3:${blake3Hex(text)}`;
}
