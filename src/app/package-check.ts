import type { Logger } from 'pino';
import type { ExtraAlgo, Observed, ScanError } from '../core/types.js';
import type { PackageIndex, PackageMismatch } from '../pkg/dpkg.js';
import type { Md5Result } from '../scan/md5-lanes.js';
import { DeferredMd5, knownMd5Of, type KnownMd5 } from './deferred-md5.js';

/** the debug line of each second read (with the number of files) */
const COMPARING = 'comparing packaged files with their packages';

export type Shipped = NonNullable<ReturnType<PackageIndex['lookup']>>;
interface Pending {
  path: Buffer;
  shipped: Shipped;
  /** the file's key in `known`, whose MD5 the second read tells it */
  key: string | null;
  /** also told the MD5, or why there is none (a feed's match of the same file) */
  then: ((r: Md5Result) => void) | null;
}

/**
 * baseline's comparison of every packaged regular file with the digest its package recorded.
 *
 * A digest other than MD5 (rpm's SHA-256) is computed in the scan's own read. dpkg's MD5 is a
 * chain of dependent steps no wider vector shortens (OpenSSL ~500-740 MB/s a core here, less than
 * the scan's BLAKE3), so it is computed 8 files at a time in SIMD lanes (md5-lanes.ts, ~4x faster):
 * - a file that fits one lane (128 KiB: 98 % of /usr's packaged files, 15 % of their bytes) in the
 *   scan's own read, with the other small packaged files of its batch (scan-entry's md5Lanes);
 * - a larger one after the scan, read again from the page cache with all the other large ones
 *   (deferred-md5.ts). Such a file is compared only if it is still exactly what the generation
 *   recorded (inode, size, mtime, ctime); one that changed in between is reported, not compared.
 *   With stream() (as root), those are hashed while the scan goes on, at nice 19.
 * A feed's MD5 of a large packaged file comes from the same second read (add()'s `then`).
 * With `known`, a large file whose content an earlier baseline hashed is not read again: its MD5
 * is known by its content digest (md5-cache.ts).
 */
export class PackageCheck {
  readonly mismatches: PackageMismatch[] = [];
  /** packaged files that could not be compared: changed after they were recorded, or unreadable on the second read */
  readonly unverified: ScanError[] = [];
  checked = 0;
  private readonly later: DeferredMd5<Pending>;
  private log: Logger | null = null;

  /** large packaged files compared with an MD5 `known` gave (not read again) */
  reused = 0;

  /** maxQueued: see DeferredMd5 (tests lower it) */
  constructor(
    private readonly index: PackageIndex,
    maxQueued?: number,
    private readonly known: KnownMd5 | null = null,
  ) {
    this.later = new DeferredMd5<Pending>((p, r) => this.settle(p, r), maxQueued);
  }

  /** Hash the larger files in `jobs` background workers as add() queues them (DeferredMd5.stream). */
  stream(jobs: number, signal: AbortSignal, log: Logger, force = false): boolean {
    this.log = log;
    return this.later.stream(jobs, signal, force);
  }

  /** Stop the background workers (a scan that failed); nothing more is compared. */
  stop(): Promise<void> {
    return this.later.stop();
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

  /**
   * An entry the scan recorded: compared now if its digest came with it or `known` has its MD5,
   * else queued for finish(). True when its MD5 is known or queued: `then`, if given, is told the
   * MD5 too (now, or when it comes, or why there is none), so that a caller that needs it as well
   * does not read the file again.
   */
  add(path: Buffer, real: Buffer, rec: Observed, shipped: Shipped | null = this.shippedFor(path), then: Pending['then'] = null): boolean {
    if (rec.type !== 'file' || !shipped) return false;
    const now = rec.extra?.[shipped.algo];
    if (now) this.compare(path, shipped, now);
    else if (shipped.algo === 'md5') {
      const { key, md5 } = knownMd5Of(this.known, rec);
      if (md5 !== null) {
        this.reused++;
        this.compare(path, shipped, md5);
        then?.(md5);
        return true;
      }
      this.later.add({ real, size: rec.size, inode: rec.inode, mtimeNs: rec.mtimeNs, ctimeNs: rec.ctimeNs }, { path, shipped, then, key });
      return true;
    }
    return false;
  }

  /** So many files wait for their second read that the caller is to drain() them before the scan goes on. */
  get backlogged(): boolean {
    return this.later.backlogged;
  }

  /** Hash and compare what add() queued so far. */
  drain(jobs: number, signal: AbortSignal, log: Logger): Promise<void> {
    this.log = log;
    return this.later.drain(jobs, signal, log, COMPARING);
  }

  /** Hash and compare what add() queued, in `jobs` worker threads. */
  async finish(jobs: number, signal: AbortSignal, log: Logger): Promise<void> {
    this.log = log;
    await this.later.finish(jobs, signal, log, COMPARING);
    const byPath = (a: { path: Buffer }, b: { path: Buffer }): number => Buffer.compare(a.path, b.path);
    this.mismatches.sort(byPath);
    this.unverified.sort(byPath);
  }

  /** A file hashed apart: compared, or unverified (and logged) when it has no digest. */
  private settle(p: Pending, r: Md5Result): void {
    p.then?.(r);
    if (typeof r === 'string') {
      this.compare(p.path, p.shipped, r);
      if (p.key !== null) this.known?.put(p.key, r);
    } else {
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
