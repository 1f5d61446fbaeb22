/**
 * Signing of generation digests with an Ed25519 private key (--sign-key). Loading the key
 * happens before any scanning, so a bad key fails fast.
 */
export async function signDigest(keyFile: string): Promise<(digest: string) => { signature: string; keyId: string }> {
  const keys = await import('../trust/keys.js');
  const priv = await keys.loadPrivateKey(keyFile);
  const { createPublicKey } = await import('node:crypto');
  const pub = createPublicKey(priv);
  const id = keys.keyId(pub);
  return (digest) => ({ signature: keys.sign(Buffer.from(digest, 'utf8'), priv), keyId: id });
}
