import { packResults, unpackJobs, type PackedJobs } from './pool-protocol.js';
import { parentPort as port, workerData } from 'node:worker_threads';
import { READ_SIZE, scanBatch, setStopFlag, stopping } from './scan-entry.js';

/** Worker entry: receives packed batches of jobs (paths, not bytes), answers with one packed batch of results, in job order. */
const buf = Buffer.allocUnsafe(READ_SIZE);

const parentPort = port!;
setStopFlag(new Int32Array((workerData as { stop: SharedArrayBuffer }).stop));

parentPort.on('message', (msg: { seq: number; jobs: PackedJobs } | 'exit') => {
  // Leave from here, between batches, never while inside a system call.
  if (msg === 'exit') return parentPort.close();
  const results = scanBatch(unpackJobs(msg.jobs), buf);
  if (stopping()) return; // the pool no longer waits for it
  const { msg: packed, transfer } = packResults(results);
  parentPort.postMessage({ seq: msg.seq, results: packed }, transfer);
});
