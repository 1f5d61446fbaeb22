import type { EntryType, ExtraAlgo, HashAlgo, Observed } from '../core/types.js';
import type { ScanJob, ScanResult } from './scan-entry.js';

/**
 * The hash pool's messages, packed: a batch of jobs or results travels as a few typed arrays
 * and one array of strings, moved (transferred) rather than copied, instead of an object graph
 * of ~20 values per file that structured clone walks on both sides. Paths are not sent back:
 * results come in job order, and the main thread still holds each job's path.
 */

/** Per-batch job options, deduplicated (a run has a handful of distinct ones). */
interface JobOpts {
  algos: HashAlgo[];
  growing: boolean;
  xattrs: boolean;
  flags: boolean;
  extra: ExtraAlgo[] | null;
}

export interface PackedJobs {
  n: number;
  ids: Float64Array;
  paths: Uint8Array;
  pathEnd: Uint32Array;
  /** null when every job's real path is its path (no --root) */
  reals: Uint8Array | null;
  realEnd: Uint32Array | null;
  /** -1: null */
  prefixLen: Float64Array;
  opt: Uint16Array;
  opts: JobOpts[];
}

const asBuffer = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

function concat(parts: readonly Buffer[], total: number): { bytes: Buffer; end: Uint32Array } {
  // allocUnsafeSlow: never a slice of Node's shared pool, so the buffer can be transferred.
  const bytes = Buffer.allocUnsafeSlow(total);
  const end = new Uint32Array(parts.length);
  let o = 0;
  for (let i = 0; i < parts.length; i++) {
    o += parts[i]!.copy(bytes, o);
    end[i] = o;
  }
  return { bytes, end };
}

export function packJobs(jobs: readonly ScanJob[]): { msg: PackedJobs; transfer: ArrayBuffer[] } {
  const n = jobs.length;
  const ids = new Float64Array(n);
  const prefixLen = new Float64Array(n);
  const opt = new Uint16Array(n);
  const opts: JobOpts[] = [];
  const keys = new Map<string, number>();
  let pathBytes = 0;
  let realBytes = 0;
  let sameReal = true;
  for (let i = 0; i < n; i++) {
    const j = jobs[i]!;
    ids[i] = j.id;
    prefixLen[i] = j.prefixLen ?? -1;
    pathBytes += j.path.length;
    realBytes += j.real.length;
    if (sameReal && j.real !== j.path && !j.real.equals(j.path)) sameReal = false;
    const extra = j.extra?.length ? j.extra : null;
    const key = `${j.algos.join(',')}|${j.growing ? 1 : 0}${j.xattrs ? 1 : 0}${j.flags ? 1 : 0}|${extra ? extra.join(',') : ''}`;
    let k = keys.get(key);
    if (k === undefined) {
      k = opts.length;
      keys.set(key, k);
      opts.push({ algos: j.algos, growing: j.growing, xattrs: j.xattrs === true, flags: j.flags === true, extra });
    }
    opt[i] = k;
  }
  const p = concat(
    jobs.map((j) => j.path),
    pathBytes,
  );
  const r = sameReal
    ? null
    : concat(
        jobs.map((j) => j.real),
        realBytes,
      );
  const msg: PackedJobs = { n, ids, paths: p.bytes, pathEnd: p.end, reals: r?.bytes ?? null, realEnd: r?.end ?? null, prefixLen, opt, opts };
  const transfer = [ids.buffer, prefixLen.buffer, opt.buffer, p.bytes.buffer, p.end.buffer] as ArrayBuffer[];
  if (r) transfer.push(r.bytes.buffer as ArrayBuffer, r.end.buffer as ArrayBuffer);
  return { msg, transfer };
}

export function unpackJobs(m: PackedJobs): ScanJob[] {
  const paths = asBuffer(m.paths);
  const reals = m.reals ? asBuffer(m.reals) : null;
  const out = new Array<ScanJob>(m.n);
  for (let i = 0; i < m.n; i++) {
    const path = paths.subarray(i > 0 ? m.pathEnd[i - 1]! : 0, m.pathEnd[i]!);
    const real = reals ? reals.subarray(i > 0 ? m.realEnd![i - 1]! : 0, m.realEnd![i]!) : path;
    const o = m.opts[m.opt[i]!]!;
    const pl = m.prefixLen[i]!;
    out[i] = {
      id: m.ids[i]!,
      path,
      real,
      algos: o.algos,
      growing: o.growing,
      prefixLen: pl < 0 ? null : pl,
      xattrs: o.xattrs,
      flags: o.flags,
      ...(o.extra ? { extra: o.extra } : {}),
    };
  }
  return out;
}

const TYPES: EntryType[] = ['file', 'dir', 'symlink', 'fifo', 'socket', 'chardev', 'blockdev', 'unknown'];
const TYPE_CODE = new Map(TYPES.map((t, i) => [t, i]));
/** status: no record / ok / failed with a record */
const NO_REC = 0;
const OK = 1;
const FAILED = 2;
/** strings per result */
const S = 7;
/** numbers per result: type, mode, uid, gid, nlink, flags (NaN: absent, Infinity: null) */
const N = 6;

export interface PackedResults {
  n: number;
  status: Uint8Array;
  num: Float64Array;
  /** size, mtime, ctime per result */
  big: BigInt64Array;
  /** inode per result (unsigned) */
  ino: BigUint64Array;
  targets: Uint8Array;
  /** -1: null */
  targetStart: Int32Array;
  targetEnd: Int32Array;
  /** blake3, sha256, xattrs, prefixBlake3, prefixSha256, code, message per result (undefined: absent) */
  strs: Array<string | null | undefined>;
  /** digests for known-bad lists and packages, where computed */
  extra: Array<Observed['extra'] | undefined>;
}

export function packResults(results: readonly ScanResult[]): { msg: PackedResults; transfer: ArrayBuffer[] } {
  const n = results.length;
  const status = new Uint8Array(n);
  const num = new Float64Array(n * N);
  const big = new BigInt64Array(n * 3);
  const ino = new BigUint64Array(n);
  const targetStart = new Int32Array(n);
  const targetEnd = new Int32Array(n);
  const strs = new Array<string | null | undefined>(n * S);
  const extra = new Array<Observed['extra'] | undefined>(n);
  const targets: Buffer[] = [];
  let to = 0;
  for (let i = 0; i < n; i++) {
    const r = results[i]!;
    const rec = r.rec;
    if (!r.ok) {
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
      to += rec.target.length;
      targetEnd[i] = to;
      targets.push(rec.target);
    }
    strs[i * S] = rec.blake3;
    strs[i * S + 1] = rec.sha256;
    strs[i * S + 2] = rec.xattrs;
    strs[i * S + 3] = rec.prefixBlake3;
    strs[i * S + 4] = rec.prefixSha256;
    if (rec.extra) extra[i] = rec.extra;
  }
  const t = concat(targets, to).bytes;
  const msg: PackedResults = { n, status, num, big, ino, targets: t, targetStart, targetEnd, strs, extra };
  const transfer = [status.buffer, num.buffer, big.buffer, ino.buffer, t.buffer, targetStart.buffer, targetEnd.buffer] as ArrayBuffer[];
  return { msg, transfer };
}

/** The results of `jobs` (the batch as sent, in the same order). */
export function unpackResults<J extends ScanJob>(jobs: readonly J[], m: PackedResults): Array<[J, ScanResult]> {
  const targets = asBuffer(m.targets);
  const out = new Array<[J, ScanResult]>(m.n);
  for (let i = 0; i < m.n; i++) {
    const job = jobs[i]!;
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
        target: ts < 0 ? null : targets.subarray(ts, m.targetEnd[i]!),
        blake3: m.strs[i * S] ?? null,
        sha256: m.strs[i * S + 1] ?? null,
      };
      const x = m.strs[i * S + 2];
      if (x !== undefined) rec.xattrs = x;
      if (!Number.isNaN(f)) rec.flags = f === Number.POSITIVE_INFINITY ? null : f;
      const pb = m.strs[i * S + 3];
      if (pb !== undefined) rec.prefixBlake3 = pb;
      const ps = m.strs[i * S + 4];
      if (ps !== undefined) rec.prefixSha256 = ps;
      const e = m.extra[i];
      if (e) rec.extra = e;
    }
    out[i] =
      st === OK
        ? [job, { id: job.id, ok: true, rec: rec! }]
        : [job, { id: job.id, ok: false, code: m.strs[i * S + 5] as string, message: m.strs[i * S + 6] as string, rec }];
  }
  return out;
}
