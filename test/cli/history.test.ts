import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { integ as run } from '../helpers/cli.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The shared helper, with the exit status under the name these tests use. */
const integ = (...args: string[]) => {
  const r = run(args);
  return { ...r, status: r.code };
};
const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

let dir: string;
let tree: string;
let db: string;
let policy: string;

// One store for the file: baseline "first", then a changed, b removed, n added, accepted as "second".
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-history-'));
  tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  fs.writeFileSync(path.join(tree, 'a'), 'a\n');
  fs.writeFileSync(path.join(tree, 'b'), 'b\n');
  policy = path.join(dir, 'p.yml');
  fs.writeFileSync(policy, `version: 1\nrules:\n  - name: t\n    paths: ["${tree}/**"]\n`);
  db = path.join(dir, 's.db');
  expect(integ('baseline', '--db', db, '--policy', policy, '--jobs', '0', '--note', 'first').status).toBe(0);
  fs.writeFileSync(path.join(tree, 'a'), 'a, edited\n');
  fs.chmodSync(path.join(tree, 'a'), 0o600);
  fs.rmSync(path.join(tree, 'b'));
  fs.writeFileSync(path.join(tree, 'n'), 'n\n');
  expect(integ('check', '--db', db, '--policy', policy, '--jobs', '0', '--no-snapshot').status).toBe(7);
  expect(integ('accept', '--all', '--note', 'second', '--db', db, '--policy', policy).status).toBe(0);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('integ history', () => {
  it('lists every generation with number, time, user, kind, note, entries, digest and signed', () => {
    const r = integ('history', '--db', db, '--format', 'json');
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.schema).toBe('integ.history/1');
    expect(j.generations).toHaveLength(2);
    const [g1, g2] = j.generations;
    expect(g1).toMatchObject({
      generation: 1,
      kind: 'baseline',
      note: 'first',
      user: os.userInfo().username,
      entries: 3,
      signed: false,
      parent: null,
      accept: null,
    });
    expect(g2).toMatchObject({
      generation: 2,
      kind: 'accept',
      note: 'second',
      entries: 3,
      signed: false,
      parent: { generation: 1, digest: g1.digest },
      accept: { run: 1, paths: 3, forced: false },
    });
    expect(g1.created_at < g2.created_at).toBe(true);
    expect(j.current).toEqual({ generation: 2, digest: g2.digest });
    const t = integ('history', '--db', db);
    expect(t.stdout).toMatch(/^ {2}#1 +\S+Z {2}baseline/m);
    expect(t.stdout).toMatch(/^\* #2 +\S+Z {2}accept/m);
    expect(t.stdout).toContain('note: "second"');
    expect(t.stdout).toContain(`digest ${g2.digest}`);
  });

  it('history and show do not write to the store', () => {
    const before = sha(db);
    const mtime = fs.statSync(db).mtimeMs;
    expect(integ('history', '--db', db).status).toBe(0);
    expect(integ('show', path.join(tree, 'a'), '--db', db).status).toBe(0);
    expect(sha(db)).toBe(before);
    expect(fs.statSync(db).mtimeMs).toBe(mtime);
    expect(fs.existsSync(`${db}-wal`) && fs.statSync(`${db}-wal`).size > 0).toBe(false);
  });
});

describe('integ show', () => {
  it("prints a path's record in every generation and how it changed", () => {
    const r = integ('show', path.join(tree, 'a'), '--db', db, '--format', 'json');
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.path).toBe(path.join(tree, 'a'));
    expect(j.generations.map((g: { generation: number; change: string }) => [g.generation, g.change])).toEqual([
      [1, 'first'],
      [2, 'changed'],
    ]);
    expect(j.generations[0].record).toMatchObject({ type: 'file', mode: '0644', size: 2 });
    expect(j.generations[1].record).toMatchObject({ type: 'file', mode: '0600', size: 10 });
    expect(j.generations[1].attributes).toEqual(expect.arrayContaining(['content', 'mode', 'size']));
    expect(j.generations[1].accepted).toEqual({ kind: 'changed', recheck: 'same' });
    expect(j.generations[1].digest).toMatch(/^blake3:/);
  });

  it('shows removal and addition; text form names the generations', () => {
    const b = JSON.parse(integ('show', path.join(tree, 'b'), '--db', db, '--format', 'json').stdout);
    expect(b.generations.map((g: { change: string; record: unknown }) => [g.change, g.record === null])).toEqual([
      ['first', false],
      ['removed', true],
    ]);
    const n = integ('show', `${path.join(tree, 'n')}/`, '--db', db);
    expect(n.status).toBe(0);
    expect(n.stdout).toMatch(/#1 .*\n +not present\n/);
    expect(n.stdout).toMatch(/#2 .*accept.*"second"\n +file {2}0644 .*added \(accepted\)/);
  });

  it('a path in no generation is 66', () => {
    const r = integ('show', path.join(tree, 'never'), '--db', db);
    expect(r.status).toBe(66);
    expect(r.stderr).toMatch(/is in no generation of/);
    expect(r.stdout).toBe('');
  });
});
