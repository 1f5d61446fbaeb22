import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { pruneGenerations } from '../../src/app/prune.js';
import { mergeDiff } from '../../src/app/store-diff.js';
import { chainProblems } from '../../src/app/trust-gate.js';
import type { EntryRecord } from '../../src/core/types.js';
import { BaselineRepo, type StoredEntry } from '../../src/store/baseline-repo.js';
import { migrate } from '../../src/store/db.js';
import { computeGenerationDigest } from '../../src/store/generation-digest.js';
import { RunRepo } from '../../src/store/run-repo.js';
import { UsageError } from '../../src/util/errors.js';

const rec = (p: string | Buffer, over: Partial<EntryRecord> = {}): EntryRecord => ({
  path: typeof p === 'string' ? Buffer.from(p) : p,
  type: 'file',
  mode: 0o644,
  uid: 0,
  gid: 0,
  size: 1n,
  mtimeNs: 1n,
  ctimeNs: 2n,
  inode: 3n,
  nlink: 1,
  target: null,
  blake3: 'aa',
  sha256: null,
  ...over,
});

function store(): { db: Database.Database; repo: BaselineRepo; runs: RunRepo; add: (entries: EntryRecord[]) => number } {
  const db = new Database(':memory:');
  db.pragma('foreign_keys = ON');
  migrate(db);
  const repo = new BaselineRepo(db);
  const runs = new RunRepo(db);
  const add = (entries: EntryRecord[]): number => {
    const parent = repo.current();
    const h = {
      createdAt: new Date().toISOString(),
      kind: 'baseline' as const,
      user: 'root',
      uid: 0,
      hostname: 'h',
      note: null,
      root: '/',
      policySource: 'p',
      policyText: 'p',
      policyDigest: 'blake3:p',
      hashAlgos: 'blake3',
      parentId: parent?.id ?? null,
      parentDigest: parent?.digest ?? null,
      toolVersion: 't',
    };
    const id = repo.begin(h);
    for (const e of entries) repo.insert(id, 'r', e, null);
    const d = computeGenerationDigest(db, { id, ...h });
    repo.finish(id, d, d.digest, null, null);
    return id;
  };
  return { db, repo, runs, add };
}

const run = (runs: RunRepo, gen: number, digest: string): number =>
  runs.record(
    {
      kind: 'check',
      startedAt: 't0',
      finishedAt: 't1',
      gen,
      baselineDigest: digest,
      user: 'root',
      uid: 0,
      hostname: 'h',
      root: '/',
      policyDigest: 'blake3:p',
      scanned: 1,
      added: 1,
      removed: 0,
      changed: 0,
      errors: 1,
      exitCode: 9,
      findingsDigest: 'blake3:f',
      evidence: null,
    },
    [{ path: Buffer.from('/x'), kind: 'added', rule: 'r', severity: 'high', attributes: [], before: null, after: rec('/x') }],
    [{ path: Buffer.from('/y'), code: 'EACCES', message: 'permission denied' }],
  );

describe('BaselineRepo additions', () => {
  it('entriesByPath yields in byte order (non-UTF-8 names after ASCII), copyEntries and deleteEntry work inside SQLite', () => {
    const { repo, add } = store();
    const odd = Buffer.from([0x2f, 0x65, 0xff]); // "/e\xff"
    const g = add([rec('/e/b'), rec(odd), rec('/e'), rec('/e/a')]);
    expect([...repo.entriesByPath(g)].map((e) => e.rec.path.toString('hex'))).toEqual(
      [Buffer.from('/e'), Buffer.from('/e/a'), Buffer.from('/e/b'), odd].map((b) => b.toString('hex')),
    );
    const g2 = repo.begin({ ...repo.get(g)!, parentId: g, parentDigest: repo.get(g)!.digest });
    expect(repo.copyEntries(g, g2)).toBe(4);
    expect(repo.deleteEntry(g2, Buffer.from('/e/a'))).toBe(1);
    expect(repo.deleteEntry(g2, Buffer.from('/nope'))).toBe(0);
    expect([...repo.entriesByPath(g2)].map((e) => e.rec.path.toString('latin1'))).toEqual(['/e', '/e/b', '/e\xff']);
    expect([...repo.entriesByPath(g)]).toHaveLength(4); // the source generation is untouched
    expect(repo.lookup(g2, odd)?.rec.blake3).toBe('aa');
  });

  it("RunRepo.errors lists a run's unreadable entries; deleteForGeneration drops runs with their findings and errors", () => {
    const { db, repo, runs, add } = store();
    const g = add([rec('/a')]);
    const id = run(runs, g, repo.get(g)!.digest);
    expect(runs.errors(id)).toEqual([{ path: Buffer.from('/y'), code: 'EACCES', message: 'permission denied' }]);
    expect(runs.deleteForGeneration(g)).toBe(1);
    expect(runs.last()).toBeNull();
    expect(db.prepare('SELECT (SELECT count(*) FROM run_findings) + (SELECT count(*) FROM run_errors) AS n').get()).toEqual({ n: 0 });
  });
});

describe('pruneGenerations', () => {
  it('keeps the newest N, anchors the chain on the pruned digests, drops their runs; the chain check still passes', () => {
    const { db, repo, runs, add } = store();
    const ids = [add([rec('/a')]), add([rec('/a', { size: 2n })]), add([rec('/a', { size: 3n })]), add([rec('/b')])];
    const digests = ids.map((id) => repo.get(id)!.digest);
    run(runs, ids[0]!, digests[0]!);
    const keptRun = run(runs, ids[3]!, digests[3]!);
    expect(chainProblems(db).problems).toEqual([]);

    const r = pruneGenerations(db, 2, 'T');
    expect(r.pruned).toEqual([
      { id: ids[0], digest: digests[0] },
      { id: ids[1], digest: digests[1] },
    ]);
    expect(r.kept.map((g) => g.id)).toEqual([ids[2], ids[3]]);
    expect(r.runsDeleted).toBe(1);
    expect(repo.list().map((g) => g.id)).toEqual([ids[2], ids[3]]);
    expect(repo.prunedAnchors().map((a) => a.id)).toEqual([ids[0], ids[1]]);
    expect(db.prepare('SELECT count(*) AS n FROM entries WHERE gen IN (?, ?)').get(ids[0], ids[1])).toEqual({ n: 0 });
    expect(runs.last()?.id).toBe(keptRun);
    const chain = chainProblems(db);
    expect(chain.problems).toEqual([]);
    expect(chain.anchor).toEqual({ id: ids[1], digest: digests[1] });

    // Without its anchor the oldest kept generation no longer links: the check must notice.
    db.prepare('DELETE FROM pruned WHERE id = ?').run(ids[1]);
    expect(chainProblems(db).problems.join('\n')).toMatch(/parent #2 is missing and not recorded as pruned/);
  });

  it('a dry run changes nothing; --keep below 1 is a usage error; keeping more than exist prunes nothing', () => {
    const { db, repo, add } = store();
    add([rec('/a')]);
    add([rec('/a', { size: 5n })]);
    expect(pruneGenerations(db, 1, 'T', true).pruned).toHaveLength(1);
    expect(repo.list()).toHaveLength(2);
    expect(() => pruneGenerations(db, 0, 'T')).toThrow(UsageError);
    expect(pruneGenerations(db, 5, 'T').pruned).toEqual([]);
  });
});

describe('mergeDiff', () => {
  const se = (r: EntryRecord): StoredEntry => ({ rowid: 0, rule: 'r', error: null, rec: r });

  it('reports only-in-A as removed, only-in-B as added, and the differing attributes of common paths', () => {
    const a = [rec('/a'), rec('/b'), rec('/c', { mode: 0o600 }), rec('/d')].map(se);
    const b = [rec('/b'), rec('/c', { mode: 0o644, blake3: 'bb' }), rec('/d'), rec('/e')].map(se);
    const it = mergeDiff(a, b, ['content', 'mode', 'size']);
    const out = [];
    let step = it.next();
    while (!step.done) {
      out.push(step.value);
      step = it.next();
    }
    expect(out.map((d) => [d.path.toString(), d.kind, d.attributes])).toEqual([
      ['/a', 'removed', []],
      ['/c', 'changed', ['content', 'mode']],
      ['/e', 'added', []],
    ]);
    expect(step.value).toEqual({ added: 1, removed: 1, changed: 1, entriesA: 4, entriesB: 4 });
  });

  it('ignores attributes not asked for, and streams: it pulls no further ahead than the merge needs', () => {
    let pulledA = 0;
    let pulledB = 0;
    function* side(n: number, count: () => void, firstInode: bigint): Generator<StoredEntry> {
      for (let i = 0; i < n; i++) {
        count();
        yield se(rec(`/f${String(i).padStart(6, '0')}`, { inode: i === 0 ? firstInode : 1n, mtimeNs: BigInt(i) }));
      }
    }
    const it = mergeDiff(
      side(100_000, () => pulledA++, 7n),
      side(100_000, () => pulledB++, 8n),
      ['inode'],
    );
    const first = it.next();
    expect(first.done).toBe(false);
    expect(first.value).toMatchObject({ kind: 'changed', attributes: ['inode'] });
    expect(pulledA).toBeLessThanOrEqual(2);
    expect(pulledB).toBeLessThanOrEqual(2);
    it.return(undefined as never);
    const quiet = mergeDiff([rec('/a', { inode: 1n })].map(se), [rec('/a', { inode: 2n })].map(se), ['content', 'mode']);
    expect(quiet.next()).toEqual({ done: true, value: { added: 0, removed: 0, changed: 0, entriesA: 1, entriesB: 1 } });
  });
});
