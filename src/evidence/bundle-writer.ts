/**
 * The evidence bundle writer: stages files in a private folder, seals them with
 * manifest.json, an optional Ed25519 signature and SHA256SUMS, and publishes one
 * `integ-<host>-<YYYYMMDDTHHMMSSZ>.tar.gz` atomically.
 *
 * Layout inside the archive (one top folder named like the archive):
 *
 *   <name>/manifest.json    caller's body + schema, bundle name, every file's size and sha256,
 *                           and the log's line count and last-line hash
 *   <name>/signature.json   only when signed: {schema, alg:"ed25519", key_id, signed_file:
 *                           "manifest.json", sig: base64 over the exact bytes of manifest.json}
 *   <name>/SHA256SUMS       `sha256sum` format; covers every other file, signature.json included
 *   <name>/log.jsonl        one JSON line per step: {seq, ts, prev, …}; prev = sha256 hex of the
 *                           previous line's bytes without its "\n" (64 zeros for the first line)
 *   <name>/artifacts/…, raw/…, …  whatever the caller added
 *
 * The signature lives in its own file because it cannot be inside the manifest it signs;
 * it is written before SHA256SUMS so that SHA256SUMS covers every file but itself and
 * `sha256sum -c SHA256SUMS` also catches a replaced signature.json. The manifest lists
 * every file except manifest.json, signature.json and SHA256SUMS, so a valid signature
 * pins the content of all of them. Without a signature, the archive's sha256 printed at
 * sealing time (for the responder's notes) is the anchor.
 *
 * Safety rules: folders are 0700 and files 0600 (bundles hold sensitive data); the
 * archive is written as `<name>.tar.gz.partial` (reserved with O_EXCL when the writer
 * is created, so two runs never pick the same name), fsynced, then renamed. Any write
 * error or abort removes the staging folder and the .partial: nothing that looks complete
 * is ever left behind.
 *
 * Against a hostile local user (see fsat.ts): an output folder that another user could
 * rename entries in is refused; everything is created, written, chmodded and removed through
 * descriptors of the folders the writer made (never by a name that could have been swapped);
 * the staging folder and the .partial must still be the very ones created (dev/inode) before
 * the bundle is sealed and published.
 */
import crypto from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import * as tar from 'tar';
import type { BundleSink } from './types.js';
import { CantCreateError, DataError, IntegError, InterruptedError, writeErrorFor } from '../util/errors.js';
import { abortError, throwIfAborted } from '../util/abort.js';
import {
  assertPrivateFolder,
  at,
  createFileAt,
  errno,
  euid,
  type Held,
  lstatOrNull,
  mkdirAt,
  mkdirp,
  O_DIR_NOFOLLOW,
  releaseHeld,
  sameFile,
  unlinkAt,
  writeAll,
  writeAllSync,
  writeNewFileAt,
} from './fsat.js';
import { stagingPrefix, sweepStale } from './stale-sweep.js';
import {
  BUNDLE_SCHEMA,
  LOG_GENESIS,
  RESERVED_FILES,
  SIGNATURE_SCHEMA,
  byteCompare,
  checkRelPath,
  compactUtc,
  isErrno,
  parentDirs,
  sanitiseHost,
  sha256hex,
  type BundleWriterOptions,
  type ManifestFile,
  type SealOptions,
  type SealedBundle,
} from './bundle-format.js';

export { checkRelPath, compactUtc, sanitiseHost, sha256hex } from './bundle-format.js';
export { BUNDLE_SCHEMA, LOG_GENESIS, RESERVED_FILES, SIGNATURE_SCHEMA } from './bundle-format.js';
export type { BundleWriterOptions, ManifestFile, SealOptions, SealedBundle } from './bundle-format.js';
import { keyId, sign } from '../trust/keys.js';

type State = 'open' | 'sealing' | 'sealed' | 'aborted' | 'failed';

export class BundleWriter implements BundleSink {
  private state: State = 'open';
  private readonly files = new Map<string, ManifestFile>();
  /** folders made or being made in the bundle, each with its creation (awaited by every writer under it) */
  private readonly dirs = new Map<string, Promise<void>>();
  private logSeq = 0;
  private logPrev = LOG_GENESIS;
  private logSize = 0;
  private logHash = crypto.createHash('sha256');
  private failure: IntegError | undefined;
  private cleanup: Promise<void> | undefined;
  private busy = 0;
  /** addFile writes in progress; seal waits for them. */
  private readonly inflight = new Set<Promise<void>>();
  private readonly onAbort = (): void => {
    // Nothing in flight: clean up now. Otherwise the in-flight call notices and cleans up.
    if (this.busy === 0 && (this.state === 'open' || this.state === 'failed')) void this.abort();
  };

  private constructor(
    /** Bundle name: `integ-<host>-<YYYYMMDDTHHMMSSZ>[-N]`. */
    readonly name: string,
    /** Absolute evidence folder (as given; all work goes through `out`). */
    readonly outDir: string,
    /** The evidence folder, open. */
    private readonly out: fs.FileHandle,
    /** The private staging folder `.<base>.staging-<pid>-<random>` inside it. */
    private readonly staging: Held,
    /** The reserved `<name>.tar.gz.partial`. */
    private readonly partial: Held,
    private readonly logHandle: fs.FileHandle,
    private readonly mtime: Date,
    private readonly signal: AbortSignal | undefined,
    /** Stale staging folders and .partial files of dead runs removed when this writer was created. */
    readonly swept: readonly string[],
  ) {
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** The top folder being filled, by name (informational: the writer itself works through descriptors). */
  get topDir(): string {
    return path.join(this.outDir, this.staging.name, this.name);
  }

  /**
   * Create outDir if needed, refuse it when another user could rename entries in it, sweep
   * what dead runs left, open a private staging folder and reserve a unique bundle name.
   */
  static async create(opts: BundleWriterOptions): Promise<BundleWriter> {
    const outDir = path.resolve(opts.outDir);
    const now = opts.now ?? new Date();
    throwIfAborted(opts.signal);
    let out: fs.FileHandle | undefined;
    if (!fsSync.existsSync('/proc/self/fd'))
      throw new CantCreateError(`cannot create evidence in ${outDir}: /proc is not mounted (the writer works through /proc/self/fd)`);
    try {
      await mkdirp(outDir);
      // The folder named by the user may be a symlink; from here on we hold the folder itself.
      out = await fs.open(outDir, fsSync.constants.O_RDONLY | fsSync.constants.O_DIRECTORY);
      await assertPrivateFolder(out.fd, outDir);
    } catch (err) {
      await out?.close().catch(() => undefined);
      if (err instanceof IntegError) throw err;
      throw writeErrorFor(err, `cannot create evidence folder ${outDir}`);
    }
    const base = `integ-${sanitiseHost(opts.hostname)}-${compactUtc(now)}`;
    let staging: Held | undefined;
    let partial: Held | undefined;
    let logHandle: fs.FileHandle | undefined;
    try {
      const swept = await sweepStale(out.fd);
      // The staging folder comes first: a live run's .partial always has a live staging folder (see stale-sweep.ts).
      const made = path.basename(await fs.mkdtemp(at(out.fd, stagingPrefix(base)))); // mkdtemp: 0700, random, O_EXCL
      const sh = await fs.open(at(out.fd, made), O_DIR_NOFOLLOW);
      const shStat = await sh.stat();
      if (shStat.uid !== euid()) {
        // Swapped for someone else's folder between mkdtemp and open: never clean up inside it.
        await sh.close();
        throw errno('EPERM', `staging folder ${made} was replaced by another user's`);
      }
      staging = { name: made, handle: sh, stat: shStat };
      await sh.chmod(0o700);
      let name = '';
      for (let n = 1; partial === undefined; n += 1) {
        if (n > 1000) throw new DataError(`cannot find a free bundle name for ${base} in ${outDir}`);
        name = n === 1 ? base : `${base}-${n}`;
        let handle: fs.FileHandle;
        try {
          handle = await createFileAt(out.fd, `${name}.tar.gz.partial`); // the O_EXCL reservation
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
          throw err;
        }
        const held: Held = { name: `${name}.tar.gz.partial`, handle, stat: await handle.stat() };
        if ((await lstatOrNull(at(out.fd, `${name}.tar.gz`))) || (await lstatOrNull(at(out.fd, name)))) {
          await handle.close();
          await unlinkAt(out.fd, held.stat, held.name);
          continue;
        }
        partial = held;
      }
      const top = await mkdirAt(sh.fd, name);
      try {
        logHandle = await createFileAt(top.fd, 'log.jsonl');
      } finally {
        await top.close();
      }
      const writer = new BundleWriter(name, outDir, out, staging, partial, logHandle, now, opts.signal, swept);
      // An abort that came while we were creating fired before our listener existed.
      if (opts.signal?.aborted) {
        await writer.abort();
        throwIfAborted(opts.signal);
      }
      return writer;
    } catch (err) {
      await logHandle?.close().catch(() => undefined);
      if (partial) await releaseHeld(out.fd, partial, false);
      if (staging) await releaseHeld(out.fd, staging, true);
      await out.close().catch(() => undefined);
      if (err instanceof IntegError) throw err;
      throw writeErrorFor(err, `cannot create evidence bundle in ${outDir}`);
    }
  }

  /**
   * Write `data` to `relPath` inside the top folder (0600; parent folders 0700).
   * Refuses absolute paths, `.`/`..` segments, empty segments, control characters and
   * backslashes (which `sha256sum` would escape), the writer's own file names, and a
   * path already added.
   */
  async addFile(relPath: string, data: Buffer | string): Promise<{ file: string; size: number; sha256: string }> {
    await this.assertOpen('addFile');
    const rel = checkRelPath(relPath);
    if ((RESERVED_FILES as readonly string[]).includes(rel)) throw new DataError(`bundle path ${rel} is reserved for the bundle writer`);
    if (this.files.has(rel) || this.dirs.has(rel)) throw new DataError(`bundle path ${rel} was already added`);
    const parents = parentDirs(rel);
    for (const p of parents) {
      if (this.files.has(p)) throw new DataError(`bundle path ${rel}: ${p} is a file`);
    }
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const entry: ManifestFile = { file: rel, size: buf.length, sha256: sha256hex(buf) };
    // Claimed before the next await so a concurrent addFile of the same path is refused.
    this.files.set(rel, entry);
    this.busy += 1;
    const work = this.writeStaged(rel, parents, buf);
    this.inflight.add(work);
    try {
      await work;
    } catch (err) {
      this.files.delete(rel);
      throw await this.fail(err, `cannot write ${rel} into bundle ${this.name}`);
    } finally {
      this.inflight.delete(work);
      this.busy -= 1;
    }
    await this.checkAborted();
    return { ...entry };
  }

  /**
   * Append one line to log.jsonl: `{seq, ts, prev, ...entry}` (the writer's fields win).
   * Synchronous so the log keeps step order. A write error is remembered and thrown by
   * the next addFile or seal (after cleanup), so a collector never crashes on logging.
   */
  log(entry: Record<string, unknown>): void {
    if (this.state !== 'open') {
      if (this.state === 'failed' || this.state === 'aborted') return;
      throw new Error(`BundleWriter.log after ${this.state}`);
    }
    const seq = this.logSeq + 1;
    const head: Record<string, unknown> = { seq, ts: new Date().toISOString(), prev: this.logPrev };
    for (const [k, v] of Object.entries(entry)) if (!(k in head)) head[k] = v;
    let text: string;
    try {
      text = JSON.stringify(head);
    } catch (err) {
      text = JSON.stringify({ seq, ts: head.ts, prev: this.logPrev, log_error: `entry not serialisable: ${(err as Error).message}` });
    }
    const line = Buffer.from(text, 'utf8');
    const withNl = Buffer.concat([line, Buffer.from('\n')]);
    try {
      writeAllSync(this.logHandle.fd, withNl);
    } catch (err) {
      this.fail(err, `cannot write log.jsonl of bundle ${this.name}`).catch(() => undefined);
      return;
    }
    this.logSeq = seq;
    this.logPrev = sha256hex(line);
    this.logHash.update(withNl);
    this.logSize += withNl.length;
  }

  /**
   * Seal and publish: manifest.json, signature.json (with signKey), SHA256SUMS, then
   * `<outDir>/<name>.tar.gz` via a fsynced .partial and a rename, after checking that the
   * staging folder and the .partial are still the ones created. Removes the staging
   * folder. On error or abort nothing is left behind and the error is thrown
   * (73/74 from writeErrorFor, 73 when something was swapped, 130 on abort).
   */
  async seal(opts: SealOptions): Promise<SealedBundle> {
    await this.assertOpen('seal');
    this.state = 'sealing';
    this.busy += 1;
    try {
      await Promise.allSettled([...this.inflight]);
      if (this.failure) throw this.failure;
      await this.checkAborted();
      await this.assertUnmoved();
      await this.logHandle.sync();
      await this.logHandle.close();
      const logFile: ManifestFile = { file: 'log.jsonl', size: this.logSize, sha256: this.logHash.digest('hex') };
      const listed = [...this.files.values(), logFile].sort((a, b) => byteCompare(a.file, b.file));
      const manifest: Record<string, unknown> = {
        schema: BUNDLE_SCHEMA,
        bundle: this.name,
        ...opts.manifest,
      };
      manifest.schema = BUNDLE_SCHEMA;
      manifest.bundle = this.name;
      manifest.files = listed;
      manifest.log = { file: 'log.jsonl', lines: this.logSeq, last_sha256: this.logSeq === 0 ? null : this.logPrev };
      const manifestBytes = Buffer.from(JSON.stringify(manifest, null, 2) + '\n', 'utf8');
      const all: ManifestFile[] = [...listed];
      all.push(await this.writeOwn('manifest.json', manifestBytes));
      await this.checkAborted();

      if (opts.signKey) {
        const sig = {
          schema: SIGNATURE_SCHEMA,
          alg: 'ed25519',
          key_id: keyId(opts.signKey),
          signed_file: 'manifest.json',
          sig: sign(manifestBytes, opts.signKey),
        };
        all.push(await this.writeOwn('signature.json', Buffer.from(JSON.stringify(sig, null, 2) + '\n', 'utf8')));
      }

      all.sort((a, b) => byteCompare(a.file, b.file));
      const sums = all.map((f) => `${f.sha256}  ${f.file}\n`).join('');
      await this.writeOwn('SHA256SUMS', Buffer.from(sums, 'utf8'));
      await this.checkAborted();

      const result = await this.writeArchive([...all.map((f) => f.file), 'SHA256SUMS']);
      this.state = 'sealed';
      this.signal?.removeEventListener('abort', this.onAbort);
      await releaseHeld(this.out.fd, this.staging, true);
      await this.out.close().catch(() => undefined);
      return result;
    } catch (err) {
      if (err instanceof IntegError && this.state !== 'sealing') throw err; // already cleaned up
      throw await this.fail(err, `cannot seal bundle ${this.name}`);
    } finally {
      this.busy -= 1;
    }
  }

  /** Remove the staging folder and the .partial. Idempotent; safe after a failure. */
  async abort(): Promise<void> {
    if (this.state === 'sealed') return;
    if (this.state !== 'failed') this.state = 'aborted';
    this.cleanup ??= (async () => {
      this.signal?.removeEventListener('abort', this.onAbort);
      await this.logHandle.close().catch(() => undefined);
      await releaseHeld(this.out.fd, this.partial, false);
      await releaseHeld(this.out.fd, this.staging, true);
      await this.out.close().catch(() => undefined);
    })();
    await this.cleanup;
  }

  /** The staging folder and the .partial must still be the ones created, under their names. */
  private async assertUnmoved(): Promise<void> {
    for (const held of [this.staging, this.partial]) {
      const now = await lstatOrNull(at(this.out.fd, held.name));
      if (!now || !sameFile(now, held.stat)) {
        throw new CantCreateError(
          `evidence folder ${this.outDir} was tampered with during the run: ${held.name} was ` +
            `${now ? 'replaced' : 'removed'} (another user can rename entries in it); nothing was published`,
        );
      }
    }
  }

  private async writeStaged(rel: string, parents: string[], buf: Buffer): Promise<void> {
    for (const p of parents) {
      // A concurrent addFile under the same folder waits for the one creation in progress:
      // writing into a folder that is claimed but not made yet fails with ENOENT.
      let made = this.dirs.get(p);
      if (!made) {
        made = (async () => void (await (await mkdirAt(this.staging.handle.fd, `${this.name}/${p}`, true)).close()))();
        this.dirs.set(p, made);
        const mine = made;
        mine.catch(() => {
          if (this.dirs.get(p) === mine) this.dirs.delete(p);
        });
      }
      await made;
    }
    await writeNewFileAt(this.staging.handle.fd, `${this.name}/${rel}`, buf);
  }

  private async writeOwn(rel: string, buf: Buffer): Promise<ManifestFile> {
    await writeNewFileAt(this.staging.handle.fd, `${this.name}/${rel}`, buf);
    return { file: rel, size: buf.length, sha256: sha256hex(buf) };
  }

  /** Tar + gzip the top folder into the reserved .partial, fsync, rename, fsync the folder. */
  private async writeArchive(files: string[]): Promise<SealedBundle> {
    const entries = [this.name, ...[...this.dirs.keys()].map((d) => `${this.name}/${d}`)];
    for (const f of files) entries.push(`${this.name}/${f}`);
    entries.sort(byteCompare);
    // PackSync, one entry at a time: each add() reads its file synchronously (and closes it)
    // and yields the compressed bytes at once, which we write before the next add. So an
    // error or abort between entries leaves no file open in staging and no half-fed
    // stream, memory stays bounded by one file, and the event loop breathes between files.
    // It reads through the staging folder's descriptor, never by its name in the evidence folder.
    const pack = new tar.PackSync({ cwd: at(this.staging.handle.fd), gzip: true, portable: true, noDirRecurse: true, mtime: this.mtime, strict: true });
    const hash = crypto.createHash('sha256');
    let size = 0;
    let chunks: Buffer[] = [];
    let packError: unknown;
    pack.on('data', (c: Buffer) => chunks.push(c));
    pack.on('error', (err: unknown) => {
      packError ??= err;
    });
    const flush = async (): Promise<void> => {
      if (packError) throw packError;
      const out = chunks;
      chunks = [];
      for (const chunk of out) {
        hash.update(chunk);
        await writeAll(this.partial.handle, chunk, size);
        size += chunk.length;
      }
      throwIfAborted(this.signal);
    };
    for (const entry of entries) {
      pack.add(entry);
      await flush();
    }
    pack.end();
    await flush();
    await this.partial.handle.truncate(size);
    await this.partial.handle.sync();
    await this.checkAborted();
    await this.assertUnmoved();
    const finalName = `${this.name}.tar.gz`;
    await fs.rename(at(this.out.fd, this.partial.name), at(this.out.fd, finalName));
    const published = await lstatOrNull(at(this.out.fd, finalName));
    await this.partial.handle.close();
    if (!published || !sameFile(published, this.partial.stat)) {
      throw new CantCreateError(`evidence folder ${this.outDir} was tampered with while ${finalName} was published; it is not ours`);
    }
    this.partial.name = finalName; // published: no longer ours to remove
    // Past this point the bundle is complete; a folder that cannot be fsynced (some
    // filesystems refuse) must not turn a published bundle into an error.
    await this.out.sync().catch(() => undefined);
    return { path: path.join(this.outDir, finalName), sha256: hash.digest('hex'), size, name: this.name };
  }

  private async assertOpen(op: string): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.state === 'aborted' || this.signal?.aborted) {
      await this.abort();
      throw abortError(this.signal);
    }
    if (this.state !== 'open') throw new Error(`BundleWriter.${op} after ${this.state}`);
  }

  private async checkAborted(): Promise<void> {
    if (this.signal?.aborted || this.state === 'aborted') {
      await this.abort();
      throw abortError(this.signal);
    }
  }

  /** Turn any error into the one to throw, after removing everything. */
  private async fail(err: unknown, what: string): Promise<IntegError> {
    let e: IntegError;
    if (err instanceof IntegError) e = err;
    else if (this.signal?.aborted) e = abortError(this.signal);
    else if (isErrno(err)) e = writeErrorFor(err, what);
    else {
      // Not an I/O error: a bug (say, a manifest that JSON cannot encode). Clean up, rethrow as is.
      this.state = 'failed';
      await this.abort();
      throw err;
    }
    if (!(e instanceof InterruptedError) && !this.failure) this.failure = e;
    if (this.state !== 'aborted') this.state = 'failed';
    await this.abort();
    return e;
  }
}
