import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/trust/keys.js';
import { canDropToNobody, integ as run } from '../helpers/cli.js';
import { tamperDb } from '../helpers/tamper.js';

/** The shared helper, with the exit status under the name these tests use. */
const integ = (...args: string[]) => {
  const r = run(args);
  return { ...r, status: r.code };
};
const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const isRoot = process.getuid?.() === 0;

let dir: string;
let tree: string;
let policy: string;
let db: string;
let pub: string;
let current: { generation: number; digest: string };

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-export-'));
  fs.chmodSync(dir, 0o755); // the unprivileged check below must reach the tree, policy and key
  tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  fs.writeFileSync(path.join(tree, 'a'), 'a\n');
  policy = path.join(dir, 'p.yml');
  fs.writeFileSync(policy, `version: 1\nrules:\n  - name: t\n    paths: ["${tree}/**"]\n`);
  const k = await generateKeyPair(path.join(dir, 'k'));
  pub = k.publicPath;
  db = path.join(dir, 's.db');
  const base = (note: string) => integ('baseline', '--db', db, '--policy', policy, '--jobs', '0', '--sign-key', k.privatePath, '--note', note);
  expect(base('one').status).toBe(0);
  fs.writeFileSync(path.join(tree, 'b'), 'b\n');
  expect(integ('check', '--db', db, '--policy', policy, '--jobs', '0', '--no-snapshot').status).toBe(1);
  expect(base('two').status).toBe(0);
  expect(base('three').status).toBe(0);
  current = JSON.parse(integ('history', '--db', db, '--format', 'json').stdout).current;
});
afterAll(() => {
  for (const d of [path.join(dir, 'media')]) if (fs.existsSync(d)) fs.chmodSync(d, 0o755);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('integ export', () => {
  it('writes a self-contained 0600 copy of the current generation: other generations become anchors, no runs, journal_mode delete', () => {
    const out = path.join(dir, 'copy.db');
    const r = integ('export', '--db', db, '--out', out, '--verify-key', pub, '--format', 'json');
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.generation).toMatchObject({ generation: current.generation, digest: current.digest, signed: true });
    expect(j.omitted).toEqual([1, 2]);
    expect(j.journal_mode).toBe('delete');
    expect(j.sha256).toBe(sha(out));
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(`${out}.partial`)).toBe(false);
    const c = new Database(out, { readonly: true });
    try {
      expect(c.pragma('journal_mode', { simple: true })).toBe('delete');
      expect(c.prepare('SELECT id FROM generations').all()).toEqual([{ id: 3 }]);
      expect(c.prepare('SELECT id FROM pruned ORDER BY id').all()).toEqual([{ id: 1 }, { id: 2 }]);
      expect(c.prepare('SELECT count(*) AS n FROM runs').get()).toEqual({ n: 0 });
    } finally {
      c.close();
    }
    // The source is untouched.
    expect(JSON.parse(integ('history', '--db', db, '--format', 'json').stdout).generations).toHaveLength(3);
    // The copy verifies, signature and chain included, and compares like the original.
    const chk = integ('check', '--db', out, '--policy', policy, '--jobs', '0', '--no-snapshot', '--verify-key', pub, '--expect-digest', current.digest);
    expect(chk.status, chk.stderr).toBe(0);
  });

  it('the copy works from read-only media: file 0444 in a 0555 folder, checked by an unprivileged user; the run is not recorded', () => {
    const media = path.join(dir, 'media');
    fs.mkdirSync(media);
    const out = path.join(media, 'golden.db');
    expect(integ('export', '--db', db, '--out', out).status).toBe(0);
    fs.chmodSync(out, 0o444);
    fs.chmodSync(media, 0o555);
    const before = sha(out);
    const args = [
      'check',
      '--db',
      out,
      '--policy',
      policy,
      '--jobs',
      '0',
      '--no-snapshot',
      '--format',
      'json',
      '--verify-key',
      pub,
      '--expect-digest',
      current.digest,
    ];
    if (isRoot && !canDropToNobody) return void expect.soft(canDropToNobody, 'setpriv missing: read-only media not exercised as a non-root user').toBe(true);
    const r = run(args, { asNobody: isRoot, env: { HOME: '/tmp' } });
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.baseline).toMatchObject({ generation: current.generation, digest: current.digest, signed: true });
    expect(j.notices.join('\n')).toMatch(/not recorded/);
    expect(sha(out)).toBe(before);
    expect(fs.readdirSync(media)).toEqual(['golden.db']); // no -journal, -wal or -shm could be, or was, created
  });

  it('never overwrites --out (73) and refuses to export a store that is not trustworthy (16), leaving nothing behind', () => {
    const out = path.join(dir, 'exists.db');
    fs.writeFileSync(out, 'precious');
    const r = integ('export', '--db', db, '--out', out);
    expect(r.status).toBe(73);
    expect(fs.readFileSync(out, 'utf8')).toBe('precious');

    const bad = path.join(dir, 'bad.db');
    fs.copyFileSync(db, bad);
    tamperDb(bad, 'UPDATE entries SET uid = 4242 WHERE gen = 3');
    const out2 = path.join(dir, 'never.db');
    const r2 = integ('export', '--db', bad, '--out', out2);
    expect(r2.status).toBe(16);
    expect(r2.stderr).toMatch(/nothing exported/);
    expect(fs.existsSync(out2)).toBe(false);
    expect(fs.existsSync(`${out2}.partial`)).toBe(false);
    expect(integ('export', '--db', path.join(dir, 'none.db'), '--out', path.join(dir, 'x.db')).status).toBe(66);
  });
});
