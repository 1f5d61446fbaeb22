import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { integ as run } from '../helpers/cli.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/trust/keys.js';
import { tamperDb } from '../helpers/tamper.js';

/** The shared helper, with the exit status under the name these tests use. */
const integ = (...args: string[]) => {
  const r = run(args);
  return { ...r, status: r.code };
};

let dir: string;
let tree: string;
let policy: string;
let golden: string; // three signed generations: baseline, accept, baseline
let key: string;
let pub: string;
let n = 0;

/** SQL for a digest whose last hex digit is replaced by the next one (mod 16): always a different value. */
const NEXT_LAST_DIGIT = "substr(digest, 1, 70) || substr('0123456789abcdef', instr('0123456789abcdef', substr(digest, 71, 1)) % 16 + 1, 1)";
const check = (db: string, ...extra: string[]) => integ('check', '--db', db, '--policy', policy, '--jobs', '0', '--no-snapshot', ...extra);
/** A fresh copy of the golden store. */
function copy(): string {
  const f = path.join(dir, `t${++n}.db`);
  fs.copyFileSync(golden, f);
  return f;
}
/** A fresh copy of the golden store, tampered with through SQLite directly (proven to have changed). */
function tampered(sql: string): string {
  const f = copy();
  tamperDb(f, sql);
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
    const f = copy();
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

  it('the digest edit below changes every possible last digit (0 → 1 … f → 0)', () => {
    const mem = new Database(':memory:');
    const digests = [...'0123456789abcdef'].map((d) => `blake3:${'a'.repeat(63)}${d}`);
    const edited = digests.map((digest) => mem.prepare(`SELECT ${NEXT_LAST_DIGIT} FROM (SELECT ? AS digest)`).pluck().get(digest) as string);
    mem.close();
    expect(edited.map((d) => d.slice(-1)).join('')).toBe('123456789abcdef0');
    expect(edited.map((d) => d.slice(0, -1))).toEqual(digests.map((d) => d.slice(0, -1)));
  });

  const cases: [string, string, RegExp][] = [
    [
      'an edited digest',
      `UPDATE generations SET digest = ${NEXT_LAST_DIGIT} WHERE id = 2`,
      /generation #3: records parent digest .* but generation #2 has .*chain broken/,
    ],
    [
      'an edited entry row',
      "UPDATE entries SET blake3 = (SELECT blake3 FROM entries WHERE gen = 3 AND type = 'file' ORDER BY path DESC LIMIT 1) WHERE gen = 3 AND rowid = (SELECT min(rowid) FROM entries WHERE gen = 3 AND type = 'file')",
      /generation #3: content does not match its recorded digest/,
    ],
    [
      'a deleted entry row',
      'DELETE FROM entries WHERE rowid = (SELECT max(rowid) FROM entries WHERE gen = 3)',
      /generation #3: content does not match .*2 entries stored, 3 recorded/,
    ],
    [
      'a dropped signature',
      'UPDATE generations SET signature = NULL, key_id = NULL WHERE id = 3',
      /generation #3 \(current\) is not signed, but a signature was demanded/,
    ],
    [
      'a generation deleted from the middle of the chain',
      'DELETE FROM generations WHERE id = 2',
      /generation #3: its parent #2 is missing and not recorded as pruned/,
    ],
    [
      'a forged signature from an old generation',
      'UPDATE generations SET signature = (SELECT signature FROM generations WHERE id = 1) WHERE id = 3',
      /generation #3: signature does not verify/,
    ],
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

  it('moving the xattrs/flags part of a digest line into the error field (which would turn their comparison off with the same line) is refused', () => {
    // error NULL + xattrs X + flags F digests as "- x X f F"; error "- x X f F" + NULL + NULL as the same text
    const f = tampered(
      `UPDATE entries SET error = '- x ' || json_quote(xattrs) || ' f ' || coalesce(flags, '-'), xattrs = NULL, flags = NULL
       WHERE gen = 3 AND xattrs IS NOT NULL AND path = (SELECT max(path) FROM entries WHERE gen = 3 AND xattrs IS NOT NULL)`,
    );
    const before = runs(f);
    const r = check(f);
    expect(r.status).toBe(16);
    expect(r.stderr).toMatch(/has an error field integ never writes/);
    expect(runs(f)).toBe(before);
    // the trust gate of other commands (here diff, which digests both generations in full) too
    const v = integ('diff', '--db', f, '--generation', '2', '3');
    expect(v.status).toBe(16);
    expect(v.stdout + v.stderr).toMatch(/has an error field integ never writes/);
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
    const r3 = check(copy(), '--verify-key', rsaPub);
    expect(r3.status).toBe(65);
    expect(r3.stderr).toMatch(/wrong key type/);
    const f = copy();
    const r4 = integ('accept', '--all', '--note', 'x', '--sign-key', loose, '--db', f, '--policy', policy);
    expect(r4.status).toBe(64);
    expect(JSON.parse(integ('history', '--db', f, '--format', 'json').stdout).generations).toHaveLength(3);
  });
});
