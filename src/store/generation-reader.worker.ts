import { parentPort, workerData } from 'node:worker_threads';
import { cmpText } from '../core/entry-cmp.js';
import { openReadOnly } from './db.js';
import { GenerationDigester, generationBatches, type DigestRow } from './generation-digest.js';
import type { ReaderInit, RowBatch } from './generation-stream.js';
import { decodeEntryValues, type EntryValues } from './rows.js';

/**
 * Worker entry of GenerationStream: reads one generation in path order on its own read-only
 * connection (openReadOnly holds a read transaction: one snapshot), feeds every row to the generation digest
 * and posts the same rows' paths and compare texts to the main thread. What the main thread
 * compares with is therefore exactly what was digested.
 *
 * A batch is one SQL statement: SQLite makes the digest lines, the compare texts and the
 * NUL-separated paths of up to `batch` rows (keyset pagination on the path index) and hands
 * them over as three blobs, so JavaScript touches no per-row value. A batch with a row of
 * unusual shape (generation-digest.ts, rowTextSql) is read again row by row and formatted in
 * JavaScript. Backpressure: at most `window` batches ahead of what the main thread has
 * consumed (a counter in shared memory), so memory stays flat.
 */
const init = workerData as ReaderInit;
const credit = new Int32Array(init.credit);

const NUL = Buffer.from([0]);
const NL = Buffer.from([10]);

/** The buffers of a batch that can move to the main thread (whole ArrayBuffers of their own). */
function transferable(b: RowBatch): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const v of [b.paths, b.cmps, b.pathEnd, b.cmpEnd])
    if (v.byteOffset === 0 && v.byteLength === v.buffer.byteLength && v.buffer instanceof ArrayBuffer && !out.includes(v.buffer)) out.push(v.buffer);
  return out;
}

try {
  const db = openReadOnly(init.file);
  try {
    const digester = new GenerationDigester(init.header, db);
    let sent = 0;
    const post = (b: RowBatch): void => {
      if (Atomics.load(credit, 1) !== 0) throw new Error('stopped');
      // Wait (in short slices, so a terminate or stop flag is seen) while the main thread is a window behind.
      for (;;) {
        // One load for both the test and the wait: a credit given in between makes wait() return at once.
        const consumed = Atomics.load(credit, 0);
        if (sent - consumed < init.window) break;
        if (Atomics.load(credit, 1) !== 0) throw new Error('stopped');
        Atomics.wait(credit, 0, consumed, 50);
      }
      // Moved, not copied: the blobs are the batch's largest values, and a copy left here would
      // wait for a garbage collection that this thread, allocating little, seldom runs.
      parentPort!.postMessage({ kind: 'rows', ...b }, transferable(b));
      sent++;
    };
    /** Rows SQL's text does not cover (already digested), formatted here. */
    const slowBatch = (rows: DigestRow[]): RowBatch => {
      const pathParts: Buffer[] = [];
      const cmpParts: Buffer[] = [];
      const pathEnd = new Uint32Array(rows.length);
      const cmpEnd = new Uint32Array(rows.length);
      let po = -1;
      let co = -1;
      for (const [i, r] of rows.entries()) {
        const c = Buffer.from(cmpText(decodeEntryValues(r[0], r.slice(3) as unknown as EntryValues)));
        // the same layout as SQL's: one separator byte between parts
        if (i > 0) {
          pathParts.push(NUL);
          cmpParts.push(NL);
        }
        pathParts.push(r[0]);
        cmpParts.push(c);
        pathEnd[i] = po += 1 + r[0].length;
        cmpEnd[i] = co += 1 + c.length;
      }
      return { n: rows.length, paths: Buffer.concat(pathParts), pathEnd, cmps: Buffer.concat(cmpParts), cmpEnd, fast: false };
    };
    for (const g of generationBatches(db, digester, init.header.id, init.batch, true))
      post(g.fast ? { n: g.n, paths: g.paths, pathEnd: g.pathEnd, cmps: g.cmps!, cmpEnd: g.cmpEnd!, fast: true } : slowBatch(g.rows));
    parentPort!.postMessage({ kind: 'end', result: digester.finish() });
  } finally {
    db.close();
  }
} catch (e) {
  const err = e as Error & { code?: string };
  if (err.message !== 'stopped') parentPort!.postMessage({ kind: 'error', message: err.message, code: err.code ?? null, name: err.name });
}
