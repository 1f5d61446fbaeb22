import { createRequire } from 'node:module';
import { Blake3Simd, simdSupported } from './blake3-simd.js';

/** The BLAKE3 interface integ uses everywhere (files, generation digests, executables). */
export interface Blake3Hash {
  update(b: Uint8Array | string): unknown;
  /** dispose: false keeps the state, so a digest of the prefix so far can be taken mid-stream */
  digest(o?: { dispose?: boolean }): Buffer;
  dispose(): void;
}

let wasmFallback: { createHash(): Blake3Hash } | null = null;

/**
 * A BLAKE3 hasher: integ's WebAssembly SIMD implementation (4 chunks at a time, ~1.8 GB/s per
 * core here) when the runtime supports SIMD128, else blake3-wasm (scalar, ~0.7 GB/s). Both are
 * tested bit-exact against each other and the official test vectors. Loaded on first use only,
 * so `--help` never compiles any wasm.
 */
export function createBlake3(): Blake3Hash {
  if (simdSupported()) {
    const h = new Blake3Simd();
    return {
      update: (b) => (typeof b === 'string' ? h.updateText(b) : h.update(b)),
      digest: (o) => (o?.dispose === false ? Buffer.from(h.peekHex(), 'hex') : h.digest()),
      dispose: () => h.reset(),
    };
  }
  wasmFallback ??= createRequire(import.meta.url)('blake3-wasm') as { createHash(): Blake3Hash };
  return wasmFallback.createHash();
}

export function blake3Hex(data: Uint8Array | string): string {
  const h = createBlake3();
  h.update(data);
  return h.digest().toString('hex');
}
