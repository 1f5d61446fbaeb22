import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { migrate } from '../../src/store/db.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/store/migrations.js';
import { BaselineRepo } from '../../src/store/baseline-repo.js';
import { computeGenerationDigest } from '../../src/store/generation-digest.js';
import { TrustError } from '../../src/util/errors.js';
import { generationHeader } from '../helpers/records.js';

const tables = (db: Database.Database): string[] =>
  (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
const version = (db: Database.Database): number => db.pragma('user_version', { simple: true }) as number;

const header = generationHeader;
const rec = (p: string, size = 1n) => ({
  path: Buffer.from(p),
  type: 'file' as const,
  mode: 0o644,
  uid: 0,
  gid: 0,
  size,
  mtimeNs: 1n,
  ctimeNs: 2n,
  inode: 3n,
  nlink: 1,
  target: null,
  blake3: 'ab',
  sha256: null,
});

describe('migrations', () => {
  it('are numbered in increasing order (numbers reserved for other work may be skipped), and SCHEMA_VERSION is the last', () => {
    const v = MIGRATIONS.map((m) => m.version);
    expect(v.slice(0, 2)).toEqual([1, 2]);
    for (let i = 1; i < v.length; i++) expect(v[i]!).toBeGreaterThan(v[i - 1]!);
    expect(SCHEMA_VERSION).toBe(v.at(-1));
  });

  it('migration 5 records policy texts by digest, filled from the generations of an older store', () => {
    const db = new Database(':memory:');
    const before = MIGRATIONS.filter((m) => m.version < 5).at(-1)!.version;
    migrate(db, ':memory:', before);
    const repo = new BaselineRepo(db);
    const h = header(null);
    const g = repo.begin(h);
    const d = computeGenerationDigest(db, { id: g, ...h });
    repo.finish(g, d, d.digest, null, null);
    migrate(db, ':memory:', 5);
    expect(version(db)).toBe(5);
    expect(db.prepare('SELECT digest, source, text FROM policies').all()).toEqual([{ digest: 'blake3:p', source: 'p.yml', text: 'version: 1' }]);
    expect(repo.get(g)!.digest).toBe(d.digest);
  });

  it('migration 1 creates the generation, entry and run tables on an empty store', () => {
    const db = new Database(':memory:');
    migrate(db, ':memory:', 0);
    expect(version(db)).toBe(0);
    expect(tables(db)).toEqual([]);
    migrate(db, ':memory:', 1);
    expect(version(db)).toBe(1);
    expect(tables(db)).toEqual(['entries', 'generations', 'run_errors', 'run_findings', 'runs']);
  });

  it('migration 2 adds pruned/accepts/accepted_paths and keeps every row and digest of a version-1 store', () => {
    const db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    migrate(db, ':memory:', 1);
    const repo = new BaselineRepo(db);
    const h1 = header(null);
    const g1 = repo.begin(h1);
    repo.insert(g1, 'r', rec('/etc/a'), null);
    repo.insert(g1, 'r', rec('/etc/b', 7n), 'EACCES');
    const d1 = computeGenerationDigest(db, { id: g1, ...h1 });
    repo.finish(g1, d1, d1.digest, null, null);
    db.prepare(`INSERT INTO runs (kind, started_at, finished_at, gen, baseline_digest, user, uid, hostname, root, policy_digest, scanned, added, removed, changed, errors, exit_code, findings_digest)
      VALUES ('check', 't0', 't1', ?, ?, 'root', 0, 'web1', '/', 'blake3:p', 2, 0, 0, 1, 0, 4, 'blake3:f')`).run(g1, d1.digest);
    const before = {
      gens: db.prepare('SELECT * FROM generations').all(),
      entries: db.prepare('SELECT * FROM entries ORDER BY rowid').all(),
      runs: db.prepare('SELECT * FROM runs').all(),
    };

    migrate(db, ':memory:', 2);
    expect(version(db)).toBe(2);
    expect(tables(db)).toEqual(expect.arrayContaining(['pruned', 'accepts', 'accepted_paths']));
    expect(db.prepare('SELECT * FROM generations').all()).toEqual(before.gens);
    expect(db.prepare('SELECT * FROM entries ORDER BY rowid').all()).toEqual(before.entries);
    expect(db.prepare('SELECT * FROM runs').all()).toEqual(before.runs);
    // The digest still recomputes: nothing the chain covers was touched.
    expect(computeGenerationDigest(db, repo.get(g1)!).digest).toBe(d1.digest);
    expect(db.prepare('SELECT count(*) AS n FROM pruned').get()).toEqual({ n: 0 });
    // New tables work, and accept provenance goes with its generation.
    repo.recordAccept(g1, { id: 1, findingsDigest: 'blake3:f' }, false, [{ path: Buffer.from('/etc/a'), kind: 'changed', rule: 'r', recheck: 'same' }]);
    expect(repo.acceptOf(g1)).toEqual({ run: 1, runFindingsDigest: 'blake3:f', forced: false, paths: 1 });
    repo.prune(g1, d1.digest, 'now');
    expect(repo.prunedAnchors()).toEqual([{ id: g1, digest: d1.digest, prunedAt: 'now' }]);
    expect(db.prepare('SELECT count(*) AS n FROM accepted_paths').get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT count(*) AS n FROM entries').get()).toEqual({ n: 0 });
  });

  it('migration 3 adds xattrs/flags: old rows read as not recorded and keep their digest; recorded values are covered by it', () => {
    const db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    migrate(db, ':memory:', 2);
    const old = new BaselineRepo(db);
    const h1 = header(null);
    const g1 = old.begin(h1);
    old.insert(g1, 'r', rec('/etc/a'), null);
    const d1 = computeGenerationDigest(db, { id: g1, ...h1 });
    old.finish(g1, d1, d1.digest, null, null);
    migrate(db, ':memory:', 3);
    expect(version(db)).toBe(3);
    const repo = new BaselineRepo(db);
    expect(computeGenerationDigest(db, repo.get(g1)!).digest).toBe(d1.digest);
    const a = repo.lookup(g1, Buffer.from('/etc/a'))!;
    expect(a.rec.xattrs).toBeNull();
    expect(a.rec.flags).toBeNull();
    const h2 = header({ id: g1, digest: d1.digest });
    const g2 = repo.begin(h2);
    repo.insert(g2, 'r', { ...rec('/etc/a'), xattrs: '[["user.x","aGk="]]', flags: 16 }, null);
    const d2 = computeGenerationDigest(db, { id: g2, ...h2 });
    expect(repo.lookup(g2, Buffer.from('/etc/a'))!.rec).toMatchObject({ xattrs: '[["user.x","aGk="]]', flags: 16 });
    // Wiping the recorded attributes out of the row changes the digest: signing covers them.
    db.prepare('UPDATE entries SET xattrs = NULL WHERE gen = ?').run(g2);
    expect(computeGenerationDigest(db, { id: g2, ...h2 }).digest).not.toBe(d2.digest);
    db.prepare('UPDATE entries SET xattrs = ?, flags = 0 WHERE gen = ?').run('[["user.x","aGk="]]', g2);
    expect(computeGenerationDigest(db, { id: g2, ...h2 }).digest).not.toBe(d2.digest);
  });

  it('all pending migrations run in one go, and a store from a newer integ is refused (16)', () => {
    const db = new Database(':memory:');
    migrate(db);
    expect(version(db)).toBe(SCHEMA_VERSION);
    migrate(db); // idempotent
    expect(version(db)).toBe(SCHEMA_VERSION);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    expect(() => migrate(db)).toThrow(TrustError);
  });
});
