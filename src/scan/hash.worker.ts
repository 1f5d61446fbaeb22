import { packResults, unpackJobs, type PackedJobs } from './pool-protocol.js';
import { parentPort as port, workerData } from 'node:worker_threads';
import { READ_SIZE, scanBatch, setStopFlag, stopping } from './scan-entry.js';
import { md5Files, unpackMd5Jobs, type PackedMd5Jobs } from './md5-lanes.js';

/**
 * Worker entry: receives packed batches of jobs (paths, not bytes), answers with one packed batch
 * of results, in job order; or a group of files to MD5 (md5-lanes.ts), answered with the digests.
 */
const buf = Buffer.allocUnsafe(READ_SIZE);

const parentPort = port!;
setStopFlag(new Int32Array((workerData as { stop: SharedArrayBuffer }).stop));

parentPort.on('message', (msg: { seq: number; jobs: PackedJobs } | { seq: number; md5: PackedMd5Jobs } | 'exit') => {
  // Leave from here, between batches, never while inside a system call.
  if (msg === 'exit') return parentPort.close();
  if ('md5' in msg) {
    const results = md5Files(unpackMd5Jobs(msg.md5), stopping);
    if (!stopping()) parentPort.postMessage({ seq: msg.seq, results });
    return;
  }
  const results = scanBatch(unpackJobs(msg.jobs), buf);
  if (stopping()) return; // the pool no longer waits for it
  const { msg: packed, transfer } = packResults(results);
  parentPort.postMessage({ seq: msg.seq, results: packed }, transfer);
});
