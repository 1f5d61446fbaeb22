import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/trust/keys.js';

const BIN = fileURLToPath(new URL('../../bin/integ.js', import.meta.url));
const integ = (...args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', INTEG_NO_PROGRESS: '1' } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
};

let dir: string;
let tree: string;
let policy: string;
let golden: string; // three signed generations: baseline, accept, baseline
let key: string;
let pub: string;
let n = 0;

const check = (db: string, ...extra: string[]) => integ('check', '--db', db, '--policy', policy, '--jobs', '0', '--no-snapshot', ...extra);
/** A fresh copy of the golden store, tampered with through SQLite directly. */
function tampered(sql: string): string {
  const f = path.join(dir, `t${++n}.db`);
  fs.copyFileSync(golden, f);
  const db = new Database(f);
  db.pragma('foreign_keys = ON');
  db.exec(sql);
  db.close();
  return f;
}
const runs = (f: string): number => {
  const db = new Database(f, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM runs').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

beforeAll(async () => {
  if (!fs.existsSync(fileURLToPath(new URL('../../dist/src/app/trust-gate.js', import.meta.url)))) throw new Error('build first: npx tsc -p .');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-trustcli-'));
  tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  fs.writeFileSync(path.join(tree, 'a'), 'a\n');
  fs.writeFileSync(path.join(tree, 'b'), 'b\n');
  policy = path.join(dir, 'p.yml');
  fs.writeFileSync(policy, `version: 1\nrules:\n  - name: t\n    paths: ["${tree}/**"]\n`);
  ({ privatePath: key, publicPath: pub } = await generateKeyPair(path.join(dir, 'k')));
  golden = path.join(dir, 'golden.db');
  const b = (note: string) => integ('baseline', '--db', golden, '--policy', policy, '--jobs', '0', '--sign-key', key, '--note', note);
  expect(b('one').status).toBe(0);
  fs.appendFileSync(path.join(tree, 'a'), 'x\n');
  expect(check(golden).status).toBe(4);
  expect(integ('accept', '--all', '--note', 'two', '--sign-key', key, '--db', golden, '--policy', policy).status).toBe(0);
  expect(b('three').status).toBe(0);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('signing and verification', () => {
  it('a signed chain verifies; the check report (text and JSON) names the generation digest', () => {
    const f = tampered('SELECT 1');
    const h = JSON.parse(integ('history', '--db', f, '--format', 'json').stdout);
    expect(h.generations.map((g: { signed: boolean }) => g.signed)).toEqual([true, true, true]);
    const cur = h.current.digest;
    const j = check(f, '--verify-key', pub, '--format', 'json');
    expect(j.status, j.stderr).toBe(0);
    expect(JSON.parse(j.stdout).baseline).toMatchObject({ generation: 3, digest: cur, signed: true });
    const t = check(f, '--verify-key', pub, '--expect-digest', cur);
    expect(t.status).toBe(0);
    expect(t.stdout).toContain(cur.slice(0, 23));
  });

  const cases: [string, string, RegExp][] = [
    ['an edited digest', "UPDATE generations SET digest = 'blake3:' || substr(digest, 8, 63) || '0' WHERE id = 2", /generation #3: records parent digest .* but generation #2 has .*chain broken/],
    ['an edited entry row', "UPDATE entries SET blake3 = (SELECT blake3 FROM entries WHERE gen = 3 AND type = 'file' ORDER BY path DESC LIMIT 1) WHERE gen = 3 AND rowid = (SELECT min(rowid) FROM entries WHERE gen = 3 AND type = 'file')", /generation #3: content does not match its recorded digest/],
    ['a deleted entry row', 'DELETE FROM entries WHERE rowid = (SELECT max(rowid) FROM entries WHERE gen = 3)', /generation #3: content does not match .*2 entries stored, 3 recorded/],
    ['a dropped signature', 'UPDATE generations SET signature = NULL, key_id = NULL WHERE id = 3', /generation #3 \(current\) is not signed, but a signature was demanded/],
    ['a generation deleted from the middle of the chain', 'DELETE FROM generations WHERE id = 2', /generation #3: its parent #2 is missing and not recorded as pruned/],
    ['a forged signature from an old generation', 'UPDATE generations SET signature = (SELECT signature FROM generations WHERE id = 1) WHERE id = 3', /generation #3: signature does not verify/],
  ];
  for (const [what, sql, msg] of cases) {
    it(`${what}: check --verify-key exits 16, says what failed, compares nothing and records nothing`, () => {
      const f = tampered(sql);
      const before = runs(f);
      const r = check(f, '--verify-key', pub);
      expect(r.status).toBe(16);
      expect(r.stderr).toMatch(/baseline not trustworthy, nothing compared/);
      expect(r.stderr).toMatch(msg);
      expect(r.stdout).toBe(''); // no report: nothing was compared
      expect(runs(f)).toBe(before);
    });
  }

  it('row tampering is caught even without a key; the trust.public_key of the policy demands a signature', () => {
    const f = tampered('UPDATE entries SET mode = 511 WHERE gen = 3');
    expect(check(f).status).toBe(16);
    const unsigned = tampered('UPDATE generations SET signature = NULL WHERE id = 3');
    const withKey = path.join(dir, 'pk.yml');
    fs.writeFileSync(withKey, `${fs.readFileSync(policy, 'utf8')}trust:\n  public_key: ${pub}\n`);
    const r = integ('check', '--db', unsigned, '--policy', withKey, '--jobs', '0', '--no-snapshot');
    expect(r.status).toBe(16);
    expect(r.stderr).toMatch(/not signed, but a signature was demanded/);
  });

  it('a rollback to an older, validly signed generation passes the key but not --expect-digest', () => {
    const cur = JSON.parse(integ('history', '--db', golden, '--format', 'json').stdout).current.digest;
    const f = tampered('DELETE FROM generations WHERE id = 3');
    expect(check(f, '--verify-key', pub).status).toBe(0);
    const r = check(f, '--verify-key', pub, '--expect-digest', cur);
    expect(r.status).toBe(16);
    expect(r.stderr).toMatch(/rollback or replaced store/);
  });

  it('refuses a private key readable by others (64) and keys of the wrong type (65), writing nothing', () => {
    const loose = path.join(dir, 'loose.key');
    fs.copyFileSync(key, loose);
    fs.chmodSync(loose, 0o644);
    const db = path.join(dir, 'fresh.db');
    const r = integ('baseline', '--db', db, '--policy', policy, '--jobs', '0', '--sign-key', loose);
    expect(r.status).toBe(64);
    expect(r.stderr).toMatch(/accessible by group or others .*chmod 600/);
    expect(fs.existsSync(db)).toBe(false);
    const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 });
    const rsaKey = path.join(dir, 'rsa.key');
    fs.writeFileSync(rsaKey, rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const r2 = integ('baseline', '--db', db, '--policy', policy, '--jobs', '0', '--sign-key', rsaKey);
    expect(r2.status).toBe(65);
    expect(r2.stderr).toMatch(/wrong key type: rsa, expected ed25519/);
    const rsaPub = path.join(dir, 'rsa.pub');
    fs.writeFileSync(rsaPub, rsa.publicKey.export({ type: 'spki', format: 'pem' }));
    const r3 = check(tampered('SELECT 1'), '--verify-key', rsaPub);
    expect(r3.status).toBe(65);
    expect(r3.stderr).toMatch(/wrong key type/);
    const f = tampered('SELECT 1');
    const r4 = integ('accept', '--all', '--note', 'x', '--sign-key', loose, '--db', f, '--policy', policy);
    expect(r4.status).toBe(64);
    expect(JSON.parse(integ('history', '--db', f, '--format', 'json').stdout).generations).toHaveLength(3);
  });
});
