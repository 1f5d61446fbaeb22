import { createRequire } from 'node:module';

/**
 * Native BLAKE3 from @napi-rs/blake-hash (Rust `blake3` crate, prebuilt for Linux x64/arm64
 * glibc and musl): AVX-512/AVX2/NEON chosen at run time, ~5 GB/s per core here on 256 KiB reads,
 * three times integ's WebAssembly SIMD. Each call across N-API costs ~1.5 us, so small inputs
 * stay on the wasm hasher (see NATIVE_MIN in scan-entry.ts). Loaded on first use; where the
 * platform has no prebuilt binary (or INTEG_BLAKE3=wasm asks for the fallback), the wasm
 * hashers are used and the digests are the same: all three are tested against blake3-wasm.
 */
export interface NativeBlake3 {
  reset(): void;
  update(input: Uint8Array): unknown;
  /** hex digest of everything so far; the hash goes on (finalize does not consume the state) */
  digest(format: 'hex'): string;
}

type Ctor = new () => NativeBlake3;

let ctor: Ctor | null | undefined;
let why: string | null = null;

function load(): Ctor | null {
  if (ctor !== undefined) return ctor;
  if (process.env.INTEG_BLAKE3 === 'wasm') {
    why = 'INTEG_BLAKE3=wasm';
    return (ctor = null);
  }
  try {
    const m = createRequire(import.meta.url)('@napi-rs/blake-hash') as { Blake3Hasher?: Ctor };
    if (typeof m.Blake3Hasher !== 'function') throw new Error('no Blake3Hasher export');
    // One known answer before trusting it with evidence: BLAKE3("abc").
    const probe = new m.Blake3Hasher();
    probe.update(Buffer.from('abc'));
    if (probe.digest('hex') !== '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85') throw new Error('known-answer test failed');
    ctor = m.Blake3Hasher;
  } catch (e) {
    why = (e as Error).message.split('\n')[0] ?? 'not loadable';
    ctor = null;
  }
  return ctor;
}

let instance: NativeBlake3 | null | undefined;
let disabled = false;

/** Tests: hash with the wasm hashers on this thread even where the native one loads. */
export function disableNativeBlake3(off: boolean): void {
  disabled = off;
}

/** The thread's native hasher (reset before each use), or null where it is not available. */
export function threadNativeBlake3(): NativeBlake3 | null {
  if (disabled) return null;
  if (instance === undefined) {
    const C = load();
    instance = C ? new C() : null;
  }
  return instance;
}

/** Which BLAKE3 integ hashes large files with here, for --version-style reports and the bench. */
export function blake3Implementation(): string {
  return load() ? 'native (@napi-rs/blake-hash)' : `wasm (${why ?? 'native not loaded'})`;
}
