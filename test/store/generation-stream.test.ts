import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { EntryRecord } from '../../src/core/types.js';
import { BaselineRepo } from '../../src/store/baseline-repo.js';
import { migrate } from '../../src/store/db.js';
import { computeGenerationDigest } from '../../src/store/generation-digest.js';
import { GenerationStream } from '../../src/store/generation-stream.js';
import { tmpdir } from '../helpers/cli.js';

const dir = tmpdir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A store file with one generation of `n` varied rows (every column type, NULLs and not, a non-UTF-8 name). */
function makeStore(name: string, n: number): { file: string; paths: Buffer[] } {
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
    repo.insert(id, `rule${i % 3}`, r, i % 9 === 0 ? 'EACCES' : null);
    paths.push(p);
  }
  const d = computeGenerationDigest(db, { id, ...h });
  repo.finish(id, d, d.digest, null, null);
  db.exec('COMMIT');
  db.close();
  return { file, paths: paths.sort(Buffer.compare) };
}

describe('GenerationStream (the generation read, digested and handed over by a worker thread)', () => {
  it('hands out every row exactly as the store has it, across many batches with backpressure, and the digest of those rows', async () => {
    const { file, paths } = makeStore('s1.db', 2500);
    const db = new Database(file, { readonly: true });
    const repo = new BaselineRepo(db);
    const gen = repo.current()!;
    const s = new GenerationStream(file, gen, repo, { batch: 97, window: 2 });
    try {
      let found = 0;
      for (const [i, p] of paths.entries()) {
        // a path the generation lacks, between two it has
        if (i % 50 === 0) {
          const missing = Buffer.concat([p, Buffer.from('-')]);
          if (i + 1 < paths.length && Buffer.compare(missing, paths[i + 1]!) < 0) {
            if (i > 0) {
              await s.ready(p);
              expect(s.lookup(p)).toEqual(repo.lookup(gen.id, p));
              found++;
            }
            await s.ready(missing);
            expect(s.lookup(missing)).toBeUndefined();
            continue;
          }
        }
        await s.ready(p);
        const got = s.lookup(p);
        expect(got).toBeDefined();
        expect(got).toEqual(repo.lookup(gen.id, p));
        found++;
      }
      expect(found).toBeGreaterThan(2400);
      // out of order: answered by a direct query on the main connection
      await s.ready(paths[0]!);
      expect(s.lookup(paths[0]!)).toEqual(repo.lookup(gen.id, paths[0]!));
      const d = await s.finish();
      expect(d).toEqual(computeGenerationDigest(db, gen));
      expect(d.digest).toBe(gen.digest);
      expect(d.entryCount).toBe(2500);
    } finally {
      await s.close();
      db.close();
    }
  });

  it('finish() drains unread rows: the digest covers the whole generation even when nothing was looked up', async () => {
    const { file } = makeStore('s2.db', 1000);
    const db = new Database(file, { readonly: true });
    const repo = new BaselineRepo(db);
    const s = new GenerationStream(file, repo.current()!, repo, { batch: 10, window: 1 });
    try {
      expect((await s.finish()).digest).toBe(repo.current()!.digest);
    } finally {
      await s.close();
      db.close();
    }
  });

  it('a walk that skips far more rows than the window holds (a removed directory) neither stalls nor loses them', async () => {
    const { file, paths } = makeStore('s5.db', 3000);
    const db = new Database(file, { readonly: true });
    const repo = new BaselineRepo(db);
    const gen = repo.current()!;
    const s = new GenerationStream(file, gen, repo, { batch: 10, window: 2 });
    try {
      const asked = [paths[5]!, paths[1700]!, paths[2999]!];
      for (const p of asked) {
        await s.ready(p);
        expect(s.lookup(p)?.rec.path.equals(p)).toBe(true);
      }
      expect((await s.finish()).digest).toBe(gen.digest);
      const unmatched = s.unmatched().map((e) => e.rec.path.toString('hex'));
      expect(unmatched).toEqual(paths.filter((p) => !asked.includes(p)).map((p) => p.toString('hex')));
    } finally {
      await s.close();
      db.close();
    }
  });

  it('an edited row changes the digest the worker computes (what check verifies before using anything)', async () => {
    const { file, paths } = makeStore('s3.db', 300);
    const w = new Database(file);
    const before = w.prepare('SELECT xattrs FROM entries WHERE path = ?').pluck().get(paths[150]);
    const changed = w.prepare(`UPDATE entries SET xattrs = '[["security.capability","AAAA"]]' WHERE path = ?`).run(paths[150]).changes;
    expect(changed).toBe(1);
    expect(w.prepare('SELECT xattrs FROM entries WHERE path = ?').pluck().get(paths[150])).not.toBe(before);
    w.close();
    const db = new Database(file, { readonly: true });
    const repo = new BaselineRepo(db);
    const gen = repo.current()!;
    const s = new GenerationStream(file, gen, repo, { batch: 64 });
    try {
      await s.ready(paths[150]!);
      expect(s.lookup(paths[150]!)?.rec.xattrs).toBe('[["security.capability","AAAA"]]');
      const d = await s.finish();
      expect(d.digest).not.toBe(gen.digest);
      expect(d.digest).toBe(computeGenerationDigest(db, gen).digest);
    } finally {
      await s.close();
      db.close();
    }
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
});
