import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { migrate } from '../../src/store/db.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { BaselineRepo } from '../../src/store/baseline-repo.js';
import { computeGenerationDigest } from '../../src/store/generation-digest.js';
import { Md5Cache } from '../../src/store/md5-cache.js';
import { generationHeader as header } from '../helpers/records.js';

/** a finished, empty generation (what the cache's rows refer to) */
function generation(db: Database.Database, repo: BaselineRepo): number {
  const parent = repo.current();
  const h = header(parent ? { id: parent.id, digest: parent.digest } : null);
  const g = repo.begin(h);
  const d = computeGenerationDigest(db, { id: g, ...h });
  repo.finish(g, d, d.digest, null, null);
  return g;
}

/** a store at the current schema, foreign keys on (as openWritable sets them: prune cascades) */
function store(): { db: Database.Database; repo: BaselineRepo } {
  const db = new Database(':memory:');
  migrate(db, ':memory:');
  db.pragma('foreign_keys = ON');
  return { db, repo: new BaselineRepo(db) };
}

const rows = (db: Database.Database): unknown[] => db.prepare('SELECT digest, md5, gen FROM md5_cache ORDER BY digest').all();
const A = 'a'.repeat(32);
const B = 'b'.repeat(32);

describe('Md5Cache (migration 6)', () => {
  it('migration 6 adds the md5_cache table to a version-5 store and keeps what was there', () => {
    const db = new Database(':memory:');
    const before = MIGRATIONS.filter((m) => m.version < 6).at(-1)!.version;
    migrate(db, ':memory:', before);
    const repo = new BaselineRepo(db);
    const g = generation(db, repo);
    const digest = repo.get(g)!.digest;
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'md5_cache'").get()).toBeUndefined();
    migrate(db, ':memory:', 6);
    expect(db.pragma('user_version', { simple: true })).toBe(6);
    expect(rows(db)).toEqual([]);
    expect(repo.get(g)!.digest).toBe(digest);
  });

  it('a reader (check) finds the rows but never writes; a store from before migration 6 has no reader', () => {
    const old = new Database(':memory:');
    migrate(old, ':memory:', MIGRATIONS.filter((m) => m.version < 6).at(-1)!.version);
    expect(Md5Cache.reader(old)).toBeNull();
    const { db, repo } = store();
    const g = generation(db, repo);
    const writer = new Md5Cache(db, g);
    writer.put('blake3:x', A);
    writer.flush();
    const reader = Md5Cache.reader(db)!;
    expect(reader.get('blake3:x')).toBe(A);
    expect(() => reader.flush()).toThrow(/does not write/);
  });

  it('keys by content digest with its algorithm, writes only on flush, and moves what a baseline used to its generation', () => {
    const { db, repo } = store();
    const g1 = generation(db, repo);
    const c1 = new Md5Cache(db, g1);
    expect(c1.keyOf({ blake3: 'b3', sha256: 's2' })).toBe('blake3:b3');
    expect(c1.keyOf({ blake3: null, sha256: 's2' })).toBe('sha256:s2');
    expect(c1.keyOf({ blake3: null, sha256: null })).toBeNull();
    expect(c1.get('blake3:x')).toBeNull();
    c1.put('blake3:x', A);
    c1.put('blake3:bad', 'not an md5'); // never stored
    expect(rows(db)).toEqual([]); // nothing before flush (an interrupted baseline adds none)
    expect(c1.get('blake3:x')).toBe(A); // the same run's duplicate content
    c1.flush();
    expect(rows(db)).toEqual([{ digest: 'blake3:x', md5: A, gen: g1 }]);
    expect(c1.counts).toEqual({ reused: 1, learned: 1 });

    const g2 = generation(db, repo);
    const c2 = new Md5Cache(db, g2);
    expect(c2.get('blake3:x')).toBe(A);
    c2.put('blake3:y', B);
    c2.flush();
    expect(rows(db)).toEqual([
      { digest: 'blake3:x', md5: A, gen: g2 },
      { digest: 'blake3:y', md5: B, gen: g2 },
    ]);
    expect(c2.counts).toEqual({ reused: 1, learned: 1 });
  });

  it('drops a row with the generation that last used it (prune), and refuses a malformed one', () => {
    const { db, repo } = store();
    const g1 = generation(db, repo);
    const c1 = new Md5Cache(db, g1);
    c1.put('blake3:old', A);
    c1.put('blake3:kept', B);
    c1.flush();
    const g2 = generation(db, repo);
    const c2 = new Md5Cache(db, g2);
    expect(c2.get('blake3:kept')).toBe(B);
    c2.flush();
    repo.prune(g1, repo.get(g1)!.digest, '2026-12-03T11:00:00.000Z');
    expect(rows(db)).toEqual([{ digest: 'blake3:kept', md5: B, gen: g2 }]);
    db.prepare("UPDATE md5_cache SET md5 = 'zz' WHERE digest = 'blake3:kept'").run();
    expect(new Md5Cache(db, g2).get('blake3:kept')).toBeNull();
  });
});
