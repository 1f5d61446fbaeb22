import { parentPort } from 'node:worker_threads';
import { READ_SIZE, scanEntry, type ScanJob, type ScanResult } from './scan-entry.js';

/**
 * Worker entry: receives batches of jobs (paths, not bytes), answers with one result per job.
 * Buffers arrive as Uint8Array after structured clone; turn them back into Buffers.
 */
const buf = Buffer.allocUnsafe(READ_SIZE);
const toBuf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

parentPort!.on('message', (msg: { seq: number; jobs: ScanJob[] }) => {
  const results: ScanResult[] = msg.jobs.map((j) => scanEntry({ ...j, path: toBuf(j.path), real: toBuf(j.real) }, buf));
  parentPort!.postMessage({ seq: msg.seq, results });
});
