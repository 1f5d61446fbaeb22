import { cmpText, writeCmp } from '../core/entry-cmp.js';
import type { EntryType, ExtraAlgo, HashAlgo, Observed } from '../core/types.js';
import type { ScanJob, ScanResult } from './scan-entry.js';

/**
 * The hash pool's messages, packed: a batch of jobs or results travels as a few typed arrays
 * and one array of strings, moved (transferred) rather than copied, instead of an object graph
 * of ~20 values per file that structured clone walks on both sides. Paths are not sent back:
 * results come in job order, and the main thread still holds each job's path.
 */

/** Per-batch job options, deduplicated (a run has a handful of distinct ones). */
export interface JobOpts {
  algos: HashAlgo[];
  growing: boolean;
  xattrs: boolean;
  flags: boolean;
  extra: ExtraAlgo[] | null;
  md5Lanes: boolean;
}

export interface PackedJobs {
  n: number;
  /**
   * One buffer, moved: ids (f64 × n), prefixLen (f64 × n, -1: null), pathEnd (u32 × n), dirFd
   * (i32 × n, -1: none), realEnd (u32 × n, only with reals), opt (u16 × n), padding to 8, then the path bytes and the
   * real-path bytes. One transfer a message: each transferred buffer costs the sender and the
   * receiver a fixed price, more than copying a batch's few kilobytes.
   */
  buf: ArrayBuffer;
  pathBytes: number;
  /** null when every job's real path is its path (no --root) */
  realBytes: number | null;
  opts: JobOpts[];
}

type ArrayKind<T> = { new (buf: ArrayBuffer, offset: number, length: number): T; readonly BYTES_PER_ELEMENT: number };

/**
 * Lays views out one after another in one buffer. A layout function given a cursor without a
 * buffer only measures (`end`; the views it returns are not made), so a message's size and its
 * offsets come from the same lines and cannot disagree.
 */
class Cursor {
  end = 0;
  constructor(private readonly buf: ArrayBuffer | null) {}
  array<T>(Kind: ArrayKind<T>, n: number): T {
    const v = this.buf ? new Kind(this.buf, this.end, n) : (undefined as T);
    this.end += Kind.BYTES_PER_ELEMENT * n;
    return v;
  }
  bytes(n: number): Buffer {
    const v = this.buf ? Buffer.from(this.buf, this.end, n) : (undefined as unknown as Buffer);
    this.end += n;
    return v;
  }
  align8(): void {
    this.end = (this.end + 7) & ~7;
  }
}

/** The bytes a layout takes. */
function sizeOf(layout: (c: Cursor) => unknown): number {
  const c = new Cursor(null);
  layout(c);
  return c.end;
}

/** Typed-array views of a packed job batch (the same offsets on both sides). */
function jobViews(c: Cursor, n: number, pathBytes: number, realBytes: number | null) {
  const ids = c.array(Float64Array, n);
  const prefixLen = c.array(Float64Array, n);
  const pathEnd = c.array(Uint32Array, n);
  const dirFd = c.array(Int32Array, n);
  const realEnd = realBytes === null ? null : c.array(Uint32Array, n);
  const opt = c.array(Uint16Array, n);
  c.align8();
  const paths = c.bytes(pathBytes);
  const reals = realBytes === null ? null : c.bytes(realBytes);
  return { ids, prefixLen, pathEnd, dirFd, realEnd, opt, paths, reals };
}

export function packJobs(jobs: readonly ScanJob[]): { msg: PackedJobs; transfer: ArrayBuffer[] } {
  const n = jobs.length;
  const opts: JobOpts[] = [];
  const keys = new Map<string, number>();
  let pathBytes = 0;
  let realBytes = 0;
  let sameReal = true;
  for (let i = 0; i < n; i++) {
    const j = jobs[i]!;
    pathBytes += j.path.length;
    realBytes += j.real.length;
    if (sameReal && j.real !== j.path && !j.real.equals(j.path)) sameReal = false;
  }
  const rb = sameReal ? null : realBytes;
  const buf = new ArrayBuffer(sizeOf((c) => jobViews(c, n, pathBytes, rb)));
  const v = jobViews(new Cursor(buf), n, pathBytes, rb);
  let po = 0;
  let ro = 0;
  let prev: ScanJob | null = null;
  let prevK = 0;
  for (let i = 0; i < n; i++) {
    const j = jobs[i]!;
    v.ids[i] = j.id;
    v.prefixLen[i] = j.prefixLen ?? -1;
    v.dirFd[i] = j.dirFd ?? -1;
    po += j.path.copy(v.paths, po);
    v.pathEnd[i] = po;
    if (v.reals) {
      ro += j.real.copy(v.reals, ro);
      v.realEnd![i] = ro;
    }
    const extra = j.extra?.length ? j.extra : null;
    // Jobs in a row nearly always ask the same (the same arrays, even): no key text for those.
    if (
      !(
        prev &&
        prev.algos === j.algos &&
        prev.extra === (j.extra ?? null) &&
        prev.growing === j.growing &&
        prev.xattrs === j.xattrs &&
        prev.flags === j.flags &&
        prev.md5Lanes === j.md5Lanes
      )
    ) {
      const key = `${j.algos.join(',')}|${j.growing ? 1 : 0}${j.xattrs ? 1 : 0}${j.flags ? 1 : 0}${j.md5Lanes ? 1 : 0}|${extra ? extra.join(',') : ''}`;
      let k = keys.get(key);
      if (k === undefined) {
        k = opts.length;
        keys.set(key, k);
        opts.push({ algos: j.algos, growing: j.growing, xattrs: j.xattrs === true, flags: j.flags === true, extra, md5Lanes: j.md5Lanes === true });
      }
      prevK = k;
      prev = j;
    }
    v.opt[i] = prevK;
  }
  return { msg: { n, buf, pathBytes, realBytes: rb, opts }, transfer: [buf] };
}

/** The typed-array views of a packed job batch. */
export type JobViews = ReturnType<typeof jobViews>;

export function jobArrays(m: PackedJobs): JobViews {
  return jobViews(new Cursor(m.buf), m.n, m.pathBytes, m.realBytes);
}

/** Job i of a packed batch, as an object. */
export function unpackJob(m: PackedJobs, v: JobViews, i: number): ScanJob {
  const path = v.paths.subarray(i > 0 ? v.pathEnd[i - 1]! : 0, v.pathEnd[i]!);
  const real = v.reals ? v.reals.subarray(i > 0 ? v.realEnd![i - 1]! : 0, v.realEnd![i]!) : path;
  const o = m.opts[v.opt[i]!]!;
  const pl = v.prefixLen[i]!;
  return {
    id: v.ids[i]!,
    path,
    real,
    algos: o.algos,
    growing: o.growing,
    prefixLen: pl < 0 ? null : pl,
    xattrs: o.xattrs,
    flags: o.flags,
    extra: o.extra ?? undefined,
    md5Lanes: o.md5Lanes,
    dirFd: v.dirFd[i]!,
  };
}

export function unpackJobs(m: PackedJobs): ScanJob[] {
  const v = jobArrays(m);
  const out = new Array<ScanJob>(m.n);
  for (let i = 0; i < m.n; i++) out[i] = unpackJob(m, v, i);
  return out;
}

const TYPES: EntryType[] = ['file', 'dir', 'symlink', 'fifo', 'socket', 'chardev', 'blockdev', 'unknown'];
const TYPE_CODE = new Map(TYPES.map((t, i) => [t, i]));
/** status: no record / ok / failed with a record */
const NO_REC = 0;
const OK = 1;
const FAILED = 2;
/** xattrs of a complete result: not read, null, or text (in its compare text) */
const X_ABSENT = 0;
const X_NULL = 1;
const X_TEXT = 2;
/** strings per result */
const S = 7;
/** numbers per result: type, mode, uid, gid, nlink, flags (NaN: absent, Infinity: null) */
const N = 6;

export interface PackedResults {
  n: number;
  /**
   * One buffer, moved: num (f64 × 6n: type, mode, uid, gid, nlink, flags; NaN: absent, Infinity:
   * null), big (i64 × 3n: size, mtime, ctime), ino (u64 × n), targetStart and targetEnd
   * (i32 × n each, -1: none), cmpEnd (u32 × n), status (u8 × n), xattrs state (u8 × n, for
   * status OK: absent, null or text), then the symlink targets' bytes and the compare texts
   * (core/entry-cmp.ts, UTF-8) of the results with status OK, which also carry their digests
   * and xattrs (strs has those only for the others). strs and extra are null when they would
   * hold nothing (the common batch: structured clone then has two arrays fewer to walk).
   */
  buf: ArrayBuffer;
  targetBytes: number;
  cmpBytes: number;
  /** blake3, sha256, xattrs, prefixBlake3, prefixSha256, code, message per result (undefined: absent) */
  strs: Array<string | null | undefined> | null;
  /** digests for known-bad lists and packages, where computed */
  extra: Array<Observed['extra'] | undefined> | null;
}

function resultViews(c: Cursor, n: number, targetBytes: number, cmpBytes: number) {
  const num = c.array(Float64Array, n * N);
  const big = c.array(BigInt64Array, n * 3);
  const ino = c.array(BigUint64Array, n);
  const targetStart = c.array(Int32Array, n);
  const targetEnd = c.array(Int32Array, n);
  const cmpEnd = c.array(Uint32Array, n);
  const status = c.array(Uint8Array, n);
  const xattrsState = c.array(Uint8Array, n);
  const targets = c.bytes(targetBytes);
  const cmps = c.bytes(cmpBytes);
  return { num, big, ino, targetStart, targetEnd, cmpEnd, status, xattrsState, targets, cmps };
}

/** Where packResults writes compare texts first (per thread; grows when a batch needs more). */
let cmpScratch = Buffer.allocUnsafe(64 * 1024);

/** The fixed part of a results message for n results: everything before the targets and compare texts. */
export type FixedResults = Omit<ReturnType<typeof resultViews>, 'targets' | 'cmps'> & { bytes: number; raw: Uint8Array };

let fixedScratch = new ArrayBuffer(0);
let fixedCache: FixedResults | null = null;

/**
 * This thread's scratch for the fixed part of n results (the views are kept while n stays the
 * same, as it nearly always does). packResults writes each result's numbers there, then copies
 * the whole part into the message in one piece; the native scan (native-scan.ts) writes its
 * results there first.
 */
export function fixedResults(n: number): FixedResults {
  if (!fixedCache || fixedCache.num.length !== n * N) {
    const bytes = sizeOf((c) => resultViews(c, n, 0, 0));
    if (fixedScratch.byteLength < bytes) fixedScratch = new ArrayBuffer(Math.max(bytes, 2 * fixedScratch.byteLength));
    const v = resultViews(new Cursor(fixedScratch), n, 0, 0);
    fixedCache = {
      num: v.num,
      big: v.big,
      ino: v.ino,
      targetStart: v.targetStart,
      targetEnd: v.targetEnd,
      cmpEnd: v.cmpEnd,
      status: v.status,
      xattrsState: v.xattrsState,
      bytes,
      raw: new Uint8Array(fixedScratch, 0, bytes),
    };
  }
  fixedCache.raw.fill(0); // nothing of the batch before: a result without a record reads as zeros, as in a new buffer
  return fixedCache;
}

/**
 * Results written elsewhere (the native scan), for those packResults is given as undefined: their
 * numbers are in the fixed part already, result i's compare text is `text` from starts[i] to
 * ends[i], and extra[i] its further digests (an MD5 from the lanes).
 */
export interface NativeTexts {
  text: Buffer;
  starts: Uint32Array;
  ends: Uint32Array;
  extra: Array<Observed['extra'] | undefined> | null;
}

function growScratch(need: number, keep: number): void {
  let size = cmpScratch.length * 2;
  while (size < need) size *= 2;
  const bigger = Buffer.allocUnsafe(size);
  cmpScratch.copy(bigger, 0, 0, keep);
  cmpScratch = bigger;
}

/**
 * Pack a batch's results. `results[i]` undefined: job i's result was written by the native scan
 * (`native`'s text, and its numbers in `fv`, which must then be fixedResults(n)).
 */
export function packResults(
  results: ReadonlyArray<ScanResult | undefined>,
  native: NativeTexts | null = null,
  fv: FixedResults = fixedResults(results.length),
): { msg: PackedResults; transfer: ArrayBuffer[] } {
  const n = results.length;
  let targetBytes = 0;
  // The compare texts are written once, into this thread's scratch buffer, then copied in one piece.
  let cmpBytes = 0;
  for (let i = 0; i < n; i++) {
    const r = results[i];
    if (!r) {
      const s = native!.starts[i]!;
      const e = native!.ends[i]!;
      if (cmpScratch.length - cmpBytes < e - s) growScratch(cmpBytes + e - s, cmpBytes);
      cmpBytes += native!.text.copy(cmpScratch, cmpBytes, s, e);
    } else {
      if (r.rec?.target) targetBytes += r.rec.target.length;
      if (r.ok) {
        let e = writeCmp(r.rec, cmpScratch, cmpBytes);
        while (e < 0) {
          growScratch(cmpScratch.length * 2, cmpBytes);
          e = writeCmp(r.rec, cmpScratch, cmpBytes);
        }
        cmpBytes = e;
      }
    }
    fv.cmpEnd[i] = cmpBytes;
  }
  const buf = new ArrayBuffer(sizeOf((c) => resultViews(c, n, targetBytes, cmpBytes)));
  const { targets, cmps } = resultViews(new Cursor(buf), n, targetBytes, cmpBytes);
  const { num, big, ino, targetStart, targetEnd, status, xattrsState } = fv;
  cmpScratch.copy(cmps, 0, 0, cmpBytes);
  let strs: Array<string | null | undefined> | null = null;
  let extra: Array<Observed['extra'] | undefined> | null = null;
  let to = 0;
  for (let i = 0; i < n; i++) {
    const r = results[i];
    if (!r) {
      // written by the native scan
      const x = native!.extra?.[i];
      if (x) (extra ??= new Array<Observed['extra'] | undefined>(n))[i] = x;
      continue;
    }
    const rec = r.rec;
    if (!r.ok) {
      strs ??= new Array<string | null | undefined>(n * S);
      strs[i * S + 5] = r.code;
      strs[i * S + 6] = r.message;
    }
    targetStart[i] = -1;
    targetEnd[i] = -1;
    if (!rec) {
      status[i] = NO_REC;
      continue;
    }
    status[i] = r.ok ? OK : FAILED;
    num[i * N] = TYPE_CODE.get(rec.type) ?? 7;
    num[i * N + 1] = rec.mode;
    num[i * N + 2] = rec.uid;
    num[i * N + 3] = rec.gid;
    num[i * N + 4] = rec.nlink;
    num[i * N + 5] = rec.flags === undefined ? Number.NaN : rec.flags === null ? Number.POSITIVE_INFINITY : rec.flags;
    big[i * 3] = rec.size;
    big[i * 3 + 1] = rec.mtimeNs;
    big[i * 3 + 2] = rec.ctimeNs;
    ino[i] = rec.inode;
    if (rec.target) {
      targetStart[i] = to;
      to += rec.target.copy(targets, to);
      targetEnd[i] = to;
    }
    // A complete result's digests and xattrs are in its compare text: not sent twice.
    if (r.ok) xattrsState[i] = rec.xattrs === undefined ? X_ABSENT : rec.xattrs === null ? X_NULL : X_TEXT;
    else {
      strs ??= new Array<string | null | undefined>(n * S);
      strs[i * S] = rec.blake3;
      strs[i * S + 1] = rec.sha256;
      strs[i * S + 2] = rec.xattrs;
    }
    if (rec.prefixBlake3 !== undefined || rec.prefixSha256 !== undefined) {
      strs ??= new Array<string | null | undefined>(n * S);
      strs[i * S + 3] = rec.prefixBlake3;
      strs[i * S + 4] = rec.prefixSha256;
    }
    if (rec.extra) (extra ??= new Array<Observed['extra'] | undefined>(n))[i] = rec.extra;
  }
  new Uint8Array(buf, 0, fv.bytes).set(fv.raw);
  return { msg: { n, buf, targetBytes, cmpBytes, strs, extra }, transfer: [buf] };
}

/**
 * The results of one batch of jobs (as sent, in the same order), read lazily: the common
 * question, "is this entry what was stored?", is answered from the packed compare texts without
 * building a record; result(i) builds one where it is needed. Iterates as [job, result] pairs.
 */
export class ResultBatch<J extends ScanJob> implements Iterable<[J, ScanResult]> {
  private readonly v: ReturnType<typeof resultViews> | null;

  private constructor(
    readonly jobs: readonly J[],
    private readonly packed: PackedResults | null,
    private readonly plain: readonly ScanResult[] | null,
  ) {
    this.v = packed ? resultViews(new Cursor(packed.buf), packed.n, packed.targetBytes, packed.cmpBytes) : null;
  }

  /** Results as a worker sent them. */
  static packed<J extends ScanJob>(jobs: readonly J[], p: PackedResults): ResultBatch<J> {
    return new ResultBatch(jobs, p, null);
  }

  /** Results made on this thread. */
  static plain<J extends ScanJob>(jobs: readonly J[], results: readonly ScanResult[]): ResultBatch<J> {
    return new ResultBatch(jobs, null, results);
  }

  get length(): number {
    return this.jobs.length;
  }

  /** Whether job i was scanned completely (every attribute read, content hashed where asked). */
  ok(i: number): boolean {
    return this.v ? this.v.status[i] === OK : this.plain![i]!.ok;
  }

  /** Whether job i was scanned completely and its compare text is `cmp`'s bytes [s, e). */
  sameAs(i: number, cmp: Buffer, s: number, e: number): boolean {
    if (!this.v) {
      const r = this.plain![i]!;
      return r.ok && Buffer.from(cmpText(r.rec)).equals(cmp.subarray(s, e));
    }
    if (this.v.status[i] !== OK) return false;
    const ce = this.v.cmpEnd[i]!;
    const cs = i > 0 ? this.v.cmpEnd[i - 1]! : 0;
    return ce - cs === e - s && cmp.compare(this.v.cmps, cs, ce, s, e) === 0;
  }

  /** Size of job i when it is a regular file that was read (for progress), else 0. */
  fileBytes(i: number): number {
    if (!this.v) {
      const r = this.plain![i]!.rec;
      return r?.type === 'file' ? Number(r.size) : 0;
    }
    return this.v.status[i] !== NO_REC && this.v.num[i * N] === 0 ? Number(this.v.big[i * 3]) : 0;
  }

  /** The full result of job i. */
  result(i: number): ScanResult {
    if (!this.v) return this.plain![i]!;
    const m = this.v;
    const p = this.packed!;
    const job = this.jobs[i]!;
    const st = m.status[i]!;
    let rec: Observed | null = null;
    if (st !== NO_REC) {
      const f = m.num[i * N + 5]!;
      const ts = m.targetStart[i]!;
      rec = {
        path: job.path,
        type: TYPES[m.num[i * N]!]!,
        mode: m.num[i * N + 1]!,
        uid: m.num[i * N + 2]!,
        gid: m.num[i * N + 3]!,
        size: m.big[i * 3]!,
        mtimeNs: m.big[i * 3 + 1]!,
        ctimeNs: m.big[i * 3 + 2]!,
        inode: m.ino[i]!,
        nlink: m.num[i * N + 4]!,
        target: ts < 0 ? null : m.targets.subarray(ts, m.targetEnd[i]!),
        blake3: p.strs?.[i * S] ?? null,
        sha256: p.strs?.[i * S + 1] ?? null,
      };
      if (st === OK) {
        // blake3, sha256 and xattrs from the compare text: fields 10 and 11, and all after the 13th space
        const ce = m.cmpEnd[i]!;
        const text = m.cmps.toString('utf8', i > 0 ? m.cmpEnd[i - 1]! : 0, ce);
        const fields = text.split(' ', 13);
        rec.blake3 = fields[10] === '-' ? null : fields[10]!;
        rec.sha256 = fields[11] === '-' ? null : fields[11]!;
        const xs = m.xattrsState[i];
        if (xs === X_NULL) rec.xattrs = null;
        else if (xs === X_TEXT) rec.xattrs = text.slice(fields.reduce((a, w) => a + w.length + 1, 0) + 1);
      } else {
        const x = p.strs?.[i * S + 2];
        if (x !== undefined) rec.xattrs = x;
      }
      if (!Number.isNaN(f)) rec.flags = f === Number.POSITIVE_INFINITY ? null : f;
      const pb = p.strs?.[i * S + 3];
      if (pb !== undefined) rec.prefixBlake3 = pb;
      const ps = p.strs?.[i * S + 4];
      if (ps !== undefined) rec.prefixSha256 = ps;
      const e = p.extra?.[i];
      if (e) rec.extra = e;
    }
    return st === OK
      ? { id: job.id, ok: true, rec: rec! }
      : { id: job.id, ok: false, code: p.strs?.[i * S + 5] as string, message: p.strs?.[i * S + 6] as string, rec };
  }

  *[Symbol.iterator](): Iterator<[J, ScanResult]> {
    for (let i = 0; i < this.jobs.length; i++) yield [this.jobs[i]!, this.result(i)];
  }
}
