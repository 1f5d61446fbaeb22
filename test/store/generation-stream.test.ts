import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { EntryRecord } from '../../src/core/types.js';
import { BaselineRepo, type Generation } from '../../src/store/baseline-repo.js';
import { migrate } from '../../src/store/db.js';
import { computeGenerationDigest } from '../../src/store/generation-digest.js';
import { GenerationStream, type StoredRef } from '../../src/store/generation-stream.js';
import { cmpText } from '../../src/core/entry-cmp.js';
import { tmpdir } from '../helpers/cli.js';

const dir = tmpdir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A store file with one generation of `n` varied rows (every column type, NULLs and not, a non-UTF-8 name). */
function makeStore(name: string, n: number, make?: (i: number) => { rec: EntryRecord; rule: string; error: string | null }): { file: string; paths: Buffer[] } {
  const file = path.join(dir, name);
  const db = new Database(file);
  migrate(db);
  const repo = new BaselineRepo(db);
  const h = {
    createdAt: '2026-01-01T00:00:00Z',
    kind: 'baseline' as const,
    user: 'root',
    uid: 0,
    hostname: 'h',
    note: null,
    root: '/',
    policySource: 'p',
    policyText: 'p',
    policyDigest: 'blake3:p',
    hashAlgos: 'blake3,sha256',
    parentId: null,
    parentDigest: null,
    toolVersion: 't',
  };
  db.exec('BEGIN');
  const id = repo.begin(h);
  const paths: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const p = i === 7 ? Buffer.from([0x2f, 0x64, 0x30, 0x30, 0xff, 0xfe]) : Buffer.from(`/d${String(i).padStart(5, '0')}`);
    const kind = i % 4;
    const r: EntryRecord = {
      path: p,
      type: kind === 1 ? 'symlink' : kind === 2 ? 'dir' : 'file',
      mode: 0o644 + (i % 3),
      uid: 1000 + i,
      gid: 4_000_000_000,
      size: BigInt(i) * 1_000_003n,
      mtimeNs: 1_700_000_000_123_456_789n + BigInt(i),
      ctimeNs: 1_700_000_001_000_000_000n,
      inode: i === 3 ? 2n ** 63n + 5n : BigInt(i + 11),
      nlink: 1 + (i % 5),
      target: kind === 1 ? Buffer.from(i % 8 === 1 ? '' : `t${i}`) : null,
      blake3: kind === 0 ? `b3-${i}` : null,
      sha256: kind === 0 && i % 3 === 0 ? `s-${i}` : null,
      xattrs: i % 5 === 0 ? null : i % 5 === 1 ? '[]' : `[["user.k","v${i}"]]`,
      flags: i % 6 === 0 ? null : i % 6 === 1 ? -1 : 0x80000 + i,
    };
    const m = make?.(i);
    repo.insert(id, m?.rule ?? `rule${i % 3}`, m?.rec ?? r, m ? m.error : i % 9 === 0 ? 'EACCES' : null);
    paths.push(m?.rec.path ?? p);
  }
  const d = computeGenerationDigest(db, { id, ...h });
  repo.finish(id, d, d.digest, null, null);
  db.exec('COMMIT');
  db.close();
  return { file, paths: paths.sort(Buffer.compare) };
}

/** The full entry behind a ref, checked to carry the compare text the reader handed over. */
function full(s: GenerationStream, ref: StoredRef | undefined) {
  if (!ref) return undefined;
  const e = s.entry(ref);
  expect(ref.cmp.subarray(ref.cmpStart, ref.cmpEnd).toString()).toBe(cmpText(e.rec));
  return e;
}

/** Open a stream over the store's current generation, run fn, and close both whatever happens. */
async function withStream(
  file: string,
  opts: { batch?: number; window?: number },
  fn: (s: GenerationStream, c: { db: Database.Database; repo: BaselineRepo; gen: Generation }) => Promise<void>,
): Promise<void> {
  const db = new Database(file, { readonly: true });
  const repo = new BaselineRepo(db);
  const gen = repo.current()!;
  const s = new GenerationStream(file, gen, repo, opts);
  try {
    await fn(s, { db, repo, gen });
  } finally {
    await s.close();
    db.close();
  }
}

describe('GenerationStream (the generation read, digested and handed over by a worker thread)', () => {
  it('hands out every row exactly as the store has it, across many batches with backpressure, and the digest of those rows', async () => {
    const { file, paths } = makeStore('s1.db', 2500);
    await withStream(file, { batch: 97, window: 2 }, async (s, { db, repo, gen }) => {
      let found = 0;
      for (const [i, p] of paths.entries()) {
        // a path the generation lacks, between two it has
        if (i % 50 === 0) {
          const missing = Buffer.concat([p, Buffer.from('-')]);
          if (i + 1 < paths.length && Buffer.compare(missing, paths[i + 1]!) < 0) {
            if (i > 0) {
              await s.ready(p);
              expect(full(s, s.lookup(p))).toEqual(repo.lookup(gen.id, p));
              found++;
            }
            await s.ready(missing);
            expect(s.lookup(missing)).toBeUndefined();
            continue;
          }
        }
        await s.ready(p);
        const got = s.lookup(p);
        expect(got?.fast).toBe(true);
        expect(full(s, got)).toEqual(repo.lookup(gen.id, p));
        found++;
      }
      expect(found).toBeGreaterThan(2400);
      // out of order: answered by a direct query on the main connection
      await s.ready(paths[0]!);
      expect(full(s, s.lookup(paths[0]!))).toEqual(repo.lookup(gen.id, paths[0]!));
      const d = await s.finish();
      expect(d).toEqual(computeGenerationDigest(db, gen));
      expect(d.digest).toBe(gen.digest);
      expect(d.entryCount).toBe(2500);
    });
  });

  it('finish() drains unread rows: the digest covers the whole generation even when nothing was looked up', async () => {
    const { file } = makeStore('s2.db', 1000);
    await withStream(file, { batch: 10, window: 1 }, async (s, { repo }) => {
      expect((await s.finish()).digest).toBe(repo.current()!.digest);
    });
  });

  it('a walk that skips far more rows than the window holds (a removed directory) neither stalls nor loses them', async () => {
    const { file, paths } = makeStore('s5.db', 3000);
    await withStream(file, { batch: 10, window: 2 }, async (s, { gen }) => {
      const asked = [paths[5]!, paths[1700]!, paths[2999]!];
      for (const p of asked) {
        await s.ready(p);
        expect(s.lookup(p)?.path.equals(p)).toBe(true);
      }
      expect((await s.finish()).digest).toBe(gen.digest);
      const unmatched = s.unmatched().map((e) => e.path.toString('hex'));
      for (const e of s.unmatched().slice(0, 50)) expect(full(s, e)?.rec.path.equals(e.path)).toBe(true);
      expect(unmatched).toEqual(paths.filter((p) => !asked.includes(p)).map((p) => p.toString('hex')));
    });
  });

  it('an edited row changes the digest the worker computes (what check verifies before using anything)', async () => {
    const { file, paths } = makeStore('s3.db', 300);
    const w = new Database(file);
    const before = w.prepare('SELECT xattrs FROM entries WHERE path = ?').pluck().get(paths[150]);
    const changed = w.prepare(`UPDATE entries SET xattrs = '[["security.capability","AAAA"]]' WHERE path = ?`).run(paths[150]).changes;
    expect(changed).toBe(1);
    expect(w.prepare('SELECT xattrs FROM entries WHERE path = ?').pluck().get(paths[150])).not.toBe(before);
    w.close();
    await withStream(file, { batch: 64 }, async (s, { db, gen }) => {
      await s.ready(paths[150]!);
      expect(full(s, s.lookup(paths[150]!))?.rec.xattrs).toBe('[["security.capability","AAAA"]]');
      const d = await s.finish();
      expect(d.digest).not.toBe(gen.digest);
      expect(d.digest).toBe(computeGenerationDigest(db, gen).digest);
    });
  });

  it('a store the worker cannot read is an error from ready()/finish(), not a hang', async () => {
    const { file } = makeStore('s4.db', 10);
    const db = new Database(file, { readonly: true });
    const repo = new BaselineRepo(db);
    const gen = repo.current()!;
    const s = new GenerationStream(path.join(dir, 'nope.db'), gen, repo);
    try {
      await expect(s.finish()).rejects.toThrow(/no baseline yet|does not exist/);
    } finally {
      await s.close();
      db.close();
    }
  });

  /** A deterministic generator (mulberry32), so a failure replays. */
  function rng(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  /** Random rows of every shape integ writes, with the edges of each column. */
  function randomRow(r: () => number, i: number): { rec: EntryRecord; rule: string; error: string | null } {
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const big = (): bigint => pick([0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), BigInt(Math.floor(r() * 2 ** 52)) * 1000n + BigInt(i), -1_000_000_000_000n]);
    const hex = (n: number): string => Array.from({ length: n }, () => '0123456789abcdef'[Math.floor(r() * 16)]).join('');
    const name = Buffer.from(Array.from({ length: 1 + Math.floor(r() * 12) }, () => pick([0x61, 0x7a, 0x20, 0x0a, 0x2d, 0xc3, 0xa9, 0xff, 0x80, 0x22, 0x5c])));
    const type = pick(['file', 'dir', 'symlink', 'fifo', 'socket', 'chardev', 'blockdev', 'unknown'] as const);
    return {
      rule: pick(['etc', 'rule with spaces', 'régle', 'x"y', '']),
      error: pick([null, null, null, 'EACCES', 'ECHANGED', 'ERR_FS_FILE_TOO_LARGE']),
      rec: {
        path: Buffer.concat([Buffer.from(`/r${String(i).padStart(5, '0')}/`), name]),
        type,
        mode: pick([0, 0o644, 0o7777, 0o755]),
        uid: pick([0, 1000, 65534, 4294967295]),
        gid: pick([0, 4294967294]),
        size: pick([0n, 1n, 2n ** 40n, BigInt(Math.floor(r() * 2 ** 30))]),
        mtimeNs: big(),
        ctimeNs: big(),
        inode: pick([1n, 2n ** 64n - 1n, 2n ** 63n, 123456789n]),
        nlink: pick([0, 1, 65000, 4294967295]),
        target: pick([null, Buffer.alloc(0), Buffer.from('../x y'), Buffer.from([0xff, 0x0a, 0x00])]),
        blake3: pick([null, hex(64), hex(64)]),
        sha256: pick([null, hex(64)]),
        xattrs: pick([null, '[]', 'unsupported', '[["user.k","dmFs dWU="]]', '[["security.capability","AQAAAgAgAAAAAAAAAAAAAAAAAAA="],["user.q y","eA=="]]']),
        flags: pick([null, -1, 0, 0x80000, 2147483647, -2147483648, 4294967295]),
      },
    };
  }

  it('hands over SQLite-made lines and compare texts identical to the JavaScript ones for random rows of every shape (property)', async () => {
    for (const seed of [1, 2, 3]) {
      const r = rng(seed);
      const { file, paths } = makeStore(`prop${seed}.db`, 1500, (i) => randomRow(r, i));
      const db = new Database(file, { readonly: true });
      const repo = new BaselineRepo(db);
      const gen = repo.current()!;
      const s = new GenerationStream(file, gen, repo, { batch: 128, window: 2 });
      try {
        for (const p of paths) {
          await s.ready(p);
          const ref = s.lookup(p);
          // every row is of a shape integ writes: SQLite made its texts
          expect(ref?.fast).toBe(true);
          expect(full(s, ref)).toEqual(repo.lookup(gen.id, p));
        }
        // the digest JavaScript recorded at baseline time, recomputed from SQLite's lines
        expect((await s.finish()).digest).toBe(gen.digest);
      } finally {
        await s.close();
        db.close();
      }
    }
  });

  it('rows whose digest line is longer than the digester stages at once (64 KiB) digest as SQLite’s lines do', async () => {
    const long = new Set([5, 6, 40]);
    const { file } = makeStore('long.db', 120, (i) => {
      const base = randomRow(rng(i + 900), i);
      if (!long.has(i)) return base;
      // printable ASCII without a backslash: SQLite makes these lines too; 25,000 and 70,000 characters
      const v = 'abc d~='.repeat(i === 40 ? 10_000 : 3_600);
      return { ...base, rule: 'régle', rec: { ...base.rec, xattrs: `[["user.big",${JSON.stringify(v)}]]` } };
    });
    await withStream(file, { batch: 16, window: 2 }, async (s, { gen }) => {
      expect((await s.finish()).digest).toBe(gen.digest);
    });
  });

  it('a batch with a row of another shape is read row by row: same digest, same entries, compared in full', async () => {
    const odd = new Set([3, 250, 251]);
    const { file, paths } = makeStore('odd.db', 400, (i) => {
      const base = randomRow(rng(i + 100), i);
      if (!odd.has(i)) return base;
      const rec = { ...base.rec };
      if (i === 3) rec.xattrs = '[["user.é","\\\\"]]'; // non-ASCII and a backslash
      if (i === 250) rec.blake3 = 'has a space';
      if (i === 251) rec.type = 'weird' as EntryRecord['type'];
      return { ...base, rec };
    });
    await withStream(file, { batch: 100, window: 2 }, async (s, { repo, gen }) => {
      const fast: boolean[] = [];
      for (const p of paths) {
        await s.ready(p);
        const ref = s.lookup(p)!;
        fast.push(ref.fast);
        expect(full(s, ref)).toEqual(repo.lookup(gen.id, p));
      }
      // batches 1 and 3 (rows 0-99 and 200-299) had odd rows; 2 and 4 did not
      expect(fast.slice(0, 100).every((f) => !f)).toBe(true);
      expect(fast.slice(100, 200).every((f) => f)).toBe(true);
      expect(fast.slice(200, 300).every((f) => !f)).toBe(true);
      expect(fast.slice(300).every((f) => f)).toBe(true);
      expect((await s.finish()).digest).toBe(gen.digest);
    });
  });

  it('a store from before migration 3 (no xattrs/flags columns) digests as the row-by-row digest does', async () => {
    const { file } = makeStore('m2.db', 300);
    const w = new Database(file);
    // what integ wrote before migration 3 (as test/cli/detect.test.ts makes it): schema 2's objects only
    for (const t of ['entries', 'run_findings']) for (const c of ['xattrs', 'flags']) w.exec(`ALTER TABLE ${t} DROP COLUMN ${c}`);
    const schema2 = new Set(['generations', 'entries', 'runs', 'run_findings', 'run_errors', 'pruned', 'accepts', 'accepted_paths']);
    for (const { name } of w.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as Array<{ name: string }>)
      if (!schema2.has(name)) w.exec(`DROP TABLE "${name}"`);
    w.pragma('user_version = 2');
    w.close();
    await withStream(file, { batch: 64 }, async (s, { db, gen }) => {
      expect(await s.finish()).toEqual(computeGenerationDigest(db, gen));
    });
  });

  it('a full entry is used only if it is still the row that was digested (a row changed meanwhile is refused)', async () => {
    const { file, paths } = makeStore('changed.db', 50);
    await withStream(file, { batch: 64 }, async (s, { repo, gen }) => {
      await s.ready(paths[20]!);
      const ref = s.lookup(paths[20]!)!;
      expect(full(s, ref)).toEqual(repo.lookup(gen.id, paths[20]!));
      const w = new Database(file);
      expect(w.prepare('UPDATE entries SET mode = mode + 1 WHERE path = ?').run(paths[20]).changes).toBe(1);
      w.close();
      expect(() => s.entry(ref)).toThrow(/changed while it was read/);
      await s.finish();
    });
  });
});
