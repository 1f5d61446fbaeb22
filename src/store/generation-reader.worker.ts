import { parentPort, workerData } from 'node:worker_threads';
import { cmpText } from '../core/entry-cmp.js';
import { openReadOnly } from './db.js';
import { batchSql, digestColumns, GenerationDigester, type DigestRow } from './generation-digest.js';
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

interface BatchRow {
  n: number;
  okn: number;
  bytes: number;
  errs: number;
  lines: string | null;
  paths: Buffer | null;
  cmps: Buffer | null;
}

const NUL = Buffer.from([0]);
const NL = Buffer.from([10]);

/** Offsets just past each of the n parts of `b` separated by byte `sep`; null when the count is wrong. */
function ends(b: Buffer, n: number, sep: number): Uint32Array | null {
  const out = new Uint32Array(n);
  let pos = 0;
  for (let i = 0; i < n - 1; i++) {
    const k = b.indexOf(sep, pos);
    if (k < 0) return null;
    out[i] = k;
    pos = k + 1;
  }
  if (b.indexOf(sep, pos) >= 0) return null;
  out[n - 1] = b.length;
  return out;
}

/** The buffers of a batch that can move to the main thread (whole ArrayBuffers of their own). */
function transferable(b: RowBatch): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const v of [b.paths, b.cmps, b.pathEnd, b.cmpEnd])
    if (v.byteOffset === 0 && v.byteLength === v.buffer.byteLength && v.buffer instanceof ArrayBuffer && !out.includes(v.buffer)) out.push(v.buffer);
  return out;
}

/** Whether the NUL-separated paths come in strictly increasing byte order. */
function increasing(b: Buffer, end: Uint32Array): boolean {
  let s = 0;
  for (let i = 1; i < end.length; i++) {
    const s1 = end[i - 1]! + 1;
    if (b.compare(b, s1, end[i]!, s, end[i - 1]!) >= 0) return false; // path i-1 must sort before path i
    s = s1;
  }
  return true;
}

try {
  const db = openReadOnly(init.file);
  try {
    const digester = new GenerationDigester(init.header, db);
    const cols = digestColumns(db);
    const hasFsattrs = !cols.includes('NULL AS xattrs');
    const firstBatch = db.prepare<{ gen: number; lim: number }, BatchRow>(batchSql(hasFsattrs, false));
    const nextBatch = db.prepare<{ gen: number; lim: number; after: Buffer }, BatchRow>(batchSql(hasFsattrs, true));
    const rowsSql = (where: string): string => `SELECT ${cols} FROM entries WHERE gen = :gen ${where} ORDER BY path LIMIT :lim`;
    const firstRows = db.prepare(rowsSql('')).raw(true).safeIntegers(true);
    const nextRows = db.prepare(rowsSql('AND path > :after')).raw(true).safeIntegers(true);
    const countPath = db.prepare<[number, Buffer], number>('SELECT count(*) FROM entries WHERE gen = ? AND path = ?').pluck(true);
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
    /** The same rows, decoded and formatted here (any row SQL's text does not cover). */
    const slowBatch = (after: Buffer | null): RowBatch => {
      const p = { gen: init.header.id, lim: init.batch };
      const rows = (after === null ? firstRows.all(p) : nextRows.all({ ...p, after })) as DigestRow[];
      const pathParts: Buffer[] = [];
      const cmpParts: Buffer[] = [];
      const pathEnd = new Uint32Array(rows.length);
      const cmpEnd = new Uint32Array(rows.length);
      let po = -1;
      let co = -1;
      for (const [i, r] of rows.entries()) {
        digester.add(r);
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
    let after: Buffer | null = null;
    for (;;) {
      const p = { gen: init.header.id, lim: init.batch };
      const r: BatchRow | undefined = after === null ? firstBatch.get(p) : nextBatch.get({ ...p, after });
      if (!r || r.n === 0) break;
      // Keyset pagination would skip a second row with the path a batch ended on: the unique
      // index rules that out, and this makes sure of it (within a batch, paths must increase).
      if (after !== null && countPath.get(init.header.id, after) !== 1) throw new Error('generation digest: rows out of path order');
      let b: RowBatch | null = null;
      if (r.okn === r.n && r.lines && r.paths && r.cmps) {
        const pathEnd = ends(r.paths, r.n, 0);
        const cmpEnd = ends(r.cmps, r.n, 10);
        if (pathEnd && cmpEnd && increasing(r.paths, pathEnd)) {
          const first = r.paths.subarray(0, pathEnd[0]!);
          const last = r.paths.subarray(r.n > 1 ? pathEnd[r.n - 2]! + 1 : 0, pathEnd[r.n - 1]!);
          digester.addLines(r.lines, r.n, r.bytes, r.errs, first, last);
          b = { n: r.n, paths: r.paths, pathEnd, cmps: r.cmps, cmpEnd, fast: true };
        }
      }
      b ??= slowBatch(after);
      if (b.n === 0) break;
      after = Buffer.from(b.paths.subarray(b.n > 1 ? b.pathEnd[b.n - 2]! + 1 : 0, b.pathEnd[b.n - 1]!));
      const n = b.n;
      post(b); // b's buffers are gone after this
      if (n < init.batch) break;
    }
    parentPort!.postMessage({ kind: 'end', result: digester.finish() });
  } finally {
    db.close();
  }
} catch (e) {
  const err = e as Error & { code?: string };
  if (err.message !== 'stopped') parentPort!.postMessage({ kind: 'error', message: err.message, code: err.code ?? null, name: err.name });
}
