import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { cmpText } from '../core/entry-cmp.js';
import { pathToText } from '../core/pathenc.js';
import { TrustError } from '../util/errors.js';
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
 * A batch of rows as the reader posts it: the paths, NUL-separated, and their compare texts
 * (core/entry-cmp.ts), newline-separated; part i ends at *End[i] and the next starts one byte
 * later. `fast`: the texts were made by SQLite from rows of the usual shape, so an observed
 * entry with the same text is unchanged; otherwise every entry of the batch is compared in full.
 */
export interface RowBatch {
  n: number;
  paths: Uint8Array;
  pathEnd: Uint32Array;
  cmps: Uint8Array;
  cmpEnd: Uint32Array;
  fast: boolean;
}

/**
 * A row of the stored generation as the merge found it: its path and compare text. The full
 * record is read (and checked against the text that was digested) only where it is needed:
 * GenerationStream.entry().
 */
export interface StoredRef {
  path: Buffer;
  /** the compare text's bytes are cmp[cmpStart, cmpEnd) */
  cmp: Buffer;
  cmpStart: number;
  cmpEnd: number;
  /** an unchanged observed entry has the same compare text (see RowBatch.fast) */
  fast: boolean;
  /** set when the row came from a direct lookup rather than the digested pass */
  full: StoredEntry | null;
}

type Message =
  | ({ kind: 'rows' } & RowBatch)
  | { kind: 'end'; result: GenerationDigestResult }
  | { kind: 'error'; message: string; code: string | null; name: string };

function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  // Under vitest this module runs from src/*.ts; workers need the built JavaScript.
  if (here.endsWith('.ts')) return path.resolve(path.dirname(here), '../../dist/src/store/generation-reader.worker.js');
  return path.join(path.dirname(here), 'generation-reader.worker.js');
}

interface Batch extends RowBatch {
  paths: Buffer;
  cmps: Buffer;
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
  private readonly passed: StoredRef[] = [];

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
    const init: ReaderInit = { file, header, batch: opts.batch ?? 256, window: opts.window ?? 4, credit: sab };
    this.worker = new Worker(workerFile(), { workerData: init, resourceLimits: { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 32 } });
    this.worker.on('message', (m: Message) => {
      if (m.kind === 'rows') this.queue.push({ ...m, paths: asBuffer(m.paths), cmps: asBuffer(m.cmps) });
      else if (m.kind === 'end') this.result = m.result;
      else if (m.name === 'DigestRowError') this.failure = new TrustError(`baseline not trustworthy, nothing compared:\n  - ${m.message}`);
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
    const s = b.n > 1 ? b.pathEnd[b.n - 2]! + 1 : 0;
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
      for (let i = this.i; i < b.n; i++) this.passed.push(passedRef(b, i));
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

  /** The stored row for path p, or undefined when the generation has none (after ready(p)). */
  lookup(p: Buffer): StoredRef | undefined {
    if (this.last !== null && Buffer.compare(p, this.last) <= 0) {
      // not in order: ask directly
      const full = this.repo.lookup(this.gen.id, p);
      if (!full) return undefined;
      const cmp = Buffer.from(cmpText(full.rec));
      return { path: p, cmp, cmpStart: 0, cmpEnd: cmp.length, fast: false, full };
    }
    this.last = p;
    for (;;) {
      const b = this.cur;
      if (!b || this.i >= b.n) {
        if (!this.advance()) return undefined;
        continue;
      }
      const i = this.i;
      const s = i > 0 ? b.pathEnd[i - 1]! + 1 : 0;
      const c = p.compare(b.paths, s, b.pathEnd[i]!);
      if (c > 0) {
        this.passed.push(passedRef(b, i));
        this.i++;
        continue;
      }
      if (c < 0) return undefined;
      this.i++;
      return { path: p, cmp: b.cmps, cmpStart: i > 0 ? b.cmpEnd[i - 1]! + 1 : 0, cmpEnd: b.cmpEnd[i]!, fast: b.fast, full: null };
    }
  }

  /**
   * The full stored entry of a row, read by path on the first connection and accepted only when
   * its compare text is the one the reader digested: what is compared in full is what was
   * verified, even if the store is written to meanwhile.
   */
  entry(ref: StoredRef): StoredEntry {
    if (ref.full) return ref.full;
    const e = this.repo.lookup(this.gen.id, ref.path);
    if (!e || !Buffer.from(cmpText(e.rec)).equals(ref.cmp.subarray(ref.cmpStart, ref.cmpEnd)))
      throw new TrustError(`baseline not trustworthy: generation #${this.gen.id} changed while it was read (${pathToText(ref.path)})`);
    return e;
  }

  /**
   * Rows the merge passed over without a lookup asking for them (and, after finish(), every
   * row after the last lookup): the candidates for "removed". A row found later by an
   * out-of-order lookup is among them too; the caller's seen-marks tell those apart.
   */
  unmatched(): readonly StoredRef[] {
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

/** A row the merge passed over, copied out of its batch (which can then go). */
function passedRef(b: Batch, i: number): StoredRef {
  const path = Buffer.from(b.paths.subarray(i > 0 ? b.pathEnd[i - 1]! + 1 : 0, b.pathEnd[i]!));
  const cmp = Buffer.from(b.cmps.subarray(i > 0 ? b.cmpEnd[i - 1]! + 1 : 0, b.cmpEnd[i]!));
  return { path, cmp, cmpStart: 0, cmpEnd: cmp.length, fast: b.fast, full: null };
}
