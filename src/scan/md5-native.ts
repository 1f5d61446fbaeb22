import crypto from 'node:crypto';
import { loadNativeLib, nativeLibPath } from './libc.js';

/**
 * integ's multi-buffer MD5 in AVX-512 (native/md5x16.c, built by tools/build-native.mjs into
 * dist/native/): 32 files side by side, two sets of 16 lanes interleaved, at ~11 GB/s a core
 * here, against ~2.2 GB/s for the 8-lane WebAssembly SIMD version and ~0.8 GB/s for one MD5 in
 * OpenSSL. Called with koffi on the lanes' memory (a Buffer: no copy). Loaded on first use; null, with the reason in
 * nativeMd5Why(), where the library was not built (no C compiler at build time, not x86-64),
 * the CPU has no AVX-512F, INTEG_MD5=wasm asks for the fallback, or its known-answer test fails.
 * The digests are the same either way: all engines are tested against node:crypto.
 */
export const NATIVE_MD5_LIB = 'libinteg-md5x16.so';
export const NATIVE_LANES = 32;
/** Bytes of one set of 16 lanes' state (4 words x 16 lanes, word-major): set s's at stateOff + s * NATIVE_SET_STATE */
export const NATIVE_SET_STATE = 256;

/** Offset of word w (0-3) of lane l's state, from the start of the lanes' state. */
export function nativeWord(l: number, w: number): number {
  return NATIVE_SET_STATE * (l >> 4) + 64 * w + 4 * (l & 15);
}

export interface NativeMd5 {
  /** n blocks on each of the 32 lanes: state (two sets of 4 words x 16 lanes, nativeWord()) and the lanes' 32 offsets, in mem */
  run(mem: Buffer, stateOff: number, ptrsOff: number, n: number): void;
  /** n blocks of lane `lane` alone, from mem + ptr, on its state in the same layout */
  one(mem: Buffer, stateOff: number, lane: number, ptr: number, n: number): void;
  path: string;
}

let loaded: NativeMd5 | null | undefined;
let why = '';

/** Where the library is (libc.ts nativeLibPath), or null where it was not built. */
export function nativeMd5Path(): string | null {
  return nativeLibPath(NATIVE_MD5_LIB);
}

export function nativeMd5(): NativeMd5 | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.env.INTEG_MD5 === 'wasm') {
    why = 'INTEG_MD5=wasm';
    return null;
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    why = `not built for ${process.platform}-${process.arch}`;
    return null;
  }
  try {
    const got = loadNativeLib(NATIVE_MD5_LIB);
    if ('why' in got) {
      why = got.why;
      return null;
    }
    const lib = got.lib;
    const ok = lib.func('int integ_md5x16_ok(void)') as () => number;
    if (ok() !== 1) {
      why = 'the CPU has no AVX-512F';
      return null;
    }
    const fn = lib.func('void integ_md5x32(uint8_t *mem, uint32_t state, uint32_t ptrs, int32_t n)') as (m: Buffer, s: number, p: number, n: number) => void;
    const inSet = lib.func('void integ_md5x1(uint8_t *mem, uint32_t state, uint32_t lane, uint32_t ptr, int32_t n)') as NativeMd5['one'];
    // the C takes a lane of one set, on that set's state
    const one: NativeMd5['one'] = (m, s, l, ptr, n) => inSet(m, s + NATIVE_SET_STATE * (l >> 4), l & 15, ptr, n);
    const engine = { run: fn, one, path: got.path };
    if (!knownAnswers(engine)) throw new Error('known-answer test failed');
    loaded = engine;
  } catch (e) {
    why = (e as Error).message.split('\n')[0] ?? 'not loadable';
    loaded = null;
  }
  return loaded;
}

/** Why nativeMd5() is null ('' while it has not been asked, or when it loaded). */
export function nativeMd5Why(): string {
  return why;
}

/**
 * Before trusting it with evidence: 32 different inputs of 56 to 180 bytes (two or three blocks once
 * padded), lane l holding 56 + 4l bytes of l + 1, against node:crypto; both functions, on a lane
 * of each set.
 */
function knownAnswers(e: NativeMd5): boolean {
  const reg = 192;
  const ptrs = 2 * NATIVE_SET_STATE;
  const data = ptrs + 4 * NATIVE_LANES;
  const mem = Buffer.alloc(data + NATIVE_LANES * reg);
  const iv = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
  const blocks: number[] = [];
  for (let l = 0; l < NATIVE_LANES; l++) {
    const at = data + l * reg;
    const len = 56 + 4 * l;
    mem.fill(l + 1, at, at + len);
    mem[at + len] = 0x80;
    blocks.push(((len + 8) >> 6) + 1);
    mem.writeUInt32LE(len * 8, at + 64 * blocks[l]! - 8);
    for (let w = 0; w < 4; w++) mem.writeUInt32LE(iv[w]!, nativeWord(l, w));
  }
  // every lane's blocks in lockstep while it has any (a lane done hashes its first block again, on a
  // state that is put back); lanes 15 and 31 take their last block alone, in C
  const saved = Buffer.alloc(2 * NATIVE_SET_STATE);
  for (let b = 0; b < Math.max(...blocks); b++) {
    mem.copy(saved, 0, 0, saved.length);
    for (let l = 0; l < NATIVE_LANES; l++) mem.writeUInt32LE(data + l * reg + 64 * Math.min(b, blocks[l]! - 1), ptrs + 4 * l);
    e.run(mem, 0, ptrs, 1);
    for (let l = 0; l < NATIVE_LANES; l++) {
      const mine = b < blocks[l]! - (l === 15 || l === 31 ? 1 : 0);
      if (!mine) for (let w = 0; w < 4; w++) mem.writeUInt32LE(saved.readUInt32LE(nativeWord(l, w)), nativeWord(l, w));
    }
  }
  for (const l of [15, 31]) e.one(mem, 0, l, data + l * reg + 64 * (blocks[l]! - 1), 1);
  for (let l = 0; l < NATIVE_LANES; l++) {
    let got = '';
    for (let w = 0; w < 4; w++) got += mem.toString('hex', nativeWord(l, w), nativeWord(l, w) + 4);
    if (
      got !==
      crypto
        .createHash('md5')
        .update(Buffer.alloc(56 + 4 * l, l + 1))
        .digest('hex')
    )
      return false;
  }
  return true;
}
