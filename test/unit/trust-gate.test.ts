import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDigest } from '../../src/app/signing.js';
import { verifyTrust, type TrustOptions } from '../../src/app/trust-gate.js';
import { BaselineRepo } from '../../src/store/baseline-repo.js';
import { migrate } from '../../src/store/db.js';
import { computeGenerationDigest } from '../../src/store/generation-digest.js';
import { generateKeyPair } from '../../src/trust/keys.js';
import type { RunContext } from '../../src/util/context.js';
import { DataError, TrustError, UsageError } from '../../src/util/errors.js';
import { mustChange } from '../helpers/tamper.js';

const ctx: RunContext = { log: pino({ level: 'silent' }), signal: new AbortController().signal, env: {}, interactive: false, argv: [] };
let dir: string;
let key: string;
let other: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-trust-'));
  key = (await generateKeyPair(path.join(dir, 'k'))).privatePath;
  other = (await generateKeyPair(path.join(dir, 'other'))).privatePath;
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A :memory: store with `n` generations chained as baseline/accept make them; `signed` picks which are signed (by `by`). */
async function chain(n: number, signed: (i: number) => boolean = () => true, by = () => key): Promise<{ db: Database.Database; repo: BaselineRepo }> {
  const db = new Database(':memory:');
  db.pragma('foreign_keys = ON');
  migrate(db);
  const repo = new BaselineRepo(db);
  for (let i = 1; i <= n; i++) {
    const parent = repo.current();
    const h = {
      createdAt: `2026-11-2${i}T00:00:00.000Z`,
      kind: (i === 1 ? 'baseline' : 'accept') as 'baseline' | 'accept',
      user: 'root',
      uid: 0,
      hostname: 'h',
      note: `g${i}`,
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
    for (const p of ['/etc/a', '/etc/b', `/etc/g${i}`])
      repo.insert(
        id,
        'r',
        {
          path: Buffer.from(p),
          type: 'file',
          mode: 0o644,
          uid: 0,
          gid: 0,
          size: BigInt(i),
          mtimeNs: 1n,
          ctimeNs: 1n,
          inode: 1n,
          nlink: 1,
          target: null,
          blake3: `h${i}`,
          sha256: null,
        },
        null,
      );
    const d = computeGenerationDigest(db, { id, ...h });
    const sig = signed(i) ? (await signDigest(by()))(d.digest) : null;
    repo.finish(id, d, d.digest, sig?.signature ?? null, sig?.keyId ?? null);
  }
  return { db, repo };
}

async function gate(db: Database.Database, opts: TrustOptions = {}): Promise<string> {
  const cur = new BaselineRepo(db).current()!;
  try {
    await verifyTrust(db, cur, opts, ctx);
    return 'trusted';
  } catch (e) {
    expect(e).toBeInstanceOf(TrustError);
    expect((e as TrustError).exitCode).toBe(16);
    return (e as Error).message;
  }
}

describe('verifyTrust: the whole chain', () => {
  it('trusts an intact, fully signed chain and reports what it checked', async () => {
    const { db, repo } = await chain(3);
    const r = await verifyTrust(db, repo.current()!, { verifyKey: `${key}.pub`, expectDigest: repo.current()!.digest }, ctx);
    expect(r.chain).toEqual([1, 2, 3]);
    expect(r.signaturesVerified).toEqual([1, 2, 3]);
    expect(r.anchor).toBeNull();
    expect(r.keyId).toMatch(/^[0-9a-f]{16}$/);
  });

  it('an edited digest in the middle breaks the link of the next generation (and its own signature)', async () => {
    const { db } = await chain(3);
    mustChange(db, "UPDATE generations SET digest = 'blake3:0000' WHERE id = 2");
    expect(await gate(db)).toMatch(/generation #3: records parent digest .* but generation #2 has blake3:0000 \(chain broken/);
    expect(await gate(db, { verifyKey: `${key}.pub` })).toMatch(/generation #2: signature does not verify/);
  });

  it('an edited, added or deleted entry row of the current generation shows as a content mismatch', async () => {
    for (const sql of [
      "UPDATE entries SET mode = 511 WHERE gen = 3 AND path = CAST('/etc/a' AS BLOB)",
      "INSERT INTO entries SELECT gen, CAST('/etc/zz' AS BLOB), rule, type, mode, uid, gid, size, mtime_ns, ctime_ns, inode, nlink, target, blake3, sha256, error, xattrs, flags FROM entries WHERE gen = 3 LIMIT 1",
      "DELETE FROM entries WHERE gen = 3 AND path = CAST('/etc/b' AS BLOB)",
      "UPDATE generations SET note = 'innocent' WHERE id = 3",
    ]) {
      const { db } = await chain(3);
      mustChange(db, sql);
      expect(await gate(db), sql).toMatch(/generation #3: content does not match its recorded digest/);
    }
    const { db } = await chain(3);
    mustChange(db, "DELETE FROM entries WHERE gen = 3 AND path = CAST('/etc/b' AS BLOB)");
    expect(await gate(db)).toMatch(/2 entries stored, 3 recorded/);
  });

  it('a deleted generation in the middle, or a re-pointed parent, breaks the chain', async () => {
    const a = await chain(3);
    mustChange(a.db, 'DELETE FROM generations WHERE id = 2');
    expect(await gate(a.db)).toMatch(/generation #3: its parent #2 is missing and not recorded as pruned/);
    const b = await chain(3);
    mustChange(b.db, 'UPDATE generations SET parent_id = 1 WHERE id = 3');
    expect(await gate(b.db)).toMatch(/generation #3: its parent is #1, but #2 comes between them/);
    const c = await chain(3);
    mustChange(c.db, 'UPDATE generations SET parent_id = NULL, parent_digest = NULL WHERE id = 2');
    expect(await gate(c.db)).toMatch(/generation #2: has no parent, but generation #1 comes before it/);
  });

  it('links the oldest kept generation to its pruned anchor, and refuses a wrong anchor', async () => {
    const { db } = await chain(3);
    const d1 = (db.prepare('SELECT digest FROM generations WHERE id = 1').get() as { digest: string }).digest;
    db.prepare('INSERT INTO pruned (id, digest, pruned_at) VALUES (1, ?, ?)').run(d1, 'T');
    mustChange(db, 'DELETE FROM generations WHERE id = 1');
    expect(await gate(db, { verifyKey: `${key}.pub` })).toBe('trusted');
    mustChange(db, "UPDATE pruned SET digest = 'blake3:ff' WHERE id = 1");
    expect(await gate(db)).toMatch(/generation #2: records parent digest .* but generation #1 \(pruned anchor\) has blake3:ff/);
  });

  it('with a key: the current generation must be signed, and no signature may be dropped after signing began', async () => {
    const cur = await chain(3);
    mustChange(cur.db, 'UPDATE generations SET signature = NULL WHERE id = 3');
    expect(await gate(cur.db)).toBe('trusted'); // no key demanded: unsigned is allowed
    expect(await gate(cur.db, { verifyKey: `${key}.pub` })).toMatch(/generation #3 \(current\) is not signed, but a signature was demanded/);
    const mid = await chain(3);
    mustChange(mid.db, 'UPDATE generations SET signature = NULL WHERE id = 2');
    expect(await gate(mid.db, { verifyKey: `${key}.pub` })).toMatch(/generation #2 is not signed, though an earlier generation is/);
  });

  it('generations from before signing began are accepted unsigned (the signed chain covers them)', async () => {
    const { db, repo } = await chain(3, (i) => i === 3);
    const r = await verifyTrust(db, repo.current()!, { verifyKey: `${key}.pub` }, ctx);
    expect(r.unsignedBeforeSigning).toEqual([1, 2]);
    expect(r.signaturesVerified).toEqual([3]);
  });

  it('a signature by another key, or a garbled one, does not verify; the message names the key ids', async () => {
    const { db } = await chain(
      2,
      () => true,
      () => other,
    );
    expect(await gate(db, { verifyKey: `${key}.pub` })).toMatch(
      /generation #2: signature does not verify with .*k\.pub \(key id [0-9a-f]{16}; the generation names key id [0-9a-f]{16}\)/,
    );
    const g = await chain(2);
    mustChange(g.db, "UPDATE generations SET signature = 'AAAA' WHERE id = 2");
    expect(await gate(g.db, { verifyKey: `${key}.pub` })).toMatch(/generation #2: signature does not verify/);
  });

  it('--expect-digest catches a rollback to an older, validly signed generation', async () => {
    const { db, repo } = await chain(3);
    const newest = repo.current()!.digest;
    mustChange(db, 'DELETE FROM generations WHERE id = 3'); // rollback: the chain itself is intact
    expect(await gate(db, { verifyKey: `${key}.pub` })).toBe('trusted');
    expect(await gate(db, { verifyKey: `${key}.pub`, expectDigest: newest })).toMatch(/current generation #2 has digest .* expected .* \(rollback/);
  });

  it('lists every problem at once, and says what the refusal means for the caller', async () => {
    const { db } = await chain(3);
    mustChange(db, "UPDATE entries SET size = 9 WHERE gen = 3; UPDATE generations SET digest = 'blake3:1' WHERE id = 1");
    const msg = await gate(db, { refusal: 'nothing accepted' });
    expect(msg).toMatch(/^baseline not trustworthy, nothing accepted:\n/);
    expect(msg.split('\n').filter((l) => l.startsWith('  - '))).toHaveLength(2);
  });
});

describe('keys at the trust gate', () => {
  it('refuses a public key of the wrong type (65) before anything else', async () => {
    const { db, repo } = await chain(1);
    const rsa = path.join(dir, 'rsa.pub');
    fs.writeFileSync(rsa, crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }));
    const err = await verifyTrust(db, repo.current()!, { verifyKey: rsa }, ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toMatch(/wrong key type: rsa, expected ed25519/);
  });

  it('signing refuses a private key readable by others (64) and a wrong key type (65)', async () => {
    const loose = path.join(dir, 'loose');
    fs.copyFileSync(key, loose);
    fs.chmodSync(loose, 0o644);
    const e1 = await signDigest(loose).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(UsageError);
    expect((e1 as Error).message).toMatch(/chmod 600/);
    const rsa = path.join(dir, 'rsa.key');
    fs.writeFileSync(rsa, crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const e2 = await signDigest(rsa).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(DataError);
    expect((e2 as Error).message).toMatch(/wrong key type/);
  });
});
