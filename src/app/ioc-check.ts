import type { Logger } from 'pino';
import type { IocSet } from '../core/ioc.js';
import type { ExtraAlgo, IocMatch, Observed, ScanError } from '../core/types.js';
import { pathToText } from '../core/pathenc.js';
import type { Md5Result } from '../scan/md5-lanes.js';
import { DeferredMd5, knownMd5Of, type KnownMd5 } from './deferred-md5.js';

/** the debug line of each second read (with the number of files) */
const MD5_READ = 'MD5 of the larger files for the known-bad lists';

/** What a file whose MD5 comes later is matched with, once it has it. */
export type Md5Then = (r: Md5Result) => void;

/**
 * The known-bad hash lists (IOC feeds) of a check or baseline: each scanned regular file is
 * matched against them, and a match is logged and kept.
 *
 * A feed's SHA-256 and SHA-1 are computed in the scan's read of each file. Its MD5 too would cost
 * node:crypto's ~0.6 GB/s a core in every read, more than the scan's own BLAKE3; so MD5 is not
 * asked of the read (scanExtra): a file that fits an md5-lanes lane gets it from the lanes in its
 * scan batch (the job's md5Lanes), and a larger one is matched once its MD5 comes from a second
 * read shared with the other large files, 8 at a time in the lanes (deferred-md5.ts): about twice
 * as fast for a tree like /usr, where files past a lane are most of the bytes. A file that changed
 * between the two reads is not matched by MD5 (its MD5 would be another content's) and is reported
 * as an error.
 *
 * The second read comes after the scan, when its worker threads are gone: hashing in background
 * workers during the scan (as baseline's package check does) measured no faster on /usr with 2
 * cores, where the scan keeps both busy, and its two more threads took peak RSS from 187 to 207 MB.
 */
export class IocCheck {
  private readonly matches: IocMatch[] = [];
  /** files whose MD5 could not be had for the feeds: changed after the scan, or unreadable on the second read */
  private readonly errors: ScanError[] = [];
  /** the feeds list MD5s: the scan's jobs want md5Lanes */
  readonly md5: boolean;
  private readonly deferred: DeferredMd5<Md5Then>;
  /** MD5s known by content digest (the store's md5-cache.ts): such a file is not read again */
  known: KnownMd5 | null = null;

  /** maxQueued: see DeferredMd5 (tests lower it) */
  constructor(
    readonly set: IocSet,
    private readonly log: Logger,
    maxQueued?: number,
  ) {
    this.md5 = set.algorithms().includes('md5');
    this.deferred = new DeferredMd5<Md5Then>((then, r) => then(r), maxQueued);
  }

  /** The digests to compute in each file's read: the feeds' algorithms but MD5 (see above). */
  scanExtra(): ExtraAlgo[] {
    return this.set.algorithms().filter((a) => a !== 'md5');
  }

  /**
   * A recorded entry, with what its read computed: matched now, or, for a file whose MD5 the feeds
   * need and the read did not give, a callback that matches it once the MD5 comes (give it to
   * later(), or to whatever else reads the file again for its MD5). Null: nothing left to do.
   */
  matchOrThen(path: Buffer, rule: string, rec: Observed): Md5Then | null {
    if (rec.type !== 'file') return null;
    const sha256 = rec.extra?.sha256 ?? rec.sha256;
    const sha1 = rec.extra?.sha1;
    const md5 = rec.extra?.md5;
    if (md5 || !this.md5) {
      this.match(path, rule, sha256, sha1, md5);
      return null;
    }
    return (r) => {
      if (typeof r === 'string') this.match(path, rule, sha256, sha1, r);
      else {
        // The other digests still count: a SHA-256 match needs no MD5.
        this.match(path, rule, sha256, sha1, null);
        const message =
          r.code === 'ECHANGED'
            ? 'changed after it was recorded; not matched with the MD5s of the known-bad lists'
            : `${r.message}; not matched with the MD5s of the known-bad lists`;
        this.errors.push({ path, code: r.code, message });
        this.log.warn({ path: pathToText(path), code: r.code }, message);
      }
    };
  }

  /**
   * Read the file again for its MD5 (deferred-md5.ts), as recorded in `rec`, and then match it;
   * at once where `known` has the MD5 of its content.
   */
  later(real: Buffer, rec: Observed, then: Md5Then): void {
    const { key, md5 } = knownMd5Of(this.known, rec);
    if (md5 !== null) {
      then(md5);
      return;
    }
    const learn: Md5Then =
      key === null
        ? then
        : (r) => {
            if (typeof r === 'string') this.known?.put(key, r);
            then(r);
          };
    this.deferred.add({ real, size: rec.size, inode: rec.inode, mtimeNs: rec.mtimeNs, ctimeNs: rec.ctimeNs }, learn);
  }

  /** matchOrThen, and what is left for later() handed to it. */
  add(path: Buffer, real: Buffer, rule: string, rec: Observed): void {
    const then = this.matchOrThen(path, rule, rec);
    if (then) this.later(real, rec, then);
  }

  stop(): Promise<void> {
    return this.deferred.stop();
  }

  /** So many files wait for later()'s read that the caller is to drain() them before the scan goes on. */
  get backlogged(): boolean {
    return this.deferred.backlogged;
  }

  /** Match what later() queued so far. */
  drain(jobs: number, signal: AbortSignal): Promise<void> {
    return this.deferred.drain(jobs, signal, this.log, MD5_READ);
  }

  /** Match what later() queued. */
  finish(jobs: number, signal: AbortSignal): Promise<void> {
    return this.deferred.finish(jobs, signal, this.log, MD5_READ);
  }

  /** The matches and errors in path order, once finish() and whatever else was given a callback are done. */
  results(): { matches: IocMatch[]; errors: ScanError[] } {
    const byPath = (a: { path: Buffer }, b: { path: Buffer }): number => Buffer.compare(a.path, b.path);
    return { matches: this.matches.sort(byPath), errors: this.errors.sort(byPath) };
  }

  private match(path: Buffer, rule: string, sha256: string | null | undefined, sha1: string | null | undefined, md5: string | null | undefined): void {
    const hit = this.set.match({ sha256, sha1, md5 });
    if (!hit) return;
    this.matches.push({ path, rule, ...hit });
    this.log.error({ path: pathToText(path), algorithm: hit.algorithm, digest: hit.digest, label: hit.label, source: hit.source }, 'known-bad content');
  }
}
