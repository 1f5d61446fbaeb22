import { packResults, unpackJobs, type PackedJobs } from './pool-protocol.js';
import { parentPort as port, workerData } from 'node:worker_threads';
import { READ_SIZE, scanBatch, setStopFlag, stopping } from './scan-entry.js';
import { scanPacked } from './native-scan.js';
import { md5Files, Md5Stream, threadLanes, unpackMd5Jobs, type PackedMd5Jobs } from './md5-lanes.js';
import { setThreadNice, threadNice } from './thread-priority.js';

/**
 * Worker entry: receives packed batches of jobs (paths, not bytes), answers with one packed batch
 * of results, in job order; or a group of files to MD5 (md5-lanes.ts), answered with the digests;
 * or files to MD5 that keep coming (md5add, until md5end), answered as each one ends.
 */
const buf = Buffer.allocUnsafe(READ_SIZE);

const parentPort = port!;
const init = workerData as { stop: SharedArrayBuffer; nice?: number };
setStopFlag(new Int32Array(init.stop));
// A worker started at a lower priority (hash-pool's md5Stream) goes back to this one for md5end.
const startNice = init.nice === undefined ? null : threadNice();
if (init.nice !== undefined) setThreadNice(init.nice);

type Msg = { seq: number; jobs: PackedJobs } | { seq: number; md5: PackedMd5Jobs } | { md5add: PackedMd5Jobs; first: number } | { md5end: true } | 'exit';

let stream: Md5Stream | null = null;
let draining = false;
let scheduled = false;
/** Blocks a lane per slice of a stream (1 MiB a lane): messages (more files, exit) are seen in between. */
const SLICE = 16_384;

/** This worker's stream, made when the first files (or md5end) come. */
function theStream(): Md5Stream {
  return (stream ??= new Md5Stream(threadLanes()));
}

function pumpSoon(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(pump);
}

function pump(): void {
  scheduled = false;
  if (!stream || stopping()) return;
  const done = stream.pump(draining, SLICE, stopping);
  if (stopping()) return;
  if (done.length) parentPort.postMessage({ md5done: done });
  if (draining && stream.pending === 0) parentPort.postMessage({ md5drained: true });
  else if (stream.ready(draining)) pumpSoon(); // else wait for more files (or md5end)
}

parentPort.on('message', (msg: Msg) => {
  // Leave from here, between batches, never while inside a system call.
  if (msg === 'exit') {
    stream?.close();
    return parentPort.close();
  }
  if ('md5add' in msg) {
    const jobs = unpackMd5Jobs(msg.md5add);
    for (let i = 0; i < jobs.length; i++) theStream().add(msg.first + i, jobs.at(i)!);
    return pumpSoon();
  }
  if ('md5end' in msg) {
    draining = true;
    if (startNice !== null) setThreadNice(startNice);
    theStream();
    return pumpSoon();
  }
  if ('md5' in msg) {
    const results = md5Files(unpackMd5Jobs(msg.md5), stopping);
    if (!stopping()) parentPort.postMessage({ seq: msg.seq, results });
    return;
  }
  const { msg: packed, transfer } = scanPacked(msg.jobs, buf) ?? packResults(scanBatch(unpackJobs(msg.jobs), buf));
  if (stopping()) return; // the pool no longer waits for it
  parentPort.postMessage({ seq: msg.seq, results: packed }, transfer);
});
