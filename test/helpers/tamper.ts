/**
 * Tampering that is guaranteed to tamper: each helper proves that what it targets changed,
 * so a test of "tampering is detected" can never pass (or flake) on a tamper that was a no-op.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

type DB = Database.Database;

/** A digest of every row of every table (values, not pages: VACUUM does not change it). */
export function dbFingerprint(db: DB): string {
  const h = crypto.createHash('sha256');
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[];
  for (const t of tables) {
    h.update(`\0table ${t}\0`);
    const rows = db
      .prepare(`SELECT * FROM "${t.replace(/"/g, '""')}"`)
      .raw(true)
      .safeIntegers(true)
      .all() as unknown[][];
    for (const row of rows) for (const v of row) h.update(Buffer.isBuffer(v) ? `b${v.toString('hex')}|` : `${typeof v}${String(v)}|`);
  }
  return h.digest('hex');
}

/** Run `sql` (one or more statements) on an open database; throws unless it changed a row and the content. */
export function mustChange(db: DB, sql: string): void {
  const before = dbFingerprint(db);
  const changesBefore = db.prepare('SELECT total_changes()').pluck().get() as number;
  db.exec(sql);
  const changed = (db.prepare('SELECT total_changes()').pluck().get() as number) - changesBefore;
  if (changed === 0) throw new Error(`tamper changed no row: ${sql}`);
  if (dbFingerprint(db) === before) throw new Error(`tamper left the content as it was: ${sql}`);
}

/** Open the store file, tamper with it through SQLite directly, prove it changed. */
export function tamperDb(file: string, sql: string): void {
  const db = new Database(file);
  try {
    db.pragma('foreign_keys = ON');
    mustChange(db, sql);
  } finally {
    db.close();
  }
}

/** Rewrite a text file through `edit`; throws when the edit leaves it as it was. */
export function editText(file: string, edit: (text: string) => string): void {
  const before = fs.readFileSync(file, 'utf8');
  const after = edit(before);
  if (after === before) throw new Error(`tamper left ${file} as it was`);
  fs.writeFileSync(file, after);
}

/** A digest of a folder tree: relative paths, types, modes and file contents. */
export function treeFingerprint(dir: string): string {
  const h = crypto.createHash('sha256');
  const visit = (rel: string): void => {
    const p = path.join(dir, rel);
    const st = fs.lstatSync(p);
    h.update(`${rel}\0${st.mode}\0`);
    if (st.isDirectory()) for (const e of fs.readdirSync(p).sort()) visit(path.join(rel, e));
    else if (st.isSymbolicLink()) h.update(fs.readlinkSync(p));
    else if (st.isFile()) h.update(fs.readFileSync(p));
  };
  visit('.');
  return h.digest('hex');
}
