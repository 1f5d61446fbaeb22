import { parentPort } from 'node:worker_threads';
import { packResults, unpackJobs, type PackedJobs } from './pool-protocol.js';
import { READ_SIZE, scanBatch } from './scan-entry.js';

/** Worker entry: receives packed batches of jobs (paths, not bytes), answers with one packed batch of results, in job order. */
const buf = Buffer.allocUnsafe(READ_SIZE);

parentPort!.on('message', (msg: { seq: number; jobs: PackedJobs }) => {
  const { msg: results, transfer } = packResults(scanBatch(unpackJobs(msg.jobs), buf));
  parentPort!.postMessage({ seq: msg.seq, results }, transfer);
});
