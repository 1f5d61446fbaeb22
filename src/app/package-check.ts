import type { ExtraAlgo, Observed, ScanError } from '../core/types.js';
import type { PackageIndex, PackageMismatch } from '../pkg/dpkg.js';
import { md5Groups, md5Stream, type Md5Streamer } from '../scan/hash-pool.js';
import { canRaisePriority } from '../scan/thread-priority.js';
import type { Md5Job, Md5Result } from '../scan/md5-lanes.js';
import type { Logger } from 'pino';

/** Where the background MD5 workers run: below everything else, on CPU time nothing else wants. */
const BACKGROUND_NICE = 19;

export type Shipped = NonNullable<ReturnType<PackageIndex['lookup']>>;
interface Pending extends Md5Job {
  path: Buffer;
  shipped: Shipped;
}

/**
 * baseline's comparison of every packaged regular file with the digest its package recorded.
 *
 * A digest other than MD5 (rpm's SHA-256) is computed in the scan's own read. dpkg's MD5 is a
 * chain of dependent steps no wider vector shortens (OpenSSL ~500-740 MB/s a core here, less than
 * the scan's BLAKE3), so it is computed 8 files at a time in SIMD lanes (md5-lanes.ts, ~4x faster):
 * - a file that fits one lane (128 KiB: 98 % of /usr's packaged files, 15 % of their bytes) in the
 *   scan's own read, with the other small packaged files of its batch (scan-entry's md5Lanes);
 * - a larger one after the scan, read again from the page cache with all the other large ones,
 *   largest first, one share per worker, so that 8 large files share the lanes (in a scan batch
 *   one would be alone and leave 7 lanes idle). Such a file is compared only if it is still
 *   exactly what the generation recorded (inode, size, mtime, ctime); one that changed in between
 *   is reported, not compared.
 * With stream(), the larger files are hashed while the scan goes on, by workers at the lowest
 * priority (nice 19) that use the CPU time the scan leaves idle and take the rest at the
 * process's own priority once finish() is called (hash-pool's md5Stream).
 */
export class PackageCheck {
  readonly mismatches: PackageMismatch[] = [];
  /** packaged files that could not be compared: changed after they were recorded, or unreadable on the second read */
  readonly unverified: ScanError[] = [];
  checked = 0;
  private pending: Pending[] = [];
  private streamer: Md5Streamer<Pending> | null = null;
  private log: Logger | null = null;

  constructor(private readonly index: PackageIndex) {}

  /**
   * Hash the larger files in `jobs` background workers as add() queues them, instead of all in
   * finish(). Only where those workers can come back from nice 19 to the process's priority for
   * what is left at the end (CAP_SYS_NICE, as root): elsewhere that rest would crawl on a busy
   * host, and finish() hashes everything as before.
   */
  stream(jobs: number, signal: AbortSignal, log: Logger, force = false): boolean {
    if (this.streamer || jobs <= 0 || !(force || canRaisePriority())) return false;
    this.log = log;
    this.streamer = md5Stream<Pending>(jobs, signal, (p, r) => this.settle(p, r), BACKGROUND_NICE);
    return true;
  }

  /** Stop the background workers (a scan that failed); nothing more is compared. */
  async stop(): Promise<void> {
    const s = this.streamer;
    this.streamer = null;
    await s?.close();
  }

  /** What the package database recorded for this path, when it recorded a digest (one lookup: keep it for add()). */
  shippedFor(path: Buffer): Shipped | null {
    const shipped = this.index.lookup(path.toString('utf8'));
    return shipped?.digest ? shipped : null;
  }

  /** The package digest to compute in the scan's read of a file, if any (not MD5: see above). */
  static inRead(shipped: Shipped | null): ExtraAlgo | null {
    return shipped && shipped.algo !== 'md5' ? shipped.algo : null;
  }

  /** An entry the scan recorded: compared now if its digest came with it, else queued for finish(). */
  add(path: Buffer, real: Buffer, rec: Observed, shipped: Shipped | null = this.shippedFor(path)): void {
    if (rec.type !== 'file' || !shipped) return;
    const now = rec.extra?.[shipped.algo];
    if (now) this.compare(path, shipped, now);
    else if (shipped.algo === 'md5') {
      const p = { path, real, size: rec.size, inode: rec.inode, mtimeNs: rec.mtimeNs, ctimeNs: rec.ctimeNs, shipped };
      if (this.streamer) this.streamer.add(p, p);
      else this.pending.push(p);
    }
  }

  /** Hash and compare what add() queued, in `jobs` worker threads. */
  async finish(jobs: number, signal: AbortSignal, log: Logger): Promise<void> {
    this.log = log;
    const pending = this.pending;
    this.pending = [];
    if (this.streamer) {
      const s = this.streamer;
      this.streamer = null;
      await s.end();
    } else if (pending.length > 0) {
      log.debug({ files: pending.length }, 'comparing packaged files with their packages');
      for await (const [group, results] of md5Groups(sharesBySize(pending, jobs), jobs, signal)) group.forEach((p, i) => this.settle(p, results[i]!));
    }
    const byPath = (a: { path: Buffer }, b: { path: Buffer }): number => Buffer.compare(a.path, b.path);
    this.mismatches.sort(byPath);
    this.unverified.sort(byPath);
  }

  /** A file hashed apart: compared, or unverified (and logged) when it has no digest. */
  private settle(p: Pending, r: Md5Result): void {
    if (typeof r === 'string') this.compare(p.path, p.shipped, r);
    else {
      this.unverified.push({ path: p.path, code: r.code, message: r.message });
      this.log?.warn({ path: p.path.toString('utf8'), code: r.code }, `not compared with its package: ${r.message}`);
    }
  }

  private compare(path: Buffer, shipped: Shipped, now: string): void {
    this.checked++;
    if (shipped.digest !== now)
      this.mismatches.push({
        path,
        package: { manager: this.index.manager, name: shipped.pkg.name, version: shipped.pkg.version },
        algorithm: shipped.algo,
        expected: shipped.digest!,
        actual: now,
        conffile: shipped.conffile,
      });
  }
}

/**
 * One share for each worker, of nearly equal bytes: largest first, each file to the share with the
 * fewest bytes so far (longest processing time first). A worker gets its share as one message, so
 * its 8 lanes take the next file whenever one ends and idle only over the last few small files;
 * the largest file starts first, on a lane of its own, while the other lanes work through the rest.
 */
export function sharesBySize<T extends { size: bigint }>(files: readonly T[], n: number): T[][] {
  const sorted = [...files].sort((a, b) => (a.size < b.size ? 1 : a.size > b.size ? -1 : 0));
  const shares = Array.from({ length: Math.max(1, n) }, () => ({ files: [] as T[], bytes: 0 }));
  for (const f of sorted) {
    let least = shares[0]!;
    for (const s of shares) if (s.bytes < least.bytes) least = s;
    least.files.push(f);
    least.bytes += Number(f.size);
  }
  return shares.map((s) => s.files).filter((f) => f.length > 0);
}
