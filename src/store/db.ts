import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { CantCreateError, IntegError, LockedError, NoInputError, NoPermError, TrustError, writeErrorFor } from '../util/errors.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
import { guardConnection, inspectStore } from './schema-guard.js';

export type DB = Database.Database;

/** How long a second run waits for the store before exiting 75. */
const BUSY_TIMEOUT_MS = 2000;

export { storeError } from './store-error.js';
import { storeError } from './store-error.js';

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

/** Options for openWritable. */
export interface OpenWritableOptions {
  /** create an absent store, or initialise an empty file (only `baseline` does) */
  init?: boolean;
}

/**
 * Open the store for writing: WAL mode, migrations. With `init`, an absent store is created
 * (folder 0700, file 0600) and an empty file initialised; anything else must already be an
 * integ store with exactly integ's schema (see inspectStore), or nothing is touched.
 */
export function openWritable(file: string, opts: OpenWritableOptions = {}): DB {
  if (file !== ':memory:') {
    const state = inspectStore(file);
    if (state.kind !== 'store' && !opts.init)
      throw new NoInputError(`no baseline yet: ${file} ${state.kind === 'absent' ? 'does not exist' : 'is empty'} (run "integ baseline" first)`);
    if (state.kind === 'absent') {
      try {
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
        fs.closeSync(fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw writeErrorFor(e, `cannot create the store ${file}`);
        // created meanwhile by another run: the guard below judges what it is
      }
    }
  }
  let db: DB | undefined;
  try {
    db = new Database(file, { timeout: BUSY_TIMEOUT_MS, fileMustExist: file !== ':memory:' });
    // Judge the schema on this very connection before anything runs: the file may have
    // been swapped since it was inspected.
    guardConnection(db, file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db, file);
    return db;
  } catch (e) {
    db?.close();
    if (e instanceof IntegError) throw e;
    throw storeError(e, file);
  }
}

/**
 * Open the store read-only. A missing or empty store means "no baseline yet" (66); a file
 * that is not an integ store, or one with schema objects integ did not create, is refused
 * (16) and left byte-identical. A live store from an older integ is migrated first; a copy
 * written by `integ export` (not in WAL mode) is never written to, only read as it is.
 *
 * The connection holds one read transaction from the first read on, so everything read
 * through it (current generation, chain, rows) comes from one consistent snapshot even while
 * another run commits a new generation.
 */
export function openReadOnly(file: string): DB {
  const state = inspectStore(file);
  if (state.kind === 'absent') throw new NoInputError(`no baseline yet: ${file} does not exist (run "integ baseline" first)`);
  if (state.kind === 'empty') throw new NoInputError(`no baseline yet: ${file} is empty (run "integ baseline" first)`);
  let db: DB | undefined;
  try {
    if (state.version < SCHEMA_VERSION && state.wal) {
      // An older live store: bring it up to date through a writable connection. On
      // read-only media that is impossible; every migration so far only adds tables, which
      // the readers treat as optional, so read it as it is.
      try {
        openWritable(file).close();
      } catch (e) {
        if (!(e instanceof CantCreateError) && !(e instanceof NoPermError)) throw e;
      }
    }
    db = new Database(file, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
    guardConnection(db, file);
    // Check reads the generation once, in order: a large page cache would only add memory.
    db.pragma('cache_size = -2000');
    db.exec('BEGIN');
    db.prepare('SELECT count(*) FROM generations').get();
    return db;
  } catch (e) {
    db?.close();
    if (e instanceof IntegError) throw e;
    throw storeError(e, file);
  }
}

/** True for a live store (WAL mode); false for a copy written by `integ export`, which integ never writes to. */
export function isLiveStore(db: DB): boolean {
  return String(db.pragma('journal_mode', { simple: true })).toLowerCase() === 'wal';
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
