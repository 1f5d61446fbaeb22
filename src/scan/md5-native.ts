import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadLibc } from './libc.js';

/**
 * integ's multi-buffer MD5 in AVX-512 (native/md5x16.c, built by tools/build-native.mjs into
 * dist/native/): 16 files side by side at ~5.8 GB/s a core here, against ~2.2 GB/s for the
 * 8-lane WebAssembly SIMD version and ~0.9 GB/s for one MD5 in OpenSSL. Called with koffi on the
 * lanes' memory (a Buffer: no copy). Loaded on first use; null, with the reason in
 * nativeMd5Why(), where the library was not built (no C compiler at build time, not x86-64),
 * the CPU has no AVX-512F, INTEG_MD5=wasm asks for the fallback, or its known-answer test fails.
 * The digests are the same either way: all engines are tested against node:crypto.
 */
export const NATIVE_MD5_LIB = 'libinteg-md5x16.so';
export const NATIVE_LANES = 16;

export interface NativeMd5 {
  /** n blocks on each of the 16 lanes: state (4 words x 16 lanes, word-major) and the lanes' offsets, in mem */
  run(mem: Buffer, stateOff: number, ptrsOff: number, n: number): void;
  /** n blocks of lane `lane` alone, from mem + ptr, on its state in the same layout */
  one(mem: Buffer, stateOff: number, lane: number, ptr: number, n: number): void;
  path: string;
}

let loaded: NativeMd5 | null | undefined;
let why = '';

/**
 * Where the library is: dist/native beside dist/bundle (the CLI), beside dist/src (tsc's output,
 * the tests' workers), or under dist/ from src/scan (the tests' own thread).
 */
export function nativeMd5Path(): string | null {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['../native', '../../native', '../../dist/native']) {
    const p = path.join(here, up, NATIVE_MD5_LIB);
    if (fs.existsSync(p)) return p;
  }
  return null;
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
  const p = nativeMd5Path();
  const koffi = loadLibc()?.koffi;
  if (!p || !koffi) {
    why = p ? 'koffi did not load' : `${NATIVE_MD5_LIB} was not built (no C compiler at build time)`;
    return null;
  }
  try {
    const lib = koffi.load(p);
    const ok = lib.func('int integ_md5x16_ok(void)') as () => number;
    if (ok() !== 1) {
      why = 'the CPU has no AVX-512F';
      return null;
    }
    const fn = lib.func('void integ_md5x16(uint8_t *mem, uint32_t state, uint32_t ptrs, int32_t n)') as (m: Buffer, s: number, p: number, n: number) => void;
    const one = lib.func('void integ_md5x1(uint8_t *mem, uint32_t state, uint32_t lane, uint32_t ptr, int32_t n)') as NativeMd5['one'];
    const engine = { run: fn, one, path: p };
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
 * Before trusting it with evidence: 16 different inputs of 56 to 116 bytes (two blocks each once
 * padded), lane l holding 56 + 4l bytes of l + 1, against node:crypto; both functions.
 */
function knownAnswers(e: NativeMd5): boolean {
  const reg = 128;
  const mem = Buffer.alloc(320 + NATIVE_LANES * reg);
  const iv = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
  for (let l = 0; l < NATIVE_LANES; l++) {
    const at = 320 + l * reg;
    const len = 56 + 4 * l;
    mem.fill(l + 1, at, at + len);
    mem[at + len] = 0x80;
    mem.writeUInt32LE(len * 8, at + reg - 8);
    mem.writeUInt32LE(at, 256 + 4 * l);
    for (let w = 0; w < 4; w++) mem.writeUInt32LE(iv[w]!, 64 * w + 4 * l);
  }
  // the first block of every lane in lockstep; the second in lockstep too, except lane 15's: one MD5 in C
  e.run(mem, 0, 256, 1);
  const after1 = [0, 1, 2, 3].map((w) => mem.readUInt32LE(64 * w + 4 * 15));
  for (let l = 0; l < NATIVE_LANES; l++) mem.writeUInt32LE(320 + l * reg + 64, 256 + 4 * l);
  e.run(mem, 0, 256, 1);
  after1.forEach((v, w) => mem.writeUInt32LE(v, 64 * w + 4 * 15));
  e.one(mem, 0, 15, 320 + 15 * reg + 64, 1);
  for (let l = 0; l < NATIVE_LANES; l++) {
    let got = '';
    for (let w = 0; w < 4; w++) got += mem.toString('hex', 64 * w + 4 * l, 64 * w + 4 * l + 4);
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
