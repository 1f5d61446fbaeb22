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
 */
import crypto, { type KeyObject } from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import * as tar from 'tar';
import type { BundleSink } from './types.js';
import { DataError, IntegError, InterruptedError, writeErrorFor } from '../util/errors.js';
import { keyId, sign } from '../trust/keys.js';

export const BUNDLE_SCHEMA = 'integ.bundle/1';
export const SIGNATURE_SCHEMA = 'integ.signature/1';
/** Files the writer itself produces at seal time; addFile refuses these names. */
export const RESERVED_FILES = ['manifest.json', 'signature.json', 'SHA256SUMS', 'log.jsonl'] as const;
/** `prev` of the first log line. */
export const LOG_GENESIS = '0'.repeat(64);

export interface BundleWriterOptions {
  /** Evidence folder; created (mkdir -p, 0700) if missing. */
  outDir: string;
  /** Host name; sanitised to [A-Za-z0-9._-] for the bundle name. */
  hostname: string;
  /** Timestamp in the bundle name (UTC); defaults to now. */
  now?: Date;
  /** Aborting removes everything and makes the pending call throw InterruptedError. */
  signal?: AbortSignal;
}

export interface SealOptions {
  /**
   * The manifest body: tool version, argv, uid/euid, hostname, boot id, clocks,
   * artifacts … The writer adds `schema`, `bundle`, `files` and `log`, which win over
   * fields of the same name.
   */
  manifest: Record<string, unknown>;
  /** Ed25519 private key (from loadPrivateKey); adds signature.json. */
  signKey?: KeyObject;
}

export interface SealedBundle {
  /** Absolute path of the published .tar.gz. */
  path: string;
  /** sha256 hex of the .tar.gz itself. */
  sha256: string;
  size: number;
  /** Bundle name = top folder = archive name without .tar.gz. */
  name: string;
}

/** One file as listed in manifest.json `files`. */
export interface ManifestFile {
  file: string;
  size: number;
  sha256: string;
}

type State = 'open' | 'sealing' | 'sealed' | 'aborted' | 'failed';

export class BundleWriter implements BundleSink {
  private state: State = 'open';
  private readonly files = new Map<string, ManifestFile>();
  private readonly dirs = new Set<string>();
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
    /** Absolute evidence folder. */
    readonly outDir: string,
    /** Hidden staging folder inside outDir (removed after sealing). */
    private readonly stagingDir: string,
    /** The top folder being filled (inside stagingDir). */
    readonly topDir: string,
    private readonly partialPath: string,
    private readonly partial: fs.FileHandle,
    private readonly logHandle: fs.FileHandle,
    private readonly mtime: Date,
    private readonly signal: AbortSignal | undefined,
  ) {
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Create outDir if needed, reserve a unique bundle name and open the staging folder. */
  static async create(opts: BundleWriterOptions): Promise<BundleWriter> {
    const outDir = path.resolve(opts.outDir);
    const now = opts.now ?? new Date();
    throwIfAborted(opts.signal);
    try {
      await mkdirp(outDir);
    } catch (err) {
      throw writeErrorFor(err, `cannot create evidence folder ${outDir}`);
    }
    const base = `integ-${sanitiseHost(opts.hostname)}-${compactUtc(now)}`;
    let name = '';
    let partialPath = '';
    let partial: fs.FileHandle | undefined;
    let stagingDir: string | undefined;
    try {
      for (let n = 1; partial === undefined; n += 1) {
        if (n > 1000) throw new DataError(`cannot find a free bundle name for ${base} in ${outDir}`);
        name = n === 1 ? base : `${base}-${n}`;
        partialPath = path.join(outDir, `${name}.tar.gz.partial`);
        let handle: fs.FileHandle;
        try {
          handle = await fs.open(partialPath, 'wx', 0o600); // the O_EXCL reservation
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
          throw err;
        }
        if ((await exists(path.join(outDir, `${name}.tar.gz`))) || (await exists(path.join(outDir, name)))) {
          await handle.close();
          await fs.rm(partialPath, { force: true });
          continue;
        }
        partial = handle;
      }
      await partial.chmod(0o600);
      stagingDir = await fs.mkdtemp(path.join(outDir, `.${name}.staging-`)); // mkdtemp makes it 0700
      await fs.chmod(stagingDir, 0o700);
      const topDir = path.join(stagingDir, name);
      await fs.mkdir(topDir, { mode: 0o700 });
      await fs.chmod(topDir, 0o700);
      const logHandle = await fs.open(path.join(topDir, 'log.jsonl'), 'wx', 0o600);
      await logHandle.chmod(0o600);
      const writer = new BundleWriter(name, outDir, stagingDir, topDir, partialPath, partial, logHandle, now, opts.signal);
      // An abort that came while we were creating fired before our listener existed.
      if (opts.signal?.aborted) {
        await writer.abort();
        throwIfAborted(opts.signal);
      }
      return writer;
    } catch (err) {
      await partial?.close().catch(() => undefined);
      if (partial) await fs.rm(partialPath, { force: true }).catch(() => undefined);
      if (stagingDir) await fs.rm(stagingDir, { recursive: true, force: true }).catch(() => undefined);
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
    this.assertOpen('addFile');
    const rel = checkRelPath(relPath);
    if ((RESERVED_FILES as readonly string[]).includes(rel)) throw new DataError(`bundle path ${rel} is reserved for the bundle writer`);
    if (this.files.has(rel) || this.dirs.has(rel)) throw new DataError(`bundle path ${rel} was already added`);
    const parents = parentDirs(rel);
    for (const p of parents) {
      if (this.files.has(p)) throw new DataError(`bundle path ${rel}: ${p} is a file`);
    }
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const entry: ManifestFile = { file: rel, size: buf.length, sha256: sha256hex(buf) };
    // Claimed before the first await so a concurrent addFile of the same path is refused.
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
   * `<outDir>/<name>.tar.gz` via a fsynced .partial and a rename. Removes the staging
   * folder. On error or abort nothing is left behind and the error is thrown
   * (73/74 from writeErrorFor, 130 on abort).
   */
  async seal(opts: SealOptions): Promise<SealedBundle> {
    this.assertOpen('seal');
    this.state = 'sealing';
    this.busy += 1;
    try {
      await Promise.allSettled([...this.inflight]);
      if (this.failure) throw this.failure;
      await this.checkAborted();
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
      await fs.rm(this.stagingDir, { recursive: true, force: true }).catch(() => undefined);
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
      await this.partial.close().catch(() => undefined);
      await fs.rm(this.partialPath, { force: true }).catch(() => undefined);
      await fs.rm(this.stagingDir, { recursive: true, force: true }).catch(() => undefined);
    })();
    await this.cleanup;
  }

  private async writeStaged(rel: string, parents: string[], buf: Buffer): Promise<void> {
    for (const p of parents) {
      if (this.dirs.has(p)) continue;
      const abs = path.join(this.topDir, p);
      try {
        await fs.mkdir(abs, { mode: 0o700 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      await fs.chmod(abs, 0o700);
      this.dirs.add(p);
    }
    await this.writeNew(rel, buf);
  }

  /** Create a new file (never over an existing one), 0600 whatever the umask. */
  private async writeNew(rel: string, buf: Buffer): Promise<void> {
    const handle = await fs.open(path.join(this.topDir, rel), 'wx', 0o600);
    try {
      await handle.chmod(0o600);
      await handle.writeFile(buf);
    } finally {
      await handle.close();
    }
  }

  private async writeOwn(rel: string, buf: Buffer): Promise<ManifestFile> {
    await this.writeNew(rel, buf);
    return { file: rel, size: buf.length, sha256: sha256hex(buf) };
  }

  /** Tar + gzip the top folder into the reserved .partial, fsync, rename, fsync the folder. */
  private async writeArchive(files: string[]): Promise<SealedBundle> {
    const entries = [this.name, ...[...this.dirs].map((d) => `${this.name}/${d}`)];
    for (const f of files) entries.push(`${this.name}/${f}`);
    entries.sort(byteCompare);
    // PackSync, one entry at a time: each add() reads its file synchronously (and closes it)
    // and yields the compressed bytes at once, which we write before the next add. So an
    // error or abort between entries leaves no file open in staging and no half-fed
    // stream, memory stays bounded by one file, and the event loop breathes between files.
    const pack = new tar.PackSync({ cwd: this.stagingDir, gzip: true, portable: true, noDirRecurse: true, mtime: this.mtime, strict: true });
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
        await writeAll(this.partial, chunk, size);
        size += chunk.length;
      }
      if (this.signal?.aborted) throw this.interrupted();
    };
    for (const entry of entries) {
      pack.add(entry);
      await flush();
    }
    pack.end();
    await flush();
    await this.partial.sync();
    await this.partial.close();
    const finalPath = path.join(this.outDir, `${this.name}.tar.gz`);
    await this.checkAborted();
    await fs.rename(this.partialPath, finalPath);
    // Past this point the bundle is complete; a folder that cannot be fsynced (some
    // filesystems refuse) must not turn a published bundle into an error.
    await fsyncDir(this.outDir).catch(() => undefined);
    return { path: finalPath, sha256: hash.digest('hex'), size, name: this.name };
  }

  private assertOpen(op: string): void {
    if (this.failure) throw this.failure;
    if (this.state === 'aborted' || this.signal?.aborted) {
      void this.abort();
      throw this.interrupted();
    }
    if (this.state !== 'open') throw new Error(`BundleWriter.${op} after ${this.state}`);
  }

  private async checkAborted(): Promise<void> {
    if (this.signal?.aborted || this.state === 'aborted') {
      await this.abort();
      throw this.interrupted();
    }
  }

  private interrupted(): IntegError {
    const reason: unknown = this.signal?.reason;
    return reason instanceof IntegError ? reason : new InterruptedError();
  }

  /** Turn any error into the one to throw, after removing everything. */
  private async fail(err: unknown, what: string): Promise<IntegError> {
    let e: IntegError;
    if (err instanceof IntegError) e = err;
    else if (this.signal?.aborted) e = this.interrupted();
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

/** `integ-<host>-<stamp>`: hostname reduced to [A-Za-z0-9._-], at most 64 characters. */
export function sanitiseHost(hostname: string): string {
  const s = hostname.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[.]+/, '').slice(0, 64);
  return s === '' ? 'unknown' : s;
}

/** 2026-11-21T23:00:00.123Z → 20261121T230000Z */
export function compactUtc(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

/** Validate a path inside the bundle; returns it unchanged or throws DataError. */
export function checkRelPath(rel: string): string {
  const bad = (why: string): never => {
    throw new DataError(`unsafe path for the evidence bundle: ${JSON.stringify(rel)} (${why})`);
  };
  if (typeof rel !== 'string' || rel === '') bad('empty');
  if (rel.startsWith('/')) bad('absolute');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f\\]/.test(rel)) bad('control character or backslash');
  for (const seg of rel.split('/')) {
    if (seg === '') bad('empty segment');
    if (seg === '.' || seg === '..') bad(`"${seg}" segment`);
  }
  return rel;
}

function isErrno(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code);
}

function parentDirs(rel: string): string[] {
  const segs = rel.split('/');
  const out: string[] = [];
  for (let i = 1; i < segs.length; i += 1) out.push(segs.slice(0, i).join('/'));
  return out;
}

export function sha256hex(buf: Buffer): string {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  const reason: unknown = signal.reason;
  throw reason instanceof IntegError ? reason : new InterruptedError();
}

/** mkdir -p with 0700 for every level created here (existing levels are left as they are). */
async function mkdirp(dir: string): Promise<void> {
  const missing: string[] = [];
  let cur = dir;
  for (;;) {
    try {
      const st = await fs.stat(cur);
      if (!st.isDirectory()) {
        const err = new Error(`${cur} is not a directory`) as NodeJS.ErrnoException;
        err.code = 'ENOTDIR';
        throw err;
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      missing.push(cur);
      const up = path.dirname(cur);
      if (up === cur) break;
      cur = up;
    }
  }
  for (const d of missing.reverse()) {
    try {
      await fs.mkdir(d, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      continue;
    }
    await fs.chmod(d, 0o700);
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function writeAll(handle: fs.FileHandle, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await handle.write(buf, off, buf.length - off, position + off);
    off += bytesWritten;
  }
}

function writeAllSync(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += fsSync.writeSync(fd, buf, off, buf.length - off);
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await fs.open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}
