import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { CantCreateError, DataError, IoError, LockedError, NoInputError, TrustError, writeErrorFor } from '../util/errors.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';

export type DB = Database.Database;

/** How long a second run waits for the store before exiting 75. */
const BUSY_TIMEOUT_MS = 2000;

/** Turn a SQLite failure into the contract's error classes. */
export function storeError(e: unknown, file: string): Error {
  const code = (e as { code?: string }).code ?? '';
  const msg = (e as Error).message;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code.startsWith('SQLITE_BUSY'))
    return new LockedError(`${file}: another integ run holds the store; try again later`);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || code.startsWith('SQLITE_CORRUPT'))
    return new TrustError(`${file}: the store is corrupt or not an integ store (${msg}); keep it for analysis and start a new one with --db`);
  if (code === 'SQLITE_FULL') return new IoError(`${file}: no space left on device; the previous baseline is unchanged`);
  if (code === 'SQLITE_IOERR' || code.startsWith('SQLITE_IOERR')) return new IoError(`${file}: I/O error: ${msg}`);
  if (code === 'SQLITE_READONLY' || code.startsWith('SQLITE_READONLY')) return new CantCreateError(`${file}: the store is read-only: ${msg}`);
  if (code === 'SQLITE_CANTOPEN' || code.startsWith('SQLITE_CANTOPEN')) return new CantCreateError(`${file}: cannot open the store: ${msg}`);
  return e as Error;
}

function userVersion(db: DB): number {
  return db.pragma('user_version', { simple: true }) as number;
}

function checkVersion(db: DB, file: string): number {
  const v = userVersion(db);
  if (v > SCHEMA_VERSION) throw new TrustError(`${file}: store schema version ${v} is newer than this integ understands (${SCHEMA_VERSION}); upgrade integ`);
  return v;
}

/** Apply every pending migration in one transaction; user_version is set last. */
export function migrate(db: DB, file = ':memory:', upTo = SCHEMA_VERSION): void {
  const v = checkVersion(db, file);
  const pending = MIGRATIONS.filter((m) => m.version > v && m.version <= upTo);
  if (pending.length === 0) return;
  db.transaction(() => {
    for (const m of pending) db.exec(m.sql);
    db.pragma(`user_version = ${pending[pending.length - 1]!.version}`);
  }).immediate();
}

/**
 * Open the store for writing: creates its folder (0700) and file (0600), WAL mode, migrations.
 */
export function openWritable(file: string): DB {
  try {
    if (file !== ':memory:') {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      if (!fs.existsSync(file)) fs.closeSync(fs.openSync(file, 'a', 0o600));
    }
  } catch (e) {
    throw writeErrorFor(e, `cannot create the store ${file}`);
  }
  let db: DB | undefined;
  try {
    db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db, file);
    return db;
  } catch (e) {
    db?.close();
    throw storeError(e, file);
  }
}

/**
 * Open the store read-only for comparison. A missing store means "no baseline yet" (66).
 */
export function openReadOnly(file: string): DB {
  if (!fs.existsSync(file)) throw new NoInputError(`no baseline yet: ${file} does not exist (run "integ baseline" first)`);
  let db: DB | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
    const v = checkVersion(db, file);
    if (v < SCHEMA_VERSION) {
      db.close();
      // An older store: bring it up to date through a writable connection, then reopen. On
      // read-only media that is impossible; every migration so far only adds tables, which
      // the readers treat as optional, so read it as it is.
      try {
        openWritable(file).close();
      } catch (e) {
        if (!(e instanceof CantCreateError)) throw e;
      }
      db = new Database(file, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
    }
    // Check reads the generation once, in order: a large page cache would only add memory.
    db.pragma('cache_size = -2000');
    db.prepare('SELECT count(*) FROM generations').get();
    return db;
  } catch (e) {
    db?.close();
    if (e instanceof DataError || e instanceof TrustError || e instanceof NoInputError) throw e;
    throw storeError(e, file);
  }
}

/**
 * Fail fast (75) when another run holds the write lock, instead of racing it.
 * Returns false when the store cannot be written at all (read-only media).
 */
export function probeWriteLock(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.W_OK);
    fs.accessSync(path.dirname(file), fs.constants.W_OK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return false;
  }
  let db: DB | undefined;
  try {
    db = new Database(file, { fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
    return true;
  } catch (e) {
    const err = storeError(e, file);
    if (err instanceof LockedError) throw err;
    if (err instanceof CantCreateError) return false;
    throw err;
  } finally {
    db?.close();
  }
}

/**
 * Take the write lock for a transaction that spans asynchronous work (hashing while rows go
 * in), which better-sqlite3's synchronous transaction() cannot. Busy: LockedError (75).
 */
export function beginWrite(db: DB, file: string): void {
  try {
    db.exec('BEGIN IMMEDIATE');
  } catch (e) {
    throw storeError(e, file);
  }
}

export function commit(db: DB): void {
  db.exec('COMMIT');
}

/** Roll back after a failure; a transaction SQLite already rolled back is not an error. */
export function rollbackQuietly(db: DB): void {
  try {
    db.exec('ROLLBACK');
  } catch {
    /* the connection may already have rolled back */
  }
}

/** Rewrite the file to give freed pages back to the filesystem. */
export function vacuum(db: DB): void {
  db.exec('VACUUM');
}

/**
 * Open a fresh copy of a store (made by backup) to be cut down for export; foreign keys on so
 * deleting a generation removes its entries.
 */
export function openCopy(file: string): DB {
  const db = new Database(file);
  db.pragma('foreign_keys = ON');
  return db;
}

/**
 * Make a store usable from read-only media: DELETE journal mode (WAL needs a writable -shm
 * beside the file), vacuumed.
 */
export function prepareForReadOnlyMedia(db: DB): void {
  db.pragma('journal_mode = DELETE');
  db.exec('VACUUM');
}

/** The journal mode a store file records (read-only open). */
export function journalModeOf(file: string): string {
  const db = new Database(file, { readonly: true });
  try {
    return String(db.pragma('journal_mode', { simple: true }));
  } finally {
    db.close();
  }
}
