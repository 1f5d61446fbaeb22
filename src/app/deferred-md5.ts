import type { Logger } from 'pino';
import { md5Groups, md5Stream, type Md5Streamer } from '../scan/hash-pool.js';
import type { Observed } from '../core/types.js';
import { laneRates, type LaneRates, type Md5Job, type Md5Result } from '../scan/md5-lanes.js';
import { nativeMd5 } from '../scan/md5-native.js';
import { canRaisePriority } from '../scan/thread-priority.js';

/**
 * MD5s of content seen before, by content digest (the store's md5-cache.ts): a file whose MD5 it
 * knows is not read again.
 */
export interface KnownMd5 {
  /** the file's key (its content digest), or null where it has none */
  keyOf(rec: Pick<Observed, 'blake3' | 'sha256'>): string | null;
  get(key: string): string | null;
  /** an MD5 a second read computed */
  put(key: string, md5: string): void;
}

/** A recorded file's key in `known` and the MD5 known for it (both null without `known` or a content digest). */
export function knownMd5Of(known: KnownMd5 | null, rec: Pick<Observed, 'blake3' | 'sha256'>): { key: string | null; md5: string | null } {
  const key = known ? known.keyOf(rec) : null;
  return { key, md5: key === null ? null : known!.get(key) };
}

/** Where the background MD5 workers run: below everything else, on CPU time nothing else wants. */
const BACKGROUND_NICE = 19;

/**
 * Files queued before the caller is to drain() them mid-scan: ~0.5 KB each, so memory stays flat
 * with the number of large files (4 MB at most). /usr has ~2,500 files past a lane: never reached there.
 */
export const MAX_QUEUED = 8192;

/**
 * The MD5 of files too large for a scan batch's lanes, computed after their scan, 32 files at a
 * time in the native lanes or 8 in the wasm ones (md5-lanes.ts, ~6x or ~3.5x node:crypto's speed). dpkg records only MD5 and IOC
 * feeds often do: a baseline's package check and a check or baseline with an md5 feed queue
 * their larger files here instead of hashing each with node:crypto in its read. In a scan batch
 * one large file would be alone in the lanes; here the large files of the whole scan
 * share them.
 *
 * The second read is from the page cache the scan just filled. A worker answers a file only if
 * it is still exactly what the scan recorded (inode, size, mtime, ctime: md5-lanes' unchanged());
 * one that changed in between is answered with ECHANGED, never with the digest of other content.
 *
 * With stream(), the files are hashed while the scan goes on, by workers at the lowest priority
 * (nice 19) that use the CPU time the scan leaves idle and take the rest at the process's own
 * priority once finish() is called (hash-pool's md5Stream). Otherwise finish() hashes them all,
 * one share of nearly equal bytes per worker, largest first.
 */
export class DeferredMd5<T> {
  private pending: Array<Md5Job & { tag: T }> = [];
  private streamer: Md5Streamer<T> | null = null;

  /** `settle` gets each file's tag with its digest, or why it has none; on this thread, in completion order. */
  constructor(
    private readonly settle: (tag: T, r: Md5Result) => void,
    private readonly maxQueued = MAX_QUEUED,
  ) {}

  /**
   * Hash in `jobs` background workers as add() queues files, instead of all in finish(). Only
   * where those workers can come back from nice 19 to the process's priority for what is left at
   * the end (CAP_SYS_NICE, as root): elsewhere that rest would crawl on a busy host, and finish()
   * hashes everything as before. And only with the wasm lanes: the native ones (md5-native.ts) make
   * MD5 cheap enough that two more threads during the scan cost more than they save (README,
   * Performance, eleventh round: baseline of /usr 0.6 CPU s and 27 MB of peak RSS less without).
   * `force` (tests): stream wherever there are workers.
   */
  stream(jobs: number, signal: AbortSignal, force = false): boolean {
    if (this.streamer || jobs <= 0 || !(force || (canRaisePriority() && !nativeMd5()))) return false;
    this.streamer = md5Stream<T>(jobs, signal, this.settle, BACKGROUND_NICE);
    return true;
  }

  /** Queue a file the scan recorded (its inode, size, mtime and ctime as recorded). */
  add(job: Md5Job, tag: T): void {
    if (this.streamer) this.streamer.add(job, tag);
    else this.pending.push({ real: job.real, size: job.size, inode: job.inode, mtimeNs: job.mtimeNs, ctimeNs: job.ctimeNs, tag });
  }

  /** Stop the background workers (a scan that failed); nothing more is answered. */
  async stop(): Promise<void> {
    const s = this.streamer;
    this.streamer = null;
    this.pending = [];
    await s?.close();
  }

  /**
   * maxQueued files wait for their second read: drain() them before adding more. Streaming, the
   * files sent to the workers and not answered yet count (at nice 19 during a busy scan, most wait),
   * and never fewer than four times what the workers may hold back (Md5Streamer.held).
   */
  get backlogged(): boolean {
    const s = this.streamer;
    return s ? s.outstanding >= this.streamLimit(s) : this.pending.length >= this.maxQueued;
  }

  private streamLimit(s: Md5Streamer<T>): number {
    return Math.max(this.maxQueued, 4 * s.held);
  }

  /**
   * Hash what add() queued so far, in `jobs` worker threads (0: on this thread); resolves once every
   * file was answered. Streaming: once half of the limit is left, the workers having had the CPU
   * time that the caller, waiting here, leaves them.
   */
  async drain(jobs: number, signal: AbortSignal, log: Logger, what: string): Promise<void> {
    const s = this.streamer;
    if (s) {
      log.debug({ files: s.outstanding }, what);
      return s.below(this.streamLimit(s) / 2);
    }
    const pending = this.pending;
    this.pending = [];
    if (pending.length === 0) return;
    log.debug({ files: pending.length }, what);
    for await (const [group, results] of md5Groups(sharesBySize(pending, jobs, laneRates()), jobs, signal))
      group.forEach((p, i) => this.settle(p.tag, results[i]!));
  }

  /** No more files: hash the rest (drain(), or the end of the stream). */
  async finish(jobs: number, signal: AbortSignal, log: Logger, what: string): Promise<void> {
    if (this.streamer) {
      const s = this.streamer;
      this.streamer = null;
      await s.end();
    } else await this.drain(jobs, signal, log, what);
  }
}

/** Bytes a second read copies from the page cache into the lanes a second (here) */
const READ_RATE = 6e9;

/**
 * One share for each worker, largest first: each file, largest first, to the share that would end
 * soonest with it (longest processing time first). A worker gets its share as one message, so its
 * lanes (8 or 32) take the next file whenever one ends; the largest file starts first, on a lane of
 * its own, while the other lanes work through the rest.
 *
 * Without `rates`, a share's time is its bytes. With them, it is its bytes read and hashed with all
 * lanes busy, plus what its largest file has left once the others are done: in a lane that file
 * moves at 1/lanes of the lanes' throughput, and a file far larger than the rest (chromium's 297 MB
 * on /usr, where a share is ~2 GB) then ends alone, hashed on at `alone`. Such a share gets fewer
 * other bytes: on /usr the second read went from 993 to 948 ms (medians of 10; README,
 * Performance, twelfth round).
 */
export function sharesBySize<T extends { size: bigint }>(files: readonly T[], n: number, rates: LaneRates | null = null): T[][] {
  const sorted = [...files].sort((a, b) => (a.size < b.size ? 1 : a.size > b.size ? -1 : 0));
  const shares = Array.from({ length: Math.max(1, n) }, () => ({ files: [] as T[], bytes: 0, largest: 0 }));
  const time = (bytes: number, largest: number): number =>
    rates ? bytes / rates.all + bytes / READ_RATE + Math.max(0, largest - bytes / rates.lanes) / rates.alone : bytes;
  for (const f of sorted) {
    const size = Number(f.size);
    let best = shares[0]!;
    let bestTime = Infinity;
    for (const s of shares) {
      const t = time(s.bytes + size, Math.max(s.largest, size));
      if (t < bestTime || (t === bestTime && s.bytes < best.bytes)) {
        best = s;
        bestTime = t;
      }
    }
    best.files.push(f);
    best.bytes += size;
    best.largest = Math.max(best.largest, size);
  }
  return shares.map((s) => s.files).filter((f) => f.length > 0);
}
