import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { InterruptedError } from '../util/errors.js';
import { packJobs, ResultBatch, type PackedResults } from './pool-protocol.js';
import { READ_SIZE, scanBatch, type ScanJob } from './scan-entry.js';
import { MAX_LANES, md5Files, packMd5Jobs, type Md5Job, type Md5Result } from './md5-lanes.js';

/**
 * Jobs per message: small enough that one large file does not hold many others hostage, large
 * enough that the per-message costs (packing, wake-ups, the batch's cache probe and MD5 lanes
 * that run short of files at its end) stay small. 64 measured better than 32 on /usr (check
 * −0.3 CPU s, baseline −0.3; README, seventh round); 128 no better, and check's peak RSS grew.
 */
const BATCH = 64;
/** Batches in flight per worker: keeps every worker fed while memory stays flat. */
const INFLIGHT_PER_WORKER = 3;

function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  // Under vitest this module runs from src/*.ts; workers need the built JavaScript.
  if (here.endsWith('.ts')) return path.resolve(path.dirname(here), '../../dist/src/scan/hash.worker.js');
  return path.join(path.dirname(here), 'hash.worker.js');
}

/**
 * Where the jobs come from. A synchronous iterable may yield a Promise instead of a job: "wait for
 * this, then go on pulling" (check waits so for the stored generation's rows), so the common case
 * costs no promise per job. An async iterable is pulled with await per job.
 */
export type JobSource<J> = Iterable<J | Promise<unknown>> | AsyncIterable<J>;

/**
 * Hashes in N worker threads (restic's file saver, in Node): paths go out in small batches,
 * results come back a batch at a time in completion order, each paired with its job. `jobs = 0`
 * scans on the main thread through the same interface. The source is pulled lazily, so the walk
 * streams and memory stays bounded by the work in flight. `park`: workers left for md5Groups
 * right after (the caller releases them with releaseSpareWorkers() when it has no second reads).
 */
export function scanBatches<J extends ScanJob>(
  source: JobSource<J>,
  jobs: number,
  signal: AbortSignal,
  opts: { park?: boolean } = {},
): AsyncGenerator<ResultBatch<J>> {
  let buf: Buffer | null = null;
  return poolBatches(puller(source), BATCH, jobs, signal, opts.park === true, {
    send: (batch) => {
      const { msg, transfer } = packJobs(batch);
      return { msg: { jobs: msg }, transfer };
    },
    receive: (batch, results) => ResultBatch.packed(batch, results as PackedResults),
    here: (batch) => {
      buf ??= Buffer.allocUnsafe(READ_SIZE);
      const b = buf;
      return ResultBatch.plain(batch, scanBatch(batch, b));
    },
  });
}

/**
 * MD5 of files in N worker threads, 8 at a time in each (md5-lanes.ts): each group goes to one
 * worker as one message, largest files first is best (lanes then idle only over the last small
 * files). Yields each group with its results, in completion order. `jobs = 0` hashes on the main
 * thread.
 */
export function md5Groups<G extends readonly Md5Job[]>(groups: Iterable<G>, jobs: number, signal: AbortSignal): AsyncGenerator<[G, Md5Result[]]> {
  return poolBatches(puller(groups), 1, jobs, signal, false, {
    send: ([group]) => {
      const { msg, transfer } = packMd5Jobs(group!);
      return { msg: { md5: msg }, transfer };
    },
    receive: ([group], results) => [group!, results as Md5Result[]] as [G, Md5Result[]],
    here: ([group]) => [group!, md5Files(group!)] as [G, Md5Result[]],
  });
}

/** How one kind of batch travels to a worker and back, or is done on this thread. */
interface Codec<J, B> {
  /** the message's payload (the worker dispatches on its key) and what to move rather than copy */
  send(batch: J[]): { msg: object; transfer: ArrayBuffer[] };
  receive(batch: J[], results: unknown): B;
  /** the same work on this thread (`jobs` = 0) */
  here(batch: J[]): B;
}

/**
 * The worker threads: batches of `size` jobs go out (at most INFLIGHT_PER_WORKER per worker), and
 * come back decoded, in completion order. Stops the workers on the way out, however it ends.
 * `jobs` = 0: each batch is done on this thread, in order.
 */
async function* poolBatches<J, B>(pull: Puller<J>, size: number, jobs: number, signal: AbortSignal, parkAtEnd: boolean, codec: Codec<J, B>): AsyncGenerator<B> {
  if (jobs <= 0) {
    for (;;) {
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new InterruptedError();
      const batch = await pull(size);
      if (batch.length === 0) return;
      yield codec.here(batch);
      // Let signals and the progress display run now and then.
      await new Promise<void>((r) => setImmediate(r));
    }
  }
  const { workers, stop } = startWorkers(jobs, undefined, true);
  const outstanding = new Map<number, { worker: number; jobs: J[] }>();
  const load = new Array<number>(jobs).fill(0);
  const ready: B[] = [];
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const notify = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const listeners = workers.map((w, i) => {
    const on = {
      message: (msg: { seq: number; results: unknown }) => {
        const batch = outstanding.get(msg.seq)!;
        outstanding.delete(msg.seq);
        load[i]! -= 1;
        ready.push(codec.receive(batch.jobs, msg.results));
        notify();
      },
      error: (e: Error) => {
        failure = e;
        notify();
      },
      exit: (code: number) => {
        if (code !== 0 && !failure) failure = new Error(`hash worker exited with code ${code}`);
        notify();
      },
    };
    w.on('message', on.message);
    w.on('error', on.error);
    w.on('exit', on.exit);
    return on;
  });
  const onAbort = (): void => notify();
  signal.addEventListener('abort', onAbort);
  let exhausted = false;
  let seq = 0;
  try {
    for (;;) {
      // Fill every worker up to its in-flight limit (again after each batch taken: the caller may
      // await between batches, and the workers should not idle meanwhile).
      while (!exhausted && !failure && !signal.aborted) {
        let best = 0;
        for (let i = 1; i < jobs; i++) if (load[i]! < load[best]!) best = i;
        if (load[best]! >= INFLIGHT_PER_WORKER) break;
        const batch = await pull(size);
        if (batch.length < size) exhausted = true;
        if (batch.length === 0) break;
        seq += 1;
        outstanding.set(seq, { worker: best, jobs: batch });
        load[best]! += 1;
        const { msg, transfer } = codec.send(batch);
        workers[best]!.postMessage({ seq, ...msg }, transfer);
      }
      if (ready.length > 0) {
        yield ready.shift()!;
        continue;
      }
      if (failure) throw failure;
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new InterruptedError();
      if (exhausted && outstanding.size === 0) return;
      await new Promise<void>((r) => {
        wake = r;
        if (ready.length > 0 || failure || signal.aborted) notify();
      });
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    if (!exhausted) await pull.stop();
    // Not worker.terminate(): a thread terminated inside a native call (koffi, N-API) can abort the
    // whole process. Workers finish the read they are in, skip the rest and leave on their own;
    // terminate() only one that has not left after STOP_GRACE_MS (a read stuck on a dead mount).
    const clean = exhausted && outstanding.size === 0 && !failure && !signal.aborted;
    if (!clean) Atomics.store(new Int32Array(stop), 0, 1);
    workers.forEach((w, i) => {
      w.off('message', listeners[i]!.message);
      w.off('error', listeners[i]!.error);
      w.off('exit', listeners[i]!.exit);
    });
    if (clean && parkAtEnd) park({ workers, stop });
    else await Promise.all(workers.map((w) => leave(w)));
  }
}

/**
 * The workers of the last scan that ended cleanly and was asked to park them, kept for the next
 * pool of the same size in this process (baseline's and check's second reads come right after the
 * scan): a new worker costs its start, loading the bundle and compiling the same hot functions
 * again (~0.1 CPU s each). Unreferenced while parked, so they never keep the process alive; idle,
 * so ending the process with them is safe. Their memory stays until they are taken or released.
 */
let spare: { workers: Worker[]; stop: SharedArrayBuffer } | null = null;

/** A parked worker that fails is not taken again (startWorkers checks threadId); its error must not throw. */
const parkedError = (): void => {};

function park(p: { workers: Worker[]; stop: SharedArrayBuffer }): void {
  const old = spare;
  spare = p;
  for (const w of p.workers) {
    w.on('error', parkedError);
    w.unref();
  }
  if (old) for (const w of old.workers) void leave(w);
}

/** Stop the parked workers, if any: the caller of a parking scan, once its second reads are done (or it had none). */
export async function releaseSpareWorkers(): Promise<void> {
  const old = spare;
  spare = null;
  if (old) await Promise.all(old.workers.map((w) => leave(w)));
}

/**
 * `n` hash workers and the flag that tells them to stop. `nice`: each lowers its own thread's
 * priority to this at start (thread-priority.ts) and goes back to its first one for md5end.
 * `reuse` (poolBatches): take the workers the last clean pool parked, when there are as many.
 */
function startWorkers(n: number, nice?: number, reuse = false): { workers: Worker[]; stop: SharedArrayBuffer } {
  if (reuse && spare && nice === undefined && spare.workers.length === n && spare.workers.every((w) => w.threadId >= 0)) {
    const p = spare;
    spare = null;
    for (const w of p.workers) {
      w.off('error', parkedError);
      w.ref();
    }
    return p;
  }
  const file = workerFile();
  const stop = new SharedArrayBuffer(4);
  // Workers hold a read buffer, the hasher's wasm memory and one batch: small heaps keep the
  // process's peak RSS low without costing speed (measured on /usr).
  const workers = Array.from(
    { length: n },
    () =>
      new Worker(file, {
        workerData: nice === undefined ? { stop } : { stop, nice },
        resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 128 },
      }),
  );
  return { workers, stop };
}

/** Files MD5ed in the background while the caller goes on; see md5Stream. */
export interface Md5Streamer<T> {
  /** Queue a file; its result goes to the callback given to md5Stream, with `tag`. */
  add(job: Md5Job, tag: T): void;
  /** No more files: resolves once every one was answered (rejects when a worker failed or the signal aborted). */
  end(): Promise<void>;
  /** Stop the workers now; what was not answered yet never will be. */
  close(): Promise<void>;
  /** Files added and not answered yet. */
  readonly outstanding: number;
  /**
   * Files the workers may hold without hashing them before end(): a worker's lanes wait for 8 or
   * 32 of them (wasm, native), and add() sends 32 at a time. below() a number larger than this always resolves.
   */
  readonly held: number;
  /** Resolves once fewer than `n` files are outstanding (rejects when a worker failed or the signal aborted). */
  below(n: number): Promise<void>;
}

/** Files a worker gets at a time: with fewer than its lanes (8 in wasm, 32 native) it would not start. */
const STREAM_SEND = MAX_LANES;

/**
 * MD5 of files that keep coming (baseline's large packaged files, as the scan finds them), in
 * `jobs` worker threads started at nice `nice`: their lanes (md5-lanes.ts, Md5Stream) take each
 * next file as one ends and wait, rather than idle, while fewer than their lanes are queued, so they hash
 * on the CPU time the rest of the process leaves, and at full priority what is left after
 * end(). A file goes to the worker with the fewest bytes outstanding. Results come to
 * `onResult` on this thread, in completion order.
 */
export function md5Stream<T>(jobs: number, signal: AbortSignal, onResult: (tag: T, r: Md5Result) => void, nice?: number): Md5Streamer<T> {
  let pool: { workers: Worker[]; stop: SharedArrayBuffer } | null = null;
  const waiting = new Map<number, { tag: T; size: number; worker: number }>();
  const bytes = new Array<number>(Math.max(1, jobs)).fill(0);
  let drained = 0;
  let unsent: Array<{ id: number; job: Md5Job }> = [];
  let nextId = 0;
  let ended = false;
  let failure: Error | null = null;
  let settle: { resolve(): void; reject(e: Error): void } | null = null;
  let lows: Array<{ n: number; resolve(): void; reject(e: Error): void }> = [];
  const check = (): void => {
    if (lows.length)
      lows = lows.filter((l) => {
        if (failure) l.reject(failure);
        else if (waiting.size < l.n) l.resolve();
        else return true;
        return false;
      });
    if (!settle) return;
    if (failure) settle.reject(failure);
    else if (waiting.size === 0 && (!pool || drained === pool.workers.length)) settle.resolve();
    else return;
    settle = null;
  };
  const fail = (e: Error): void => {
    failure ??= e;
    check();
  };
  const onAbort = (): void => fail(signal.reason instanceof Error ? signal.reason : new InterruptedError());
  signal.addEventListener('abort', onAbort, { once: true });
  const start = (): { workers: Worker[]; stop: SharedArrayBuffer } => {
    const p = startWorkers(jobs, nice);
    p.workers.forEach((w) => {
      w.on('message', (msg: { md5done?: Array<[number, Md5Result]>; md5drained?: true }) => {
        if (msg.md5drained) drained++;
        for (const [id, r] of msg.md5done ?? []) {
          const e = waiting.get(id)!;
          waiting.delete(id);
          bytes[e.worker]! -= e.size;
          try {
            onResult(e.tag, r);
          } catch (err) {
            fail(err as Error);
          }
        }
        check();
      });
      w.on('error', (e) => fail(e));
      w.on('exit', (code) => {
        if (!ended || waiting.size > 0) fail(new Error(`hash worker exited with code ${code}`));
      });
    });
    return p;
  };
  const send = (): void => {
    if (unsent.length === 0) return;
    pool ??= start();
    let w = 0;
    for (let i = 1; i < pool.workers.length; i++) if (bytes[i]! < bytes[w]!) w = i;
    for (const u of unsent) {
      const size = Number(u.job.size);
      bytes[w]! += size;
      waiting.get(u.id)!.worker = w;
    }
    const { msg, transfer } = packMd5Jobs(unsent.map((u) => u.job));
    pool.workers[w]!.postMessage({ md5add: msg, first: unsent[0]!.id }, transfer);
    unsent = [];
  };
  const stopAll = async (): Promise<void> => {
    signal.removeEventListener('abort', onAbort);
    if (!pool) return;
    const p = pool;
    if (waiting.size > 0 || drained < p.workers.length) Atomics.store(new Int32Array(p.stop), 0, 1);
    await Promise.all(p.workers.map((w) => leave(w)));
  };
  return {
    add(job, tag) {
      if (ended) throw new Error('md5Stream: add() after end()');
      const id = nextId++;
      waiting.set(id, { tag, size: Number(job.size), worker: -1 });
      unsent.push({ id, job });
      if (unsent.length >= STREAM_SEND) send();
    },
    async end() {
      ended = true;
      send();
      for (const w of pool?.workers ?? []) w.postMessage({ md5end: true });
      try {
        await new Promise<void>((resolve, reject) => {
          settle = { resolve, reject };
          check();
        });
      } finally {
        await stopAll();
      }
    },
    async close() {
      ended = true;
      await stopAll();
    },
    get outstanding() {
      return waiting.size;
    },
    held: Math.max(1, jobs) * MAX_LANES + STREAM_SEND,
    below(n) {
      return new Promise<void>((resolve, reject) => {
        lows.push({ n, resolve, reject });
        check();
      });
    },
  };
}

const STOP_GRACE_MS = 5000;

/** Ask a worker to exit between batches and wait for it (see the finally in scanBatches). */
function leave(w: Worker): Promise<void> {
  if (w.threadId < 0) return Promise.resolve(); // already gone
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => void w.terminate().then(() => resolve()), STOP_GRACE_MS);
    w.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    w.postMessage('exit');
  });
}

/** Pulls up to n jobs at a time from a JobSource (fewer only at its end). */
type Puller<J> = ((n: number) => Promise<J[]>) & { stop(): Promise<void> };

function puller<J>(source: JobSource<J>): Puller<J> {
  if (Symbol.asyncIterator in source) {
    const it = source[Symbol.asyncIterator]();
    const f = async (n: number): Promise<J[]> => {
      const out: J[] = [];
      while (out.length < n) {
        const r = await it.next();
        if (r.done) break;
        out.push(r.value);
      }
      return out;
    };
    return Object.assign(f, { stop: async () => void (await it.return?.()) });
  }
  const it = source[Symbol.iterator]();
  const f = async (n: number): Promise<J[]> => {
    const out: J[] = [];
    while (out.length < n) {
      const r = it.next();
      if (r.done) break;
      if (r.value instanceof Promise) await r.value;
      else out.push(r.value);
    }
    return out;
  };
  return Object.assign(f, { stop: async () => void it.return?.() });
}
