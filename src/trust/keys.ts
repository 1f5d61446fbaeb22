/**
 * Ed25519 keys for signing baseline generations and evidence bundles.
 *
 * Files are PEM: the private key as PKCS#8 (mode 0600), the public key as SPKI
 * (FILE.pub, mode 0644) — the formats `openssl genpkey -algorithm ed25519` and
 * `openssl pkey -pubout` produce, so either tool can make or check keys.
 *
 * The API is deliberately small:
 *   generateKeyPair(out)        write FILE + FILE.pub (never overwrites)
 *   loadPrivateKey(path)        refuses a key readable by group/others, a non-Ed25519 key
 *   loadPublicKey(path)         a .pub file, or a private key (the public half is derived)
 *   sign(data, key)             base64 Ed25519 signature over the exact bytes
 *   verify(data, sig, pub)      boolean; never throws on a malformed signature
 *   keyId(key)                  first 16 hex digits of sha256(SPKI DER)
 *
 * Errors: a missing or unreadable file is NoInputError (66), content that is not an
 * Ed25519 PEM key is DataError (65), a private key file with group/other permission bits
 * is UsageError (64: the operator must chmod it), and refusing to overwrite is
 * CantCreateError (73).
 */
import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import { CantCreateError, DataError, UsageError, writeErrorFor } from '../util/errors.js';
import { readInputFile } from '../util/input-file.js';
import { sha256Hex } from '../util/sha256.js';

/** A key file is a few hundred bytes; anything much larger is not a key. */
const MAX_KEY_FILE = 64 * 1024;

/** What generateKeyPair wrote. */
export interface GeneratedKeyPair {
  privatePath: string;
  publicPath: string;
  keyId: string;
}

/** Key id: the first 16 hex digits of sha256 over the public key's SPKI DER encoding. */
export function keyId(key: KeyObject): string {
  const pub = key.type === 'private' ? crypto.createPublicKey(key) : key;
  const der = pub.export({ type: 'spki', format: 'der' });
  return sha256Hex(der).slice(0, 16);
}

/**
 * Generate an Ed25519 key pair: `out` (private, PKCS#8 PEM, 0600) and `out.pub`
 * (SPKI PEM, 0644). Both are created exclusively: if either exists, nothing is
 * written and CantCreateError (73) is thrown.
 */
export async function generateKeyPair(out: string): Promise<GeneratedKeyPair> {
  const pubPath = `${out}.pub`;
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const privPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const pubPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;

  // Both checked before writing, so an existing FILE.pub does not leave a fresh FILE behind;
  // the O_EXCL opens below still guard against a race.
  for (const p of [out, pubPath]) {
    if (await exists(p)) throw new CantCreateError(`${p} already exists; refusing to overwrite a key (choose another --out)`);
  }
  await writeExclusive(out, privPem, 0o600);
  try {
    await writeExclusive(pubPath, pubPem, 0o644);
  } catch (err) {
    await fs.rm(out, { force: true });
    throw err;
  }
  return { privatePath: out, publicPath: pubPath, keyId: keyId(publicKey) };
}

/**
 * Load an Ed25519 private key (PKCS#8 PEM, unencrypted) for signing. Refuses a file
 * whose mode grants any access to group or others, like ssh does.
 */
export async function loadPrivateKey(path: string): Promise<KeyObject> {
  const { text, mode } = await readKeyFile(path, 'private key');
  if ((mode & 0o077) !== 0) {
    throw new UsageError(`private key ${path} is accessible by group or others (mode ${octal(mode)}); run: chmod 600 ${path}`);
  }
  let key: KeyObject;
  try {
    key = crypto.createPrivateKey(text);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_MISSING_PASSPHRASE') throw new DataError(`${path}: encrypted private keys are not supported`);
    if (/PUBLIC KEY-----/.test(text)) throw new DataError(`${path}: is a public key; signing needs the private key`);
    throw new DataError(`${path}: not a PEM private key`);
  }
  checkEd25519(path, key);
  return key;
}

/**
 * Load an Ed25519 public key for verification: an SPKI PEM (`FILE.pub`), or a private
 * key PEM from which the public half is derived.
 */
export async function loadPublicKey(path: string): Promise<KeyObject> {
  const { text } = await readKeyFile(path, 'public key');
  let key: KeyObject;
  try {
    key = crypto.createPublicKey(text);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_MISSING_PASSPHRASE') throw new DataError(`${path}: encrypted private keys are not supported; give the .pub file`);
    throw new DataError(`${path}: not a PEM public key`);
  }
  checkEd25519(path, key);
  return key;
}

/** Ed25519 signature over the exact bytes of `data`, base64-encoded (88 characters). */
export function sign(data: Buffer, key: KeyObject): string {
  return crypto.sign(null, data, key).toString('base64');
}

/**
 * True when `sigB64` is a valid Ed25519 signature of `data` by `pubKey` (a public key,
 * or a private key whose public half is used). A malformed signature is simply false.
 */
export function verify(data: Buffer, sigB64: string, pubKey: KeyObject): boolean {
  if (typeof sigB64 !== 'string' || !/^[A-Za-z0-9+/]{86}==$/.test(sigB64)) return false;
  const sig = Buffer.from(sigB64, 'base64');
  if (sig.length !== 64) return false;
  try {
    return crypto.verify(null, data, pubKey, sig);
  } catch {
    return false;
  }
}

function checkEd25519(path: string, key: KeyObject): void {
  const type = key.asymmetricKeyType ?? 'unknown';
  if (type !== 'ed25519') throw new DataError(`${path}: wrong key type: ${type}, expected ed25519`);
}

async function readKeyFile(path: string, what: string): Promise<{ text: string; mode: number }> {
  // Regular files only, bounded: a FIFO or /dev/zero given as a key is refused before it is
  // opened for reading (it would block or never end). The mode judged is the descriptor's.
  const { data, stat } = readInputFile(path, { maxBytes: MAX_KEY_FILE, what });
  return { text: data.toString('utf8'), mode: stat.mode & 0o7777 };
}

async function writeExclusive(path: string, text: string, mode: number): Promise<void> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, 'wx', mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new CantCreateError(`${path} already exists; refusing to overwrite a key (choose another --out)`);
    }
    throw writeErrorFor(err, `cannot create ${path}`);
  }
  try {
    await handle.chmod(mode); // the umask may have removed bits we want (0644 for .pub)
    await handle.writeFile(text);
    await handle.sync();
    await handle.close();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fs.rm(path, { force: true });
    throw writeErrorFor(err, `cannot write ${path}`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await fs.lstat(path);
    return true;
  } catch {
    return false;
  }
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}
