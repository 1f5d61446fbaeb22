import { parentPort, workerData } from 'node:worker_threads';
import { openReadOnly } from './db.js';
import { GenerationDigester, rowsWithRowidByPath, type RowidDigestRow } from './generation-digest.js';
import { packRows, type ReaderInit } from './generation-stream.js';

/**
 * Worker entry of GenerationStream: reads one generation in path order on its own read-only
 * connection (one sequential pass), feeds every row to the generation digest, and posts the
 * same rows, packed in column arrays, to the main thread. What the main thread compares with is
 * therefore exactly what was digested. Backpressure: at most `window` batches ahead of what the
 * main thread has consumed (a counter in shared memory), so memory stays flat.
 */
const init = workerData as ReaderInit;
const credit = new Int32Array(init.credit);

try {
  const db = openReadOnly(init.file);
  try {
    const digester = new GenerationDigester(init.header, db);
    let batch: RowidDigestRow[] = [];
    let rowids: number[] = [];
    let sent = 0;
    const flush = (): void => {
      if (Atomics.load(credit, 1) !== 0) throw new Error('stopped');
      // Wait (in short slices, so a terminate or stop flag is seen) while the main thread is a window behind.
      for (;;) {
        // One load for both the test and the wait: a credit given in between makes wait() return at once.
        const consumed = Atomics.load(credit, 0);
        if (sent - consumed < init.window) break;
        if (Atomics.load(credit, 1) !== 0) throw new Error('stopped');
        Atomics.wait(credit, 0, consumed, 50);
      }
      const packed = packRows(rowids, batch, 1);
      parentPort!.postMessage({ kind: 'rows', ...packed }, packed.transfer);
      sent++;
      batch = [];
      rowids = [];
    };
    const it = rowsWithRowidByPath(db, init.header.id);
    for (let next = it.next(); !next.done; next = it.next()) {
      const r = next.value;
      digester.addAt(r, 1);
      rowids.push(Number(r[0]));
      batch.push(r);
      if (batch.length >= init.batch) flush();
    }
    if (batch.length) flush();
    parentPort!.postMessage({ kind: 'end', result: digester.finish() });
  } finally {
    db.close();
  }
} catch (e) {
  const err = e as Error & { code?: string };
  if (err.message !== 'stopped') parentPort!.postMessage({ kind: 'error', message: err.message, code: err.code ?? null, name: err.name });
}
