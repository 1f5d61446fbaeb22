import { parentPort } from 'node:worker_threads';
import { READ_SIZE, scanBatch, type ScanJob, type ScanResult } from './scan-entry.js';

/**
 * Worker entry: receives batches of jobs (paths, not bytes), answers with one result per job.
 * Buffers arrive as Uint8Array after structured clone; turn them back into Buffers.
 */
const buf = Buffer.allocUnsafe(READ_SIZE);
const toBuf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

parentPort!.on('message', (msg: { seq: number; jobs: ScanJob[] }) => {
  for (const j of msg.jobs) {
    j.path = toBuf(j.path);
    j.real = toBuf(j.real);
  }
  const results: ScanResult[] = scanBatch(msg.jobs, buf);
  parentPort!.postMessage({ seq: msg.seq, results });
});
