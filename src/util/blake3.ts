import { createRequire } from 'node:module';

/** The subset of blake3-wasm's Node API that integ uses. */
export interface Blake3Hash {
  update(b: Uint8Array | string): unknown;
  /** dispose: false keeps the state, so a digest of the prefix so far can be taken mid-stream */
  digest(o?: { dispose?: boolean }): Buffer;
  dispose(): void;
}

let mod: { createHash(): Blake3Hash } | null = null;

/** Loaded on first use only, so `--help` and commands that hash nothing never load the wasm. */
export function createBlake3(): Blake3Hash {
  mod ??= createRequire(import.meta.url)('blake3-wasm') as { createHash(): Blake3Hash };
  return mod.createHash();
}

export function blake3Hex(data: Uint8Array | string): string {
  const h = createBlake3();
  h.update(data);
  return h.digest().toString('hex');
}
