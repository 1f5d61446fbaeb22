import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { integ as run } from '../helpers/cli.js';
import { tamperDb } from '../helpers/tamper.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/trust/keys.js';

/** The shared helper, with the exit status under the name these tests use. */
const integ = (...args: string[]) => {
  const r = run(args);
  return { ...r, status: r.code };
};
const q = (db: string, sql: string): unknown => {
  const d = new Database(db, { readonly: true });
  try {
    return d.prepare(sql).get();
  } finally {
    d.close();
  }
};

let dir: string;
let tree: string;
let policy: string;
let golden: string; // four signed generations, a check run against each
let key: string;
let pub: string;
let n = 0;
const check = (db: string, ...extra: string[]) => integ('check', '--db', db, '--policy', policy, '--jobs', '0', '--no-snapshot', ...extra);
const copy = (): string => {
  const f = path.join(dir, `c${++n}.db`);
  fs.copyFileSync(golden, f);
  return f;
};

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-prune-'));
  tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  policy = path.join(dir, 'p.yml');
  fs.writeFileSync(policy, `version: 1\nrules:\n  - name: t\n    paths: ["${tree}/**"]\n`);
  ({ privatePath: key, publicPath: pub } = await generateKeyPair(path.join(dir, 'k')));
  golden = path.join(dir, 'golden.db');
  for (let i = 1; i <= 4; i++) {
    // Bulk, so pruning frees something measurable.
    for (let j = 0; j < 50; j++) fs.writeFileSync(path.join(tree, `f${j}`), `${i}:${j}\n`);
    expect(integ('baseline', '--db', golden, '--policy', policy, '--jobs', '0', '--sign-key', key, '--note', `g${i}`).status).toBe(0);
    expect(check(golden).status).toBe(0);
  }
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('integ prune', () => {
  it('keeps the newest N and verification keeps working: chain anchored, signatures checked, runs of pruned generations gone', () => {
    const f = copy();
    const r = integ('prune', '--keep', '2', '--db', f, '--format', 'json');
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.pruned.map((p: { generation: number }) => p.generation)).toEqual([1, 2]);
    expect(j.kept.map((p: { generation: number }) => p.generation)).toEqual([3, 4]);
    expect(j.runs_deleted).toBe(2);
    const h = JSON.parse(integ('history', '--db', f, '--format', 'json').stdout);
    expect(h.generations.map((g: { generation: number }) => g.generation)).toEqual([3, 4]);
    expect(h.pruned.map((p: { generation: number; digest: string }) => p.generation)).toEqual([1, 2]);
    expect(h.pruned[1].digest).toBe(h.generations[0].parent.digest);
    expect(q(f, 'SELECT count(*) AS n FROM runs WHERE gen IN (1, 2)')).toEqual({ n: 0 });
    expect(q(f, 'SELECT count(*) AS n FROM runs WHERE gen IN (3, 4)')).toEqual({ n: 2 });
    expect(q(f, 'SELECT count(*) AS n FROM entries WHERE gen IN (1, 2)')).toEqual({ n: 0 });
    const c = check(f, '--verify-key', pub);
    expect(c.status, c.stderr).toBe(0);
    // Pruning down to the current generation still verifies.
    expect(integ('prune', '--keep', '1', '--db', f).status).toBe(0);
    expect(check(f, '--verify-key', pub).status).toBe(0);
  });

  it('the anchor matters: a deleted or edited pruned record breaks the chain (16)', () => {
    const f = copy();
    expect(integ('prune', '--keep', '2', '--db', f).status).toBe(0);
    tamperDb(f, "UPDATE pruned SET digest = 'blake3:00' WHERE id = 2");
    const r = check(f, '--verify-key', pub);
    expect(r.status).toBe(16);
    expect(r.stderr).toMatch(/generation #3: records parent digest .* but generation #2 \(pruned anchor\) has blake3:00/);
  });

  it('--vacuum gives the space back; --dry-run changes nothing; --keep 0 is a usage error', () => {
    const f = copy();
    const dry = integ('prune', '--keep', '1', '--dry-run', '--db', f);
    expect(dry.status).toBe(0);
    expect(dry.stdout).toMatch(/would prune 3 generations \(#1, #2, #3\)/);
    expect(q(f, 'SELECT count(*) AS n FROM generations')).toEqual({ n: 4 });
    const before = fs.statSync(f).size;
    const r = integ('prune', '--keep', '1', '--vacuum', '--db', f, '--format', 'json');
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).vacuumed).toBe(true);
    expect(fs.statSync(f).size).toBeLessThan(before);
    const bad = integ('prune', '--keep', '0', '--db', f);
    expect(bad.status).toBe(64);
    expect(integ('prune', '--db', f).status).toBe(64);
  });

  it('refuses to prune a store whose chain is already broken (16), pruning nothing', () => {
    const f = copy();
    tamperDb(f, 'DELETE FROM generations WHERE id = 3');
    const r = integ('prune', '--keep', '1', '--db', f);
    expect(r.status).toBe(16);
    expect(r.stderr).toMatch(/nothing pruned/);
    expect(q(f, 'SELECT count(*) AS n FROM generations')).toEqual({ n: 3 });
    expect(q(f, 'SELECT count(*) AS n FROM pruned')).toEqual({ n: 0 });
  });
});
