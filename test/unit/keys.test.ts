import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateKeyPair, keyId, loadPrivateKey, loadPublicKey, sign, verify } from '../../src/trust/keys.js';
import { CantCreateError, DataError, NoInputError, UsageError } from '../../src/util/errors.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-keys-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const mode = (p: string): number => fs.statSync(p).mode & 0o777;
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

describe('generateKeyPair', () => {
  it('writes a 0600 PKCS#8 private key and a 0644 SPKI public key, and returns the key id', async () => {
    const out = path.join(dir, 'signing.key');
    const made = await generateKeyPair(out);
    expect(made).toEqual({ privatePath: out, publicPath: `${out}.pub`, keyId: expect.stringMatching(/^[0-9a-f]{16}$/) });
    expect(mode(out)).toBe(0o600);
    expect(mode(`${out}.pub`)).toBe(0o644);
    expect(fs.readFileSync(out, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(fs.readFileSync(`${out}.pub`, 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    // key id = first 16 hex of sha256 over the SPKI DER
    const der = crypto.createPublicKey(fs.readFileSync(`${out}.pub`)).export({ type: 'spki', format: 'der' });
    expect(made.keyId).toBe(crypto.createHash('sha256').update(der).digest('hex').slice(0, 16));
  });

  it('refuses to overwrite an existing private key (exit 73) and leaves it untouched', async () => {
    const out = path.join(dir, 'k');
    fs.writeFileSync(out, 'precious', { mode: 0o600 });
    const err = await generateKeyPair(out).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CantCreateError);
    expect((err as CantCreateError).exitCode).toBe(73);
    expect((err as Error).message).toMatch(/already exists; refusing to overwrite/);
    expect(fs.readFileSync(out, 'utf8')).toBe('precious');
    expect(fs.existsSync(`${out}.pub`)).toBe(false);
  });

  it('refuses when only FILE.pub exists, without leaving a new private key behind', async () => {
    const out = path.join(dir, 'k');
    fs.writeFileSync(`${out}.pub`, 'old public key');
    await expect(generateKeyPair(out)).rejects.toBeInstanceOf(CantCreateError);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readFileSync(`${out}.pub`, 'utf8')).toBe('old public key');
  });

  it('maps a missing folder to exit 73', async () => {
    const err = await generateKeyPair(path.join(dir, 'no', 'such', 'k')).catch((e: unknown) => e);
    expect((err as CantCreateError).exitCode).toBe(73);
  });
});

describe('loadPrivateKey', () => {
  it('loads a generated key that signs what the public key verifies', async () => {
    const out = path.join(dir, 'k');
    const made = await generateKeyPair(out);
    const priv = await loadPrivateKey(out);
    const pub = await loadPublicKey(`${out}.pub`);
    const data = Buffer.from('manifest bytes');
    const sig = sign(data, priv);
    expect(sig).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    expect(verify(data, sig, pub)).toBe(true);
    expect(verify(Buffer.from('manifest bytes!'), sig, pub)).toBe(false);
    expect(keyId(priv)).toBe(made.keyId);
    expect(keyId(pub)).toBe(made.keyId);
  });

  it('refuses a key readable by group or others, saying how to fix it', async () => {
    const out = path.join(dir, 'k');
    await generateKeyPair(out);
    fs.chmodSync(out, 0o644);
    const err = await loadPrivateKey(out).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toBe(`private key ${out} is accessible by group or others (mode 0644); run: chmod 600 ${out}`);
    fs.chmodSync(out, 0o640);
    await expect(loadPrivateKey(out)).rejects.toBeInstanceOf(UsageError);
  });

  it('refuses an RSA key as the wrong type', async () => {
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 });
    const p = path.join(dir, 'rsa.key');
    fs.writeFileSync(p, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const err = await loadPrivateKey(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as DataError).exitCode).toBe(65);
    expect((err as Error).message).toBe(`${p}: wrong key type: rsa, expected ed25519`);
  });

  it('reports a missing file as 66 and garbage as 65', async () => {
    const missing = await loadPrivateKey(path.join(dir, 'nope')).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NoInputError);
    expect((missing as NoInputError).exitCode).toBe(66);
    const junk = path.join(dir, 'junk');
    fs.writeFileSync(junk, 'not a key at all\n', { mode: 0o600 });
    const bad = await loadPrivateKey(junk).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(DataError);
    expect((bad as Error).message).toBe(`${junk}: not a PEM private key`);
  });

  it('says so when given the public key instead of the private one', async () => {
    const out = path.join(dir, 'k');
    await generateKeyPair(out);
    fs.chmodSync(`${out}.pub`, 0o600);
    await expect(loadPrivateKey(`${out}.pub`)).rejects.toThrow(/is a public key; signing needs the private key/);
  });

  it('refuses a folder', async () => {
    fs.mkdirSync(path.join(dir, 'd'), { mode: 0o700 });
    await expect(loadPrivateKey(path.join(dir, 'd'))).rejects.toThrow(/not a regular file/);
  });
});

describe('loadPublicKey', () => {
  it('derives the public key from a private key file', async () => {
    const out = path.join(dir, 'k');
    const made = await generateKeyPair(out);
    const pub = await loadPublicKey(out);
    expect(pub.type).toBe('public');
    expect(keyId(pub)).toBe(made.keyId);
  });

  it('refuses an RSA public key and garbage', async () => {
    const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 });
    const p = path.join(dir, 'rsa.pub');
    fs.writeFileSync(p, publicKey.export({ type: 'spki', format: 'pem' }));
    await expect(loadPublicKey(p)).rejects.toThrow(`${p}: wrong key type: rsa, expected ed25519`);
    const junk = path.join(dir, 'junk.pub');
    fs.writeFileSync(junk, '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n');
    await expect(loadPublicKey(junk)).rejects.toBeInstanceOf(DataError);
    await expect(loadPublicKey(path.join(dir, 'none.pub'))).rejects.toBeInstanceOf(NoInputError);
  });
});

describe('verify', () => {
  it('is false, never throwing, for malformed signatures', async () => {
    const out = path.join(dir, 'k');
    await generateKeyPair(out);
    const pub = await loadPublicKey(`${out}.pub`);
    const data = Buffer.from('x');
    expect(verify(data, '', pub)).toBe(false);
    expect(verify(data, 'not base64 at all!', pub)).toBe(false);
    expect(verify(data, Buffer.alloc(64).toString('base64'), pub)).toBe(false);
    expect(verify(data, Buffer.alloc(32).toString('base64'), pub)).toBe(false);
  });

  it('rejects a signature made by another key', async () => {
    await generateKeyPair(path.join(dir, 'a'));
    await generateKeyPair(path.join(dir, 'b'));
    const sig = sign(Buffer.from('x'), await loadPrivateKey(path.join(dir, 'a')));
    expect(verify(Buffer.from('x'), sig, await loadPublicKey(path.join(dir, 'b.pub')))).toBe(false);
    expect(verify(Buffer.from('x'), sig, await loadPublicKey(path.join(dir, 'a.pub')))).toBe(true);
  });
});

describe.skipIf(!hasOpenssl)('interoperability with openssl', () => {
  it('loads an openssl-generated key, and openssl verifies our signature', async () => {
    const key = path.join(dir, 'ossl.key');
    execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', key]);
    fs.chmodSync(key, 0o600);
    execFileSync('openssl', ['pkey', '-in', key, '-pubout', '-out', `${key}.pub`]);
    const priv = await loadPrivateKey(key);
    const data = path.join(dir, 'data');
    fs.writeFileSync(data, 'signed by integ\n');
    fs.writeFileSync(path.join(dir, 'sig'), Buffer.from(sign(fs.readFileSync(data), priv), 'base64'));
    const r = spawnSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', `${key}.pub`, '-rawin', '-in', data, '-sigfile', path.join(dir, 'sig')]);
    expect(r.status, r.stderr.toString()).toBe(0);
  });
});
