import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { InterruptedError } from '../util/errors.js';
import { packJobs, ResultBatch, type PackedResults } from './pool-protocol.js';
import { READ_SIZE, scanBatch, type ScanJob } from './scan-entry.js';
import { md5Files, packMd5Jobs, type Md5Job, type Md5Result } from './md5-lanes.js';

/** Jobs per message: small enough that one large file does not hold many others hostage. */
const BATCH = 32;
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
 * streams and memory stays bounded by the work in flight.
 */
export function scanBatches<J extends ScanJob>(source: JobSource<J>, jobs: number, signal: AbortSignal): AsyncGenerator<ResultBatch<J>> {
  let buf: Buffer | null = null;
  return poolBatches(puller(source), BATCH, jobs, signal, {
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
  return poolBatches(puller(groups), 1, jobs, signal, {
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
async function* poolBatches<J, B>(pull: Puller<J>, size: number, jobs: number, signal: AbortSignal, codec: Codec<J, B>): AsyncGenerator<B> {
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
  const file = workerFile();
  // Workers hold a read buffer, the hasher's wasm memory and one batch: small heaps keep the
  // process's peak RSS low without costing speed (measured on /usr).
  const stop = new SharedArrayBuffer(4);
  const workers = Array.from(
    { length: jobs },
    () => new Worker(file, { workerData: { stop }, resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 128 } }),
  );
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
  workers.forEach((w, i) => {
    w.on('message', (msg: { seq: number; results: unknown }) => {
      const batch = outstanding.get(msg.seq)!;
      outstanding.delete(msg.seq);
      load[i]! -= 1;
      ready.push(codec.receive(batch.jobs, msg.results));
      notify();
    });
    w.on('error', (e) => {
      failure = e;
      notify();
    });
    w.on('exit', (code) => {
      if (code !== 0 && !failure) failure = new Error(`hash worker exited with code ${code}`);
      notify();
    });
  });
  const onAbort = (): void => notify();
  signal.addEventListener('abort', onAbort);
  let exhausted = false;
  let seq = 0;
  try {
    for (;;) {
      // Fill every worker up to its in-flight limit.
      while (!exhausted) {
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
      while (ready.length > 0) yield ready.shift()!;
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
    if (!exhausted || outstanding.size > 0) Atomics.store(new Int32Array(stop), 0, 1);
    await Promise.all(workers.map((w) => leave(w)));
  }
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
