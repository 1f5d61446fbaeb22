import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { canDropToNobody, integ, tmpdir, writePolicy } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true, maxRetries: 3 });
});

function setup(): { dir: string; tree: string; db: string; policy: string } {
  const dir = tmpdir('integ-guard-');
  dirs.push(dir);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(tree, `f${i}`), `file ${i}\n`);
  return { dir, tree, db: path.join(dir, 's.db'), policy: writePolicy(dir, tree) };
}

const sha = (f: string): string => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const siblings = (db: string): string[] => ['-wal', '-shm', '-journal'].map((s) => db + s).filter((f) => fs.existsSync(f));

/** Every command that opens a store, read-only ones included. */
function everyCommand(s: { dir: string; db: string; policy: string; tree: string }): string[][] {
  return [
    ['history', '--db', s.db],
    ['show', path.join(s.tree, 'f0'), '--db', s.db],
    ['check', '--db', s.db, '--policy', s.policy, '--no-snapshot', '--jobs', '0'],
    ['diff', '--generation', '1', '2', '--db', s.db],
    ['diff', s.db, s.db],
    ['export', '--db', s.db, '--out', path.join(s.dir, `exported-${crypto.randomUUID()}.db`)],
    ['accept', '--all', '--note', 'x', '--db', s.db, '--policy', s.policy],
    ['prune', '--keep', '1', '--db', s.db],
    ['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '0'],
  ];
}

describe('planted schema objects (triggers, views, extra tables) are refused before anything runs', () => {
  it('a trigger that rewrites a digest on insert: baseline and check exit 16, the trigger never fires', () => {
    const s = setup();
    expect(integ(['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '0']).code).toBe(0);
    // A real SQLite edit, as another user with write access to the store could make.
    const db = new Database(s.db);
    db.exec(`CREATE TABLE fired (n INTEGER);
      CREATE TRIGGER backdoor AFTER INSERT ON entries BEGIN
        UPDATE entries SET blake3 = '${'0'.repeat(64)}' WHERE rowid = NEW.rowid;
        INSERT INTO fired VALUES (1);
      END;`);
    const gens = (db.prepare('SELECT count(*) AS n FROM generations').get() as { n: number }).n;
    db.close();
    const before = sha(s.db);
    fs.writeFileSync(path.join(s.tree, 'f0'), 'backdoor\n');
    for (const args of [
      ['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '0'],
      ['check', '--db', s.db, '--policy', s.policy, '--no-snapshot', '--jobs', '0'],
      ['history', '--db', s.db],
    ]) {
      const r = integ(args);
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(16);
      expect(r.stderr).toMatch(/trigger "backdoor" on entries was not created by integ/);
      expect(r.stderr).toMatch(/table "fired" was not created by integ/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(sha(s.db)).toBe(before);
    const after = new Database(s.db, { readonly: true });
    expect((after.prepare('SELECT count(*) AS n FROM fired').get() as { n: number }).n).toBe(0);
    expect((after.prepare('SELECT count(*) AS n FROM generations').get() as { n: number }).n).toBe(gens);
    after.close();
  });

  it('a view, an extra index, an altered table definition: each is named and refused (16)', () => {
    const cases: Array<[string, RegExp]> = [
      ['CREATE VIEW v AS SELECT path FROM entries', /view "v" was not created by integ/],
      ['CREATE INDEX extra ON entries(blake3)', /index "extra" on entries was not created by integ/],
      ['CREATE TRIGGER t2 BEFORE DELETE ON runs BEGIN SELECT 1; END', /trigger "t2" on runs was not created by integ/],
    ];
    for (const [sql, re] of cases) {
      const s = setup();
      expect(integ(['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '0']).code).toBe(0);
      const db = new Database(s.db);
      db.exec(sql);
      db.close();
      const r = integ(['check', '--db', s.db, '--policy', s.policy, '--no-snapshot', '--jobs', '0']);
      expect(r.code, r.stderr).toBe(16);
      expect(r.stderr).toMatch(re);
    }
    // An altered definition (writable_schema is how sqlite3 would do it; integ's own
    // connections run in SQLite's defensive mode, where this pragma has no effect).
    const s = setup();
    expect(integ(['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '0']).code).toBe(0);
    const db = new Database(s.db);
    db.unsafeMode(true);
    db.pragma('writable_schema = ON');
    db.prepare("UPDATE sqlite_schema SET sql = replace(sql, 'error TEXT', 'error TEXT DEFAULT (hex(randomblob(4)))') WHERE name = 'entries'").run();
    db.close();
    const r = integ(['history', '--db', s.db]);
    expect(r.code, r.stderr).toBe(16);
    expect(r.stderr).toMatch(/table "entries" differs from the one integ created/);
  });

  it('warns about a store in a folder other users can write, but still works', () => {
    const s = setup();
    const shared = path.join(s.dir, 'shared');
    fs.mkdirSync(shared);
    fs.chmodSync(shared, 0o777);
    const db = path.join(shared, 's.db');
    const r = integ(['baseline', '--db', db, '--policy', s.policy, '--jobs', '0']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^integ: warning: the store.s folder .*shared is writable by others \(mode 0777\)/m);
    const h = integ(['history', '--db', db]);
    expect(h.code).toBe(0);
    expect(h.stderr).toMatch(/^integ: warning: its folder .*shared is writable by others \(mode 0777\)/m);
    fs.chmodSync(shared, 0o700);
    expect(integ(['history', '--db', db]).stderr).toBe('');
  });
});

describe('a file that is not an integ store is refused (16) and left byte-identical by every command', () => {
  for (const mode of ['delete', 'wal'] as const) {
    it(`another program's SQLite database (journal_mode ${mode})`, () => {
      const s = setup();
      const other = new Database(s.db);
      other.pragma(`journal_mode = ${mode}`);
      other.exec("CREATE TABLE contacts (name TEXT, phone TEXT); INSERT INTO contacts VALUES ('a', '1');");
      other.close();
      expect(siblings(s.db)).toEqual([]);
      const before = sha(s.db);
      for (const args of everyCommand(s)) {
        const r = integ(args);
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(16);
        expect(r.stderr).toMatch(/not an integ store \(it holds table "contacts"\); it was left untouched/);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(sha(s.db), args[0]).toBe(before);
        expect(siblings(s.db), args[0]).toEqual([]);
      }
      expect(fs.readdirSync(s.dir).filter((f) => f.startsWith('exported'))).toEqual([]);
    });
  }

  it('an empty file: read-only commands say "no baseline yet" (66) and leave it empty; baseline initialises it', () => {
    const s = setup();
    fs.writeFileSync(s.db, '');
    for (const args of everyCommand(s).filter((a) => a[0] !== 'baseline' && a[0] !== 'diff')) {
      const r = integ(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(66);
      expect(fs.statSync(s.db).size).toBe(0);
      expect(siblings(s.db)).toEqual([]);
    }
    expect(integ(['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '0']).code).toBe(0);
    expect(integ(['history', '--db', s.db]).code).toBe(0);
  });
});

describe('check on an exported copy (issue 9)', () => {
  it('opens it read-only: byte-identical, no -wal/-shm, no WAL switch, and says the run was not recorded', () => {
    const s = setup();
    expect(integ(['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '0']).code).toBe(0);
    const copy = path.join(s.dir, 'copy.db');
    expect(integ(['export', '--db', s.db, '--out', copy]).code).toBe(0);
    const before = sha(copy);
    fs.writeFileSync(path.join(s.tree, 'f1'), 'changed\n');
    const r = integ(['check', '--db', copy, '--policy', s.policy, '--no-snapshot', '--jobs', '0', '--format', 'json']);
    expect(r.code, r.stderr).toBe(4);
    expect(sha(copy)).toBe(before);
    expect(siblings(copy)).toEqual([]);
    const j = JSON.parse(r.stdout) as { notices?: string[] };
    const text = integ(['check', '--db', copy, '--policy', s.policy, '--no-snapshot', '--jobs', '0']);
    expect(text.stdout).toMatch(/copy written by "integ export".*this run was not recorded/);
    expect(JSON.stringify(j)).toMatch(/this run was not recorded/);
    expect(sha(copy)).toBe(before);
    const h = new Database(copy, { readonly: true });
    expect(h.pragma('journal_mode', { simple: true })).toBe('delete');
    expect((h.prepare('SELECT count(*) AS n FROM runs').get() as { n: number }).n).toBe(0);
    h.close();
  });
});

describe('a store the user may not open (issue 9)', () => {
  if (!canDropToNobody) console.log('skipped: permission tests need root, setpriv and the staged runtime to run as nobody');
  it.runIf(canDropToNobody)('says "permission denied" and exits 77', () => {
    const s = setup();
    fs.chmodSync(s.dir, 0o755);
    fs.chmodSync(s.tree, 0o755);
    fs.chmodSync(s.policy, 0o644);
    expect(integ(['baseline', '--db', s.db, '--policy', s.policy, '--jobs', '0']).code).toBe(0);
    expect(fs.statSync(s.db).mode & 0o777).toBe(0o600);
    for (const args of [
      ['history', '--db', s.db],
      ['check', '--db', s.db, '--policy', s.policy, '--no-snapshot', '--jobs', '0'],
    ]) {
      const r = integ(args, { asNobody: true, env: { HOME: '/tmp' } });
      expect(r.code, r.stderr).toBe(77);
      expect(r.stderr).toMatch(/^integ: .*s\.db: permission denied/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    // A policy nobody may read: 77 too, before the store is opened.
    const secret = path.join(s.dir, 'secret.yml');
    fs.copyFileSync(s.policy, secret);
    fs.chmodSync(secret, 0o600);
    const p = integ(['check', '--db', s.db, '--policy', secret, '--no-snapshot', '--jobs', '0'], { asNobody: true, env: { HOME: '/tmp' } });
    expect(p.code, p.stderr).toBe(77);
    expect(p.stderr).toBe(`integ: policy ${secret}: permission denied\n`);
    // A store inside a folder nobody may enter.
    fs.chmodSync(s.dir, 0o700);
    const r = integ(['history', '--db', s.db], { asNobody: true, env: { HOME: '/tmp' } });
    expect(r.code, r.stderr).toBe(77);
  });
});
