import { fileIoKind, readOpenFlags } from './fileio.js';
import type { Observed } from '../core/types.js';
import { loadNativeLib } from './libc.js';
import { LANE_READ } from './md5-lanes.js';
import { nativeMd5 } from './md5-native.js';
import { fixedResults, jobArrays, type JobOpts, type PackedJobs, type PackedResults, packResults, unpackJob } from './pool-protocol.js';
import { advisedBatches, scanBatch, type ScanJob, type ScanResult, stopFlagArray } from './scan-entry.js';

/**
 * A hash worker's batch of regular files and folders scanned in one native call (native/scan.c, built by
 * tools/build-native.mjs into dist/native/libinteg-scan.so): statx, open, the reads, BLAKE3 (the
 * official C implementation, vendored), fstat, flags and xattrs, close, and each result written
 * straight into the packed results message with its compare text; for a folder its flags and
 * xattrs through one descriptor. On /usr that is 96 % of a check's entries, and no JavaScript
 * runs per entry for them.
 *
 * It takes only the plain case: BLAKE3 alone (and a small packaged file's MD5 in its own lanes,
 * 32 files side by side with native/md5x16.c, as md5-lanes.ts does), not growing, no further digests. For
 * anything else in a file (an error, a race, a change while reading, xattrs it does not encode
 * itself) it leaves the job undone, and scanBatch scans that job again the JavaScript way, which
 * decides: the native code never reports a failure, so every failure is reported as before.
 * Symlinks and special files are always the JavaScript way's.
 *
 * null from load() (then every batch goes the JavaScript way, with the same results): not built
 * (no C compiler at build time, not x86-64), koffi or statx unavailable (fileio.ts falls back to
 * fs), INTEG_SCAN=js, or the known-answer test failed.
 */
export const NATIVE_SCAN_LIB = 'libinteg-scan.so';

type ScanFn = (
  reals: Uint8Array,
  ends: Uint32Array,
  dirfds: Int32Array,
  take: Uint8Array,
  n: number,
  opts: number,
  openFlags: number,
  stop: Int32Array,
  buf: Buffer,
  buflen: number,
  num: Float64Array,
  big: BigInt64Array,
  ino: BigUint64Array,
  tstart: Int32Array,
  tend: Int32Array,
  status: Uint8Array,
  xstate: Uint8Array,
  text: Buffer,
  textcap: number,
  textstart: Uint32Array,
  textend: Uint32Array,
  stats: Float64Array,
  lanes: Buffer | null,
  md5hex: Buffer,
) => number;

/* take[] bits (native/scan.c) */
const TAKE = 1;
const XATTRS = 2;
const FLAGS = 4;
const MD5 = 8;
const DONE = 0x80;
const HAS_MD5 = 0x40;
const ADVISE = 1;

let fn: ScanFn | null | undefined;
/** Bytes of the MD5 lanes' memory; 0: the native scan takes no MD5 (its lanes differ from md5-lanes.ts's) */
let lanesBytes = 0;
let lanes: Buffer | null = null;
let why = '';

/** BLAKE3 in the library's C, hex (the known-answer test; tests compare it with blake3-wasm). */
export let nativeBlake3Hex: ((data: Uint8Array) => string) | null = null;

function load(): ScanFn | null {
  if (fn !== undefined) return fn;
  fn = null;
  if (process.env.INTEG_SCAN === 'js') {
    why = 'INTEG_SCAN=js';
    return null;
  }
  try {
    const got = loadNativeLib(NATIVE_SCAN_LIB);
    if ('why' in got) {
      why = got.why;
      return null;
    }
    const lib = got.lib;
    const hex = lib.func('void integ_blake3_hex(const void *data, uint64_t len, void *out)') as (d: Uint8Array, n: number, out: Buffer) => void;
    const out = Buffer.alloc(65);
    nativeBlake3Hex = (d) => {
      hex(d, d.length, out);
      return out.toString('latin1', 0, 64);
    };
    // Known answers before trusting it with evidence: the official test vectors for "abc" and for
    // 102,400 bytes of i % 251 (a hundred chunks: the SIMD paths that hash many at once).
    const long = Buffer.alloc(102_400);
    for (let i = 0; i < long.length; i++) long[i] = i % 251;
    if (
      nativeBlake3Hex(Buffer.from('abc')) !== '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85' ||
      nativeBlake3Hex(long) !== 'bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085'
    )
      throw new Error('known-answer test failed');
    fn = lib.func(
      'int integ_scan(const void *reals, const void *ends, const void *dirfds, void *take, uint32_t n, uint32_t opts, int32_t open_flags, const void *stop, void *buf, uint32_t buflen, void *num, void *big, void *ino, void *tstart, void *tend, void *status, void *xstate, void *text, uint32_t textcap, void *textstart, void *textend, void *stats, void *lanes, void *md5hex)',
    ) as ScanFn;
    // the MD5 lanes' memory, and the largest file a lane takes: md5-lanes.ts's, or the scan leaves MD5 to it
    const layout = new Uint32Array(2);
    (lib.func('void integ_scan_lanes(void *out)') as (o: Uint32Array) => void)(layout);
    lanesBytes = layout[1] === LANE_READ ? layout[0]! : 0;
  } catch (e) {
    why = (e as Error).message.split('\n')[0] ?? 'not loadable';
    nativeBlake3Hex = null;
    fn = null;
  }
  return fn;
}

/** Which scan the workers run here, for the bench's header. */
export function scanImplementation(): string {
  return load() && fileIoKind() === 'koffi' ? `native (${NATIVE_SCAN_LIB}, BLAKE3 C 1.8.6)` : `JavaScript (${why || 'system calls through fs'})`;
}

/**
 * What the native scan takes of a job with these options. MD5 in the lanes (a packaged file's, for
 * baseline) only where md5-lanes.ts would run them natively too (nativeMd5: AVX-512, its
 * known-answer test, not INTEG_MD5=wasm): else the JavaScript way keeps those jobs.
 */
function takeOf(o: JobOpts): number {
  if (o.algos.length !== 1 || o.algos[0] !== 'blake3' || o.growing || o.extra) return 0;
  if (o.md5Lanes && (lanesBytes === 0 || !nativeMd5())) return 0;
  return TAKE | (o.xattrs ? XATTRS : 0) | (o.flags ? FLAGS : 0) | (o.md5Lanes ? MD5 : 0);
}

/** Room for a batch's compare texts; a job whose text would not fit is the JavaScript way's. */
const text = Buffer.allocUnsafe(128 * 1024);
const stats = new Float64Array(4);
let take = new Uint8Array(0);
let starts = new Uint32Array(0);
let ends = new Uint32Array(0);
let md5hex = Buffer.alloc(0);
const noStop = new Int32Array(new SharedArrayBuffer(4));

/** Files the native scan did and left to the JavaScript way, on this thread (tests). */
export const nativeCounts = { done: 0, left: 0 };

/**
 * Scan a packed batch, the native way where it may and the JavaScript way for the rest, and pack
 * the results; null when the native scan is not available or takes none of this batch (the caller
 * then scans it all the JavaScript way).
 */
export function scanPacked(m: PackedJobs, buf: Buffer): { msg: PackedResults; transfer: ArrayBuffer[] } | null {
  const n = m.n;
  if (n === 0 || !load() || fileIoKind() !== 'koffi') return null;
  const bits = m.opts.map(takeOf);
  if (!bits.some((b) => b !== 0)) return null;
  // the lanes' memory (~4.2 MB) only in a thread that is given MD5s to make
  if (!lanes && bits.some((b) => b & MD5)) lanes = Buffer.alloc(lanesBytes);
  const v = jobArrays(m);
  if (take.length < n) {
    take = new Uint8Array(n);
    starts = new Uint32Array(n);
    ends = new Uint32Array(n);
    md5hex = Buffer.alloc(32 * n);
  }
  for (let i = 0; i < n; i++) take[i] = bits[v.opt[i]!]!;
  const fv = fixedResults(n);
  stats.fill(0);
  const reals = v.reals ?? v.paths;
  const done = fn!(
    reals,
    v.reals ? v.realEnd! : v.pathEnd,
    v.dirFd,
    take,
    n,
    advisedBatches() > 0 ? ADVISE : 0,
    readOpenFlags(),
    stopFlagArray() ?? noStop,
    buf,
    buf.length,
    fv.num,
    fv.big,
    fv.ino,
    fv.targetStart,
    fv.targetEnd,
    fv.status,
    fv.xattrsState,
    text,
    text.length,
    starts,
    ends,
    stats,
    lanes,
    md5hex,
  );
  nativeCounts.done += done;
  nativeCounts.left += n - done;
  const results = new Array<ScanResult | undefined>(n);
  const at: number[] = [];
  const rest: ScanJob[] = [];
  let extra: Array<Observed['extra'] | undefined> | null = null;
  for (let i = 0; i < n; i++) {
    const t = take[i]!;
    if (!(t & DONE)) {
      at.push(i);
      rest.push(unpackJob(m, v, i));
    } else if (t & HAS_MD5) (extra ??= new Array<Observed['extra'] | undefined>(n))[i] = { md5: md5hex.toString('latin1', 32 * i, 32 * i + 32) };
  }
  // always, even with nothing left: it also keeps the cache heuristic's state, with the native reads counted
  const scanned = scanBatch(rest, buf, stats);
  for (let k = 0; k < at.length; k++) results[at[k]!] = scanned[k];
  return packResults(results, { text, starts, ends, extra }, fv);
}
