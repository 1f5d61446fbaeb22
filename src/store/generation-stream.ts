import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { EntryType } from '../core/types.js';
import type { BaselineRepo, Generation, StoredEntry } from './baseline-repo.js';
import type { GenerationDigestResult } from './generation-digest.js';

/** What the reader worker is started with. */
export interface ReaderInit {
  file: string;
  header: Pick<
    Generation,
    'id' | 'createdAt' | 'kind' | 'user' | 'uid' | 'hostname' | 'note' | 'root' | 'policyDigest' | 'hashAlgos' | 'parentDigest' | 'toolVersion'
  >;
  /** rows per message */
  batch: number;
  /** messages the worker may be ahead of the consumer */
  window: number;
  /** SharedArrayBuffer: [0] batches consumed, [1] stop flag */
  credit: SharedArrayBuffer;
}

/**
 * A batch of rows in column arrays: one buffer for all paths (and one for all symlink targets)
 * with offsets, typed arrays for the numbers, one flat array for the strings. Structured clone
 * then copies a handful of objects per batch instead of ~18 per row, and the buffers move
 * (transfer) instead of being copied.
 */
export interface PackedRows {
  n: number;
  rowid: Float64Array;
  paths: Uint8Array;
  /** path i is paths[pathEnd[i-1] .. pathEnd[i]) */
  pathEnd: Uint32Array;
  targets: Uint8Array;
  /** target i: -1 null, else targets[targetEnd[i-1 non-null] .. targetEnd[i]) */
  targetStart: Int32Array;
  targetEnd: Int32Array;
  /** size, mtime, ctime, inode per row */
  big: BigInt64Array;
  /** mode, uid, gid, nlink, flags (NaN: NULL) per row */
  small: Float64Array;
  /** rule, error, type, blake3, sha256, xattrs per row */
  strs: Array<string | null>;
}

const STRS = 6;

/** Pack rows (DigestRow order, starting at index `o` of each row) for posting; `transfer` lists the buffers to move. */
export function packRows(rowids: number[], rows: ReadonlyArray<readonly unknown[]>, o = 0): PackedRows & { transfer: ArrayBuffer[] } {
  const n = rows.length;
  let pathBytes = 0;
  let targetBytes = 0;
  for (const r of rows) {
    pathBytes += (r[o] as Buffer).length;
    const t = r[o + 12] as Buffer | null;
    if (t !== null) targetBytes += t.length;
  }
  // allocUnsafeSlow: never a slice of Node's shared pool, so the buffer can be transferred.
  const paths = Buffer.allocUnsafeSlow(pathBytes);
  const targets = Buffer.allocUnsafeSlow(targetBytes);
  const pathEnd = new Uint32Array(n);
  const targetStart = new Int32Array(n);
  const targetEnd = new Int32Array(n);
  const big = new BigInt64Array(n * 4);
  const small = new Float64Array(n * 5);
  const strs = new Array<string | null>(n * STRS);
  let po = 0;
  let to = 0;
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    const p = r[o] as Buffer;
    const target = r[o + 12] as Buffer | null;
    const flags = r[o + 16] as bigint | null | undefined;
    po += p.copy(paths, po);
    pathEnd[i] = po;
    if (target === null) {
      targetStart[i] = -1;
      targetEnd[i] = -1;
    } else {
      targetStart[i] = to;
      to += target.copy(targets, to);
      targetEnd[i] = to;
    }
    // size, mtime, ctime, inode: int64 columns read as bigint (safe integers)
    for (let k = 0; k < 4; k++) big[i * 4 + k] = BigInt.asIntN(64, r[o + 7 + k] as bigint);
    // mode, uid, gid, nlink
    small[i * 5] = Number(r[o + 4]);
    small[i * 5 + 1] = Number(r[o + 5]);
    small[i * 5 + 2] = Number(r[o + 6]);
    small[i * 5 + 3] = Number(r[o + 11]);
    small[i * 5 + 4] = flags === null || flags === undefined ? Number.NaN : Number(flags);
    strs[i * STRS] = r[o + 1] as string; // rule
    strs[i * STRS + 1] = r[o + 2] as string | null; // error
    strs[i * STRS + 2] = r[o + 3] as string; // type
    strs[i * STRS + 3] = r[o + 13] as string | null; // blake3
    strs[i * STRS + 4] = r[o + 14] as string | null; // sha256
    strs[i * STRS + 5] = (r[o + 15] as string | null | undefined) ?? null; // xattrs
  }
  const rowid = Float64Array.from(rowids);
  const transfer = [
    paths.buffer,
    targets.buffer,
    pathEnd.buffer,
    targetStart.buffer,
    targetEnd.buffer,
    big.buffer,
    small.buffer,
    rowid.buffer,
  ] as ArrayBuffer[];
  return { n, rowid, paths, pathEnd, targets, targetStart, targetEnd, big, small, strs, transfer };
}

type Message =
  | ({ kind: 'rows' } & PackedRows)
  | { kind: 'end'; result: GenerationDigestResult }
  | { kind: 'error'; message: string; code: string | null; name: string };

function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  // Under vitest this module runs from src/*.ts; workers need the built JavaScript.
  if (here.endsWith('.ts')) return path.resolve(path.dirname(here), '../../dist/src/store/generation-reader.worker.js');
  return path.join(path.dirname(here), 'generation-reader.worker.js');
}

interface Batch extends PackedRows {
  paths: Buffer;
  targets: Buffer;
}

const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/**
 * The stored generation, read in path order by a worker thread that also computes its digest
 * (generation-reader.worker.ts), consumed here by a merge join with a walk that yields paths in
 * the same order. The main thread neither runs the SQLite cursor nor builds the digest's text;
 * it only looks rows up. `ready(p)` must be awaited before `lookup(p)` (unless `readyNow(p)`); `finish()` drains the
 * rest and returns the digest of exactly the rows that were handed out.
 */
export class GenerationStream {
  private readonly worker: Worker;
  private readonly credit: Int32Array;
  private readonly queue: Batch[] = [];
  private cur: Batch | null = null;
  private i = 0;
  private last: Buffer | null = null;
  private result: GenerationDigestResult | null = null;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  private closed = false;
  private exited = false;
  private readonly passed: StoredEntry[] = [];

  constructor(
    file: string,
    private readonly gen: Generation,
    private readonly repo: BaselineRepo,
    opts: { batch?: number; window?: number } = {},
  ) {
    const sab = new SharedArrayBuffer(8);
    this.credit = new Int32Array(sab);
    const header: ReaderInit['header'] = {
      id: gen.id,
      createdAt: gen.createdAt,
      kind: gen.kind,
      user: gen.user,
      uid: gen.uid,
      hostname: gen.hostname,
      note: gen.note,
      root: gen.root,
      policyDigest: gen.policyDigest,
      hashAlgos: gen.hashAlgos,
      parentDigest: gen.parentDigest,
      toolVersion: gen.toolVersion,
    };
    const init: ReaderInit = { file, header, batch: opts.batch ?? 1024, window: opts.window ?? 4, credit: sab };
    this.worker = new Worker(workerFile(), { workerData: init, resourceLimits: { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 32 } });
    this.worker.on('message', (m: Message) => {
      if (m.kind === 'rows') this.queue.push({ ...m, paths: asBuffer(m.paths), targets: asBuffer(m.targets) });
      else if (m.kind === 'end') this.result = m.result;
      else this.failure = Object.assign(new Error(m.message), m.code ? { code: m.code } : {});
      this.notify();
    });
    this.worker.on('error', (e) => {
      this.failure ??= e;
      this.notify();
    });
    this.worker.on('exit', (code) => {
      this.exited = true;
      if (!this.result && !this.failure && !this.closed) this.failure = new Error(`generation reader exited with code ${code}`);
      this.notify();
    });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private wait(): Promise<void> {
    return new Promise<void>((r) => {
      this.wake = r;
    });
  }

  private done(): boolean {
    return this.result !== null || this.failure !== null;
  }

  /** Whether the rows up to path p are here (the last one buffered sorts at or after p). */
  private covers(p: Buffer): boolean {
    if (this.done()) return true;
    const b = this.queue.length ? this.queue[this.queue.length - 1]! : this.cur;
    if (!b || b.n === 0) return false;
    const e = b.pathEnd[b.n - 1]!;
    const s = b.n > 1 ? b.pathEnd[b.n - 2]! : 0;
    return p.compare(b.paths, s, e) <= 0;
  }

  /**
   * Whether lookup(p) can answer now, without waiting (the common case: the reader is ahead).
   * When false, await ready(p).
   */
  readyNow(p: Buffer): boolean {
    if (this.failure) return false;
    if (this.covers(p)) return true;
    this.passAll();
    return this.covers(p) && !this.failure;
  }

  /** Wait until lookup(p) can answer. */
  async ready(p: Buffer): Promise<void> {
    while (!this.covers(p)) {
      // Every row buffered sorts before p: pass them (as lookup(p) would), which also credits
      // the reader, so a walk that skips more rows than the window holds cannot stall it.
      this.passAll();
      if (this.covers(p)) break;
      await this.wait();
    }
    if (this.failure) throw this.failure;
  }

  /** Move every buffered row to the unmatched ones. */
  private passAll(): void {
    do {
      const b = this.cur;
      if (!b) continue;
      for (let i = this.i; i < b.n; i++) this.passed.push(entryAt(b, i, i > 0 ? b.pathEnd[i - 1]! : 0));
      this.i = b.n;
    } while (this.advance());
  }

  /** The next batch, crediting the worker for the one used up. */
  private advance(): boolean {
    if (this.cur) {
      Atomics.add(this.credit, 0, 1);
      Atomics.notify(this.credit, 0);
    }
    this.cur = this.queue.shift() ?? null;
    this.i = 0;
    return this.cur !== null;
  }

  /** The stored entry for path p, or undefined when the generation has none (after ready(p)). */
  lookup(p: Buffer): StoredEntry | undefined {
    if (this.last !== null && Buffer.compare(p, this.last) <= 0) return this.repo.lookup(this.gen.id, p); // not in order: ask directly
    this.last = p;
    for (;;) {
      const b = this.cur;
      if (!b || this.i >= b.n) {
        if (!this.advance()) return undefined;
        continue;
      }
      const i = this.i;
      const s = i > 0 ? b.pathEnd[i - 1]! : 0;
      const c = p.compare(b.paths, s, b.pathEnd[i]!);
      if (c > 0) {
        this.passed.push(entryAt(b, i, s));
        this.i++;
        continue;
      }
      if (c < 0) return undefined;
      this.i++;
      return entryAt(b, i, s);
    }
  }

  /**
   * Rows the merge passed over without a lookup asking for them (and, after finish(), every
   * row after the last lookup): the candidates for "removed". A row found later by an
   * out-of-order lookup is among them too; the caller's seen-marks tell those apart.
   */
  unmatched(): readonly StoredEntry[] {
    return this.passed;
  }

  /** Consume the rest (kept as unmatched) and return the digest of every row the worker read. */
  async finish(): Promise<GenerationDigestResult> {
    for (;;) {
      this.passAll();
      if (this.failure) throw this.failure;
      if (this.result) return this.result;
      await this.wait();
    }
  }

  /**
   * Stop the reader. Not with worker.terminate(): terminating a thread inside a native SQLite
   * call can abort the whole process. The stop flag makes the worker leave at its next batch
   * (at most one batch of reading away), close its connection and exit on its own.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.worker.once('exit', () => r()));
    Atomics.store(this.credit, 1, 1);
    Atomics.notify(this.credit, 0);
    await gone;
  }
}

function entryAt(b: Batch, i: number, s: number): StoredEntry {
  const k = i * STRS;
  const ts = b.targetStart[i]!;
  const sm = i * 5;
  const bg = i * 4;
  const flags = b.small[sm + 4]!;
  return {
    rowid: b.rowid[i]!,
    rule: b.strs[k]!,
    error: b.strs[k + 1]!,
    rec: {
      path: b.paths.subarray(s, b.pathEnd[i]!),
      type: b.strs[k + 2] as EntryType,
      mode: b.small[sm]!,
      uid: b.small[sm + 1]!,
      gid: b.small[sm + 2]!,
      size: b.big[bg]!,
      mtimeNs: b.big[bg + 1]!,
      ctimeNs: b.big[bg + 2]!,
      inode: b.big[bg + 3]!,
      nlink: b.small[sm + 3]!,
      target: ts < 0 ? null : b.targets.subarray(ts, b.targetEnd[i]!),
      blake3: b.strs[k + 3]!,
      sha256: b.strs[k + 4]!,
      xattrs: b.strs[k + 5]!,
      flags: Number.isNaN(flags) ? null : flags,
    },
  };
}
