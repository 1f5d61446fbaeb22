import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { InterruptedError } from '../util/errors.js';
import { READ_SIZE, scanEntry, type ScanJob, type ScanResult } from './scan-entry.js';

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

const toBuf = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

function revive(r: ScanResult): ScanResult {
  if (r.rec) {
    r.rec.path = toBuf(r.rec.path);
    if (r.rec.target) r.rec.target = toBuf(r.rec.target);
  }
  return r;
}

/**
 * Hashes in N worker threads (restic's file saver, in Node): paths go out in small batches,
 * results come back in completion order paired with their job. `jobs = 0` scans on the main
 * thread through the same interface. The source is pulled lazily, so the walk streams and
 * memory stays bounded by the work in flight.
 */
export async function* scanAll<J extends ScanJob>(source: Iterable<J> | AsyncIterable<J>, jobs: number, signal: AbortSignal): AsyncGenerator<[J, ScanResult]> {
  if (jobs <= 0) {
    const buf = Buffer.allocUnsafe(READ_SIZE);
    let n = 0;
    for await (const job of source) {
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new InterruptedError();
      yield [job, scanEntry(job, buf)];
      // Let signals and the progress display run now and then.
      if (++n % 256 === 0) await new Promise<void>((r) => setImmediate(r));
    }
    return;
  }
  const file = workerFile();
  // Workers hold a read buffer, the hasher's wasm memory and one batch: small heaps keep the
  // process's peak RSS low without costing speed (measured on /usr).
  const workers = Array.from({ length: jobs }, () => new Worker(file, { resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 128 } }));
  const outstanding = new Map<number, { worker: number; jobs: J[] }>();
  const load = new Array<number>(jobs).fill(0);
  const ready: Array<[J, ScanResult]> = [];
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const notify = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  workers.forEach((w, i) => {
    w.on('message', (msg: { seq: number; results: ScanResult[] }) => {
      const batch = outstanding.get(msg.seq)!;
      outstanding.delete(msg.seq);
      load[i]! -= 1;
      msg.results.forEach((r, k) => ready.push([batch.jobs[k]!, revive(r)]));
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
  const it: Iterator<J> | AsyncIterator<J> = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
  let exhausted = false;
  let seq = 0;
  try {
    for (;;) {
      // Fill every worker up to its in-flight limit.
      while (!exhausted) {
        let best = 0;
        for (let i = 1; i < jobs; i++) if (load[i]! < load[best]!) best = i;
        if (load[best]! >= INFLIGHT_PER_WORKER) break;
        const batch: J[] = [];
        while (batch.length < BATCH) {
          const r = await it.next();
          if (r.done) {
            exhausted = true;
            break;
          }
          batch.push(r.value);
        }
        if (batch.length === 0) break;
        seq += 1;
        outstanding.set(seq, { worker: best, jobs: batch });
        load[best]! += 1;
        workers[best]!.postMessage({
          seq,
          jobs: batch.map((j) => ({
            id: j.id,
            path: j.path,
            real: j.real,
            algos: j.algos,
            growing: j.growing,
            prefixLen: j.prefixLen,
            xattrs: j.xattrs,
            flags: j.flags,
            extra: j.extra,
          })),
        });
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
    if (!exhausted) await it.return?.();
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
