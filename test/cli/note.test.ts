import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { integ, tmpdir, writePolicy } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function setup() {
  const dir = tmpdir();
  dirs.push(dir);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  fs.writeFileSync(path.join(tree, 'a'), 'a\n');
  const db = path.join(dir, 's.db');
  const policy = writePolicy(dir, tree);
  expect(integ(['baseline', '--db', db, '--policy', policy]).code).toBe(0);
  return { dir, db, policy, check: (...a: string[]) => integ(['check', '--db', db, '--policy', policy, '--no-snapshot', ...a]) };
}

const sql = (db: string, q: string, ...args: unknown[]) => {
  const d = new Database(db);
  try {
    return d.prepare(q).run(...args).changes;
  } finally {
    d.close();
  }
};

describe('integ note', () => {
  it('appends hash-chained notes with who, when and host', () => {
    const t = setup();
    const a = integ(['note', '--db', t.db, 'host isolated', 'by NOC']);
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/^note #1 recorded \S+ by \S+@\S+\ndigest blake3:[0-9a-f]{64}\n$/);
    const b = JSON.parse(integ(['note', '--db', t.db, '--format', 'json', 'second note']).stdout);
    expect(b).toMatchObject({ schema: 'integ.note/1', id: 2, text: 'second note', signed: false });
    expect(b.prev_digest).toBe(a.stdout.match(/digest (\S+)/)![1]);
    expect(t.check().code).toBe(0);
  });

  it('64 without text', () => {
    const t = setup();
    const r = integ(['note', '--db', t.db]);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/^integ: a note needs TEXT/);
  });

  it.each([
    ['an edited text', "UPDATE notes SET text = 'nothing happened' WHERE id = 1", /note #1: its text, time or author does not match/],
    ['a deleted note in the middle', 'DELETE FROM notes WHERE id = 2', /note #3: does not link to note #1/],
    ['an edited time', "UPDATE notes SET created_at = '2020-01-01T00:00:00.000Z' WHERE id = 3", /note #3: its text, time or author/],
  ])('%s makes the trust gate fail with 16 (check, note)', (_what, tamper, msg) => {
    const t = setup();
    for (const n of ['one', 'two', 'three']) expect(integ(['note', '--db', t.db, n]).code).toBe(0);
    expect(sql(t.db, tamper)).toBe(1);
    const c = t.check();
    expect(c.code).toBe(16);
    expect(c.stderr).toMatch(msg);
    const n = integ(['note', '--db', t.db, 'four']);
    expect(n.code).toBe(16);
    expect(n.stderr).toContain('nothing added');
  });

  it('signed notes verify with the key; a forged signature or a dropped one fails with 16', () => {
    const t = setup();
    const key = path.join(t.dir, 'k');
    expect(integ(['keygen', '--out', key]).code).toBe(0);
    // Re-baseline signed so check --verify-key has a signed generation.
    expect(integ(['baseline', '--db', t.db, '--policy', t.policy, '--sign-key', key]).code).toBe(0);
    expect(integ(['note', '--db', t.db, '--sign-key', key, 'signed one']).code).toBe(0);
    expect(integ(['note', '--db', t.db, '--sign-key', key, 'signed two']).code).toBe(0);
    expect(t.check('--verify-key', `${key}.pub`).code).toBe(0);
    expect(sql(t.db, 'UPDATE notes SET signature = (SELECT signature FROM notes WHERE id = 1) WHERE id = 2')).toBe(1);
    const bad = t.check('--verify-key', `${key}.pub`);
    expect(bad.code).toBe(16);
    expect(bad.stderr).toContain('note #2: signature does not verify');
    expect(sql(t.db, 'UPDATE notes SET signature = NULL, key_id = NULL WHERE id = 2')).toBe(1);
    const dropped = t.check('--verify-key', `${key}.pub`);
    expect(dropped.code).toBe(16);
    expect(dropped.stderr).toContain('note #2 is not signed, though an earlier note is');
  });
});
