import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DataError, IntegError, NoPermError, TrustError } from '../util/errors.js';
import { storeError } from './store-error.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';

type DB = Database.Database;

/** One row of sqlite_schema, as integ compares it. */
interface SchemaObject {
  type: string;
  name: string;
  tbl_name: string;
  sql: string | null;
}

/**
 * Tables SQLite itself may add to any database: statistics written by ANALYZE or
 * `PRAGMA optimize`. They hold numbers for the query planner and run no code.
 */
const SQLITE_STATS = new Set(['sqlite_stat1', 'sqlite_stat2', 'sqlite_stat3', 'sqlite_stat4']);

const expectedCache = new Map<number, Map<string, SchemaObject>>();

const keyOf = (o: Pick<SchemaObject, 'type' | 'name'>): string => `${o.type} ${o.name}`;

function readSchema(db: DB): SchemaObject[] {
  return db.prepare('SELECT type, name, tbl_name, sql FROM sqlite_schema').all() as SchemaObject[];
}

/**
 * The schema integ itself creates at `version`: every migration up to it applied to an
 * empty in-memory database. Derived, not listed, so later migrations are covered as soon as
 * they are added to MIGRATIONS.
 */
export function expectedSchema(version: number): Map<string, SchemaObject> {
  let m = expectedCache.get(version);
  if (m) return m;
  const mem = new Database(':memory:');
  try {
    for (const mig of MIGRATIONS) if (mig.version <= version) mem.exec(mig.sql);
    m = new Map(readSchema(mem).map((o) => [keyOf(o), o]));
  } finally {
    mem.close();
  }
  expectedCache.set(version, m);
  return m;
}

const describe = (o: SchemaObject): string => `${o.type} "${o.name}"${o.type === 'trigger' || o.type === 'index' ? ` on ${o.tbl_name}` : ''}`;

/** What differs between the database's schema and the one integ creates at `version`. */
export function schemaProblems(db: DB, version: number): string[] {
  const want = expectedSchema(version);
  const have = readSchema(db);
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const o of have) {
    const k = keyOf(o);
    seen.add(k);
    const w = want.get(k);
    if (!w) {
      if (o.type === 'table' && SQLITE_STATS.has(o.name)) continue;
      problems.push(`${describe(o)} was not created by integ`);
    } else if (w.sql !== o.sql || w.tbl_name !== o.tbl_name) problems.push(`${describe(o)} differs from the one integ created`);
  }
  for (const [k, w] of want) if (!seen.has(k)) problems.push(`${describe(w)} is missing`);
  return problems;
}

/** What a store file holds, judged before anything in it is used. */
export type StoreState =
  /** no file: baseline may create it */
  | { kind: 'absent' }
  /** a zero-length file, or an SQLite database with no schema at all: baseline may initialise it */
  | { kind: 'empty' }
  /** an integ store at `version`; `wal` false for a copy written by `integ export` (journal mode DELETE) */
  | { kind: 'store'; version: number; wal: boolean };

const MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * Check an open connection (any mode) before anything else runs on it: turn off trust in
 * the schema, then require exactly the schema integ created for the store's user_version.
 * A trigger, view, extra table or index, or an altered definition is refused (exit 16):
 * SQLite would run a planted trigger with integ's privileges, inside the transaction integ
 * signs. Reading sqlite_schema runs nothing of what it describes.
 */
export function guardConnection(db: DB, file: string): { version: number; empty: boolean } {
  // Functions in the schema (defaults, indexes, triggers, views) must be innocuous; the
  // connection is also opened in SQLite's defensive mode by better-sqlite3 (no writable_schema,
  // no shadow-table writes) and the SQL function load_extension() is not enabled.
  db.pragma('trusted_schema = OFF');
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION)
    throw new TrustError(`${file}: store schema version ${version} is newer than this integ understands (${SCHEMA_VERSION}); upgrade integ`);
  if (version <= 0) {
    const objects = readSchema(db);
    if (objects.length === 0) return { version: 0, empty: true };
    throw new TrustError(
      `${file} is an SQLite database but not an integ store (it holds ${describe(objects[0]!)}${objects.length > 1 ? ` and ${objects.length - 1} more` : ''}); ` +
        'it was left untouched. Give another --db',
    );
  }
  const problems = schemaProblems(db, version);
  if (problems.length)
    throw new TrustError(
      `${file}: the store holds schema objects integ did not create, refusing to use it (nothing was run or written):\n${problems.map((p) => `  - ${p}`).join('\n')}\n` +
        "A planted trigger or view would run with integ's privileges. Keep the file for analysis and start a new store with --db",
    );
  return { version, empty: false };
}

const warned = new Set<string>();

/**
 * Warn once per file about a store or folder another local user could replace or edit: owned
 * by someone other than the running user (or root), or writable by group or others (a folder
 * with the sticky bit is fine for the file's own owner). Not refused: the schema guard and
 * the trust gate (digests, chain, signatures with --verify-key) judge the content itself,
 * and stores on shared or restored media are legitimate to read.
 */
function warnOwnership(file: string, st: fs.Stats | null): void {
  if (typeof process.getuid !== 'function') return;
  const uid = process.getuid();
  const problems: string[] = [];
  const judge = (what: string, s: fs.Stats, isDir: boolean): void => {
    if (s.uid !== uid && s.uid !== 0) problems.push(`${what} is owned by uid ${s.uid}, not by the running user (uid ${uid})`);
    const sticky = isDir && (s.mode & 0o1000) !== 0;
    if ((s.mode & 0o022) !== 0 && !sticky)
      problems.push(`${what} is writable by ${(s.mode & 0o002) !== 0 ? 'others' : 'its group'} (mode ${(s.mode & 0o7777).toString(8).padStart(4, '0')})`);
  };
  if (st) judge(`store ${file}`, st, false);
  let key = st ? `${st.dev}:${st.ino}` : path.resolve(file);
  try {
    const dir = path.dirname(path.resolve(file));
    const ds = fs.statSync(dir);
    judge(`${st ? 'its' : "the store's"} folder ${dir}`, ds, true);
    if (!st) key = `${ds.dev}:${ds.ino}`;
  } catch {
    /* the folder cannot be examined: opening the store tells */
  }
  if (!problems.length || warned.has(key)) return;
  warned.add(key);
  process.stderr.write(
    `integ: warning: ${problems.join('; ')}: another user could replace or edit the store. ` +
      'integ refuses schema objects it did not create and verifies the content; sign baselines and check with --verify-key to detect a rewritten store\n',
  );
}

function permissionDenied(file: string, e: unknown): NoPermError {
  return new NoPermError(
    `${file}: permission denied (${(e as Error).message.replace(/^EACCES: /, '')}); run integ as a user who may read the store, or give another --db`,
  );
}

/**
 * Look at the store file without letting SQLite change anything: absent, empty, or an
 * integ store (schema verified). Anything else — not SQLite at all, another program's SQLite
 * database, a store with planted triggers — is refused (16) and left byte-identical: the
 * header is read with plain read(2), and SQLite only ever opens it read-only, or, when a WAL
 * database has no -wal file yet (a read-only connection would create -wal and -shm and leave
 * them behind), read-write with query_only, so closing removes the two files it made.
 */
export function inspectStore(file: string): StoreState {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      warnOwnership(file, null);
      return { kind: 'absent' }; // creating it then says why not
    }
    if (code === 'EACCES' || code === 'EPERM') throw permissionDenied(file, e);
    throw new DataError(`${file}: cannot examine the store: ${(e as Error).message}`);
  }
  if (!st.isFile()) throw new DataError(`${file} is not a regular file (the store is one SQLite file)`);
  warnOwnership(file, st);
  if (st.size === 0) return { kind: 'empty' };
  const head = Buffer.alloc(100);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw permissionDenied(file, e);
    throw new DataError(`${file}: cannot read the store: ${(e as Error).message}`);
  }
  let n: number;
  try {
    n = fs.readSync(fd, head, 0, 100, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (n < 100 || !head.subarray(0, 16).equals(MAGIC))
    throw new TrustError(`${file}: the store is corrupt or not an integ store (not an SQLite database); it was left untouched. Give another --db`);
  const wal = head[18] === 2 && head[19] === 2;
  let writableProbe = false;
  if (wal && !fs.existsSync(`${file}-wal`)) {
    try {
      fs.accessSync(file, fs.constants.W_OK);
      fs.accessSync(path.dirname(path.resolve(file)), fs.constants.W_OK);
      writableProbe = true;
    } catch {
      /* read-only media or folder: SQLite then reads without creating -wal/-shm */
    }
  }
  let db: DB | undefined;
  try {
    db = new Database(file, writableProbe ? { fileMustExist: true, timeout: 2000 } : { readonly: true, fileMustExist: true, timeout: 2000 });
    if (writableProbe) db.pragma('query_only = ON');
    const g = guardConnection(db, file);
    return g.empty ? { kind: 'empty' } : { kind: 'store', version: g.version, wal };
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    if (code === 'SQLITE_CANTOPEN' || code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY')) {
      try {
        fs.accessSync(file, fs.constants.R_OK);
      } catch (a) {
        throw permissionDenied(file, a);
      }
    }
    if (e instanceof IntegError) throw e;
    throw storeError(e, file);
  } finally {
    db?.close();
  }
}
