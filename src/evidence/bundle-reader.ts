/**
 * Reads an evidence bundle — a `.tar.gz` as `integ snapshot` writes it, or a folder
 * extracted from one — into memory, defensively: the bundle may come from a
 * compromised host or have been damaged in transit.
 *
 * - Nothing is written to disk; entries are kept in memory, so there is no path
 *   traversal to exploit. Entry names that are absolute, contain `..`, lie outside the
 *   single top folder, or are links/devices are reported, not followed.
 * - Total size is bounded (default 512 MiB, at most 100 000 files): beyond that the
 *   bundle is refused with DataError (65) rather than exhausting memory. So are the
 *   compressed and the decompressed byte counts (a gzip bomb), the time spent (default
 *   300 s), and what follows the tar end-of-archive marker (at most 1 MiB of padding; more
 *   is reported as CORRUPT and reading stops there).
 * - Only a regular file or a folder is opened: a FIFO, a device or a socket (`/dev/zero`)
 *   is refused with DataError (65) before it is opened for reading, and the file is opened
 *   non-blocking and checked again through its descriptor.
 * - A truncated or corrupt gzip/tar is reported as an issue; whatever could be read
 *   before the damage is still returned. A file whose data was cut short is not
 *   returned (it is reported as TRUNCATED).
 * - A path that appears twice in the archive is reported (extraction would silently
 *   keep the last copy); the last copy is returned, as `tar x` would give.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import * as tar from 'tar';
import { abortError, throwIfAborted } from '../util/abort.js';
import { DataError, NoInputError } from '../util/errors.js';

/** Kinds of archive-level issues found while reading. */
export type BundleIssueKind = 'TRUNCATED' | 'CORRUPT' | 'UNSAFE' | 'DUPLICATE';

/** One structured issue; `file` is relative to the top folder, or null for the archive itself. */
export interface BundleIssue {
  kind: BundleIssueKind;
  file: string | null;
  detail: string;
}

export interface ReadBundle {
  /** The top folder's name (the bundle name), or '' when none could be read. */
  name: string;
  /** Regular files, keyed by path relative to the top folder (e.g. "artifacts/processes.json"). */
  files: Map<string, Buffer>;
  /** Parsed manifest.json, or null when missing or not valid JSON (see problems). */
  manifest: Record<string, unknown> | null;
  /** Everything that went wrong while reading, one human-readable line each. */
  problems: string[];
  /** The same problems, structured (used by `integ verify`). */
  issues: BundleIssue[];
  /** Whether the input was a .tar.gz/.tar file or an extracted folder. */
  source: 'archive' | 'folder';
  /** sha256 of the archive file, hashed while it was read (null for a folder). */
  archiveSha256: string | null;
}

export interface ReadBundleOptions {
  /** Upper bound on the total bytes of file content kept in memory. */
  maxBytes?: number;
  /** Upper bound on the number of entries. */
  maxEntries?: number;
  /** Upper bound on the time spent reading (ms). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const DEFAULT_MAX_BYTES = 512 * 1024 * 1024;
const DEFAULT_MAX_ENTRIES = 100_000;
const DEFAULT_TIMEOUT_MS = 300_000;
/** Tar headers and padding per entry allowed on top of the content bound (a pax header is about 1.5 KiB). */
const OVERHEAD_PER_ENTRY = 2048;
/** What may follow the end-of-archive marker: tar pads to 10 KiB records; anything beyond 1 MiB is not padding. */
const MAX_TRAILING = 1024 * 1024;
/** Archive-level problems kept before reading stops (a stream of junk must not fill memory with warnings). */
const MAX_ISSUES = 1000;

/**
 * Read a bundle. Throws NoInputError (66) when `p` does not exist or cannot be read, and
 * DataError (65) when it is larger than the bounds; every other defect is returned in
 * `problems`/`issues`.
 */
export async function readBundle(p: string, opts: ReadBundleOptions = {}): Promise<ReadBundle> {
  let st: fs.Stats;
  try {
    st = await fsp.stat(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new NoInputError(`bundle ${p} not found`);
    throw new NoInputError(`cannot read bundle ${p}: ${(err as Error).message}`);
  }
  if (!st.isDirectory() && !st.isFile()) throw notRegular(p, st);
  const limits: Limits = {
    maxBytes: opts.maxBytes ?? DEFAULT_MAX_BYTES,
    maxEntries: opts.maxEntries ?? DEFAULT_MAX_ENTRIES,
    deadline: Date.now() + (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  };
  throwIfAborted(opts.signal);
  const raw = st.isDirectory() ? await readFolder(p, limits, opts.signal) : await readArchive(p, st, limits, opts.signal);
  let manifest: Record<string, unknown> | null = null;
  const m = raw.files.get('manifest.json');
  if (m) {
    try {
      const parsed: unknown = JSON.parse(m.toString('utf8'));
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) manifest = parsed as Record<string, unknown>;
      else raw.issues.push({ kind: 'CORRUPT', file: 'manifest.json', detail: 'not a JSON object' });
    } catch (err) {
      raw.issues.push({ kind: 'CORRUPT', file: 'manifest.json', detail: `not valid JSON: ${(err as Error).message}` });
    }
  }
  return {
    name: raw.name,
    files: raw.files,
    manifest,
    problems: raw.issues.map(describeIssue),
    issues: raw.issues,
    source: st.isDirectory() ? 'folder' : 'archive',
    archiveSha256: raw.sha256 ?? null,
  };
}

/** A FIFO would block and a device (/dev/zero) never ends: refused before reading (65). */
function notRegular(p: string, st: fs.Stats): DataError {
  const kind = st.isFIFO()
    ? 'a FIFO'
    : st.isCharacterDevice()
      ? 'a character device'
      : st.isBlockDevice()
        ? 'a block device'
        : st.isSocket()
          ? 'a socket'
          : 'not a regular file';
  return new DataError(`bundle ${p} is ${kind}, not a .tar.gz file or a folder; refusing to read it`);
}

/** "TRUNCATED archive: …", "UNSAFE ../x: …" */
function describeIssue(i: BundleIssue): string {
  return `${i.kind} ${i.file ?? 'archive'}: ${i.detail}`;
}

interface Limits {
  maxBytes: number;
  maxEntries: number;
  /** Date.now() past which reading stops. */
  deadline: number;
  timeoutMs: number;
}

interface Raw {
  name: string;
  files: Map<string, Buffer>;
  issues: BundleIssue[];
  sha256?: string | null;
}

function tooSlow(what: string, limits: Limits): DataError {
  return new DataError(`${what}: not read within the time limit (${Math.round(limits.timeoutMs / 1000)} s); refusing it`);
}

function tooLarge(what: string, limits: Limits): DataError {
  return new DataError(`${what}: larger than the reading limit (${limits.maxBytes} bytes, ${limits.maxEntries} entries)`);
}

/** Splits an archive path into top folder + relative path, or explains why it is unsafe. */
function splitEntryPath(entryPath: string): { top: string; rel: string } | { unsafe: string } {
  const p = entryPath.replace(/\/+$/, '');
  if (p === '' || p.startsWith('/')) return { unsafe: 'absolute or empty path' };
  if (/[\x00]/.test(p)) return { unsafe: 'NUL in path' };
  const segs = p.split('/');
  if (segs.some((s) => s === '..')) return { unsafe: 'path contains ".."' };
  const clean = segs.filter((s) => s !== '' && s !== '.');
  if (clean.length === 0) return { unsafe: 'empty path' };
  return { top: clean[0] ?? '', rel: clean.slice(1).join('/') };
}

/**
 * Read a .tar.gz (or plain .tar) through one non-blocking descriptor: raw bytes are hashed
 * and counted, gunzip output is counted, and the tar parser's entries are kept in memory
 * within the bounds; anything past the end-of-archive marker beyond MAX_TRAILING stops reading.
 */
async function readArchive(file: string, st: fs.Stats, limits: Limits, signal: AbortSignal | undefined): Promise<Raw> {
  const files = new Map<string, Buffer>();
  const issues: BundleIssue[] = [];
  let top = '';
  let total = 0;
  let entries = 0;
  let fatal: Error | undefined;
  let sha256: string | null = null;

  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw new NoInputError(`cannot read bundle ${file}: ${(err as Error).message}`);
  }
  try {
    const fst = await handle.stat();
    if (!fst.isFile()) throw notRegular(file, fst);
    if (fst.dev !== st.dev || fst.ino !== st.ino) throw new DataError(`bundle ${file} was replaced while being opened; refusing it`);
    const rawLimit = limits.maxBytes + limits.maxEntries * OVERHEAD_PER_ENTRY + MAX_TRAILING;
    const decodedLimit = rawLimit;
    if (fst.size > rawLimit) throw tooLarge(`bundle ${file}`, limits);
    const head = Buffer.alloc(2);
    await handle.read(head, 0, 2, 0);
    const gzip = head[0] === 0x1f && head[1] === 0x8b;
    const hash = crypto.createHash('sha256');
    let raw = 0;

    await new Promise<void>((resolve, reject) => {
      const input = handle.createReadStream({ start: 0, autoClose: false });
      const decoder = gzip ? zlib.createGunzip() : undefined;
      /** Run at the end: files whose data never finished arriving. */
      const pending = new Set<() => void>();
      let settled = false;
      let decoded = 0;
      let afterEof: number | undefined;
      const timer = setTimeout(() => done(tooSlow(`bundle ${file}`, limits)), Math.max(0, limits.deadline - Date.now()));
      const onAbort = (): void => done(abortError(signal));
      const done = (err?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        input.destroy();
        decoder?.destroy();
        if (err) reject(err);
        else resolve();
      };
      const finish = (): void => {
        for (const f of pending) f();
        pending.clear();
      };
      let draining = false;
      let inputEnded = false;
      /**
       * The tar side has its answer: read the rest of the file only to hash it (bounded by
       * rawLimit, the timer and the signal), so the archive's SHA-256 can still be compared
       * with the responder's notes.
       */
      const drain = (): void => {
        if (settled || draining) return;
        if (inputEnded) return done();
        draining = true;
        decoder?.destroy();
        input.resume();
      };
      const stop = (issue: BundleIssue): void => {
        issues.push(issue);
        finish();
        drain();
      };
      const addIssue = (i: BundleIssue): void => {
        issues.push(i);
        if (issues.length >= MAX_ISSUES) stop({ kind: 'CORRUPT', file: null, detail: `more than ${MAX_ISSUES} problems; stopped reading` });
      };
      const parser = new tar.Parser({
        strict: false,
        // Our own byte bounds protect memory; tar's ratio check would refuse
        // legitimate bundles of highly compressible raw files.
        maxDecompressionRatio: Infinity,
        onwarn: (code: string, message: string | Error) => {
          if (settled || draining) return;
          const msg = typeof message === 'string' ? message : message.message;
          if (code === 'TAR_ENTRY_INVALID' || code === 'TAR_ENTRY_UNSUPPORTED') {
            addIssue({ kind: 'CORRUPT', file: null, detail: msg });
          } else if (/truncated|unexpected end/i.test(msg)) {
            addIssue({ kind: 'TRUNCATED', file: null, detail: msg });
          } else {
            addIssue({ kind: 'CORRUPT', file: null, detail: msg });
          }
        },
        onReadEntry: (entry: tar.ReadEntry) => {
          if (settled || draining) {
            entry.resume();
            return;
          }
          entries += 1;
          if (entries > limits.maxEntries) {
            fatal = tooLarge(`bundle ${file}`, limits);
            return done(fatal);
          }
          const split = splitEntryPath(entry.path);
          if ('unsafe' in split) {
            addIssue({ kind: 'UNSAFE', file: entry.path, detail: split.unsafe });
            entry.resume();
            return;
          }
          // The top folder is the first folder seen; a loose file at the archive root cannot claim it.
          if (top === '' && (entry.type === 'Directory' || split.rel !== '')) top = split.top;
          const inTop = top !== '' && split.top === top;
          // Outside the single top folder: reported under its archive path.
          const rel = inTop ? split.rel : entry.path;
          if (entry.type === 'Directory') {
            if (!inTop) addIssue({ kind: 'UNSAFE', file: rel, detail: top ? `folder outside the top folder ${top}` : 'folder outside the top folder' });
            entry.resume();
            return;
          }
          if (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'ContiguousFile') {
            addIssue({ kind: 'UNSAFE', file: rel || entry.path, detail: `unexpected ${entry.type} entry (bundles hold only regular files)` });
            entry.resume();
            return;
          }
          if (!inTop || rel === '') {
            addIssue({ kind: 'UNSAFE', file: rel || entry.path, detail: top ? `file outside the top folder ${top}` : 'file outside the top folder' });
            entry.resume();
            return;
          }
          const declared = entry.size ?? 0;
          if (total + declared > limits.maxBytes) {
            fatal = tooLarge(`bundle ${file}`, limits);
            return done(fatal);
          }
          total += declared;
          const chunks: Buffer[] = [];
          let got = 0;
          let ended = false;
          entry.on('data', (c: Buffer) => {
            got += c.length;
            if (got <= declared) chunks.push(c);
          });
          entry.on('end', () => {
            ended = true;
            if (got !== declared) {
              issues.push({ kind: 'TRUNCATED', file: rel, detail: `only ${got} of ${declared} bytes in the archive` });
              return;
            }
            if (files.has(rel)) issues.push({ kind: 'DUPLICATE', file: rel, detail: 'appears more than once in the archive; the last copy is used' });
            files.set(rel, Buffer.concat(chunks, got));
          });
          pending.add(() => {
            if (!ended) issues.push({ kind: 'TRUNCATED', file: rel, detail: `archive ends inside this file (${got} of ${declared} bytes)` });
          });
        },
      });
      parser.on('eof', () => {
        afterEof ??= 0;
      });
      const archiveIssue = (err: Error | undefined): void => {
        const detail = err?.message ?? 'archive could not be read';
        // 'abort' and 'error' usually both come, with the same message.
        if (issues.some((i) => i.file === null && i.detail === detail)) return;
        issues.push({ kind: /unexpected end|truncated/i.test(detail) ? 'TRUNCATED' : 'CORRUPT', file: null, detail });
      };
      const ended = (): void => {
        finish();
        drain();
      };
      parser.on('end', ended);
      parser.on('close', ended);
      parser.on('abort', (err: Error) => {
        archiveIssue(err);
        ended();
      });
      parser.on('error', (err: Error) => {
        archiveIssue(err);
        ended();
      });
      /** Tar bytes (after gunzip) into the parser, counted. */
      const feed = (chunk: Buffer): void => {
        if (settled || draining) return;
        decoded += chunk.length;
        if (afterEof !== undefined) {
          afterEof += chunk.length;
          if (afterEof > MAX_TRAILING) {
            return stop({
              kind: 'CORRUPT',
              file: null,
              detail: `more than ${MAX_TRAILING} bytes of data after the end of the archive (not written by integ); stopped reading there`,
            });
          }
        }
        if (decoded > decodedLimit) return done(tooLarge(`bundle ${file} (decompressed)`, limits));
        if (Date.now() > limits.deadline) return done(tooSlow(`bundle ${file}`, limits));
        parser.write(chunk);
      };
      input.on('data', (chunk: Buffer | string) => {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        raw += buf.length;
        if (raw > rawLimit) return done(tooLarge(`bundle ${file}`, limits));
        hash.update(buf);
        if (draining) return;
        if (!decoder) return feed(buf);
        if (!decoder.write(buf)) {
          input.pause();
          decoder.once('drain', () => input.resume());
        }
      });
      input.on('end', () => {
        inputEnded = true;
        if (draining) done();
        else if (decoder) decoder.end();
        else parser.end();
      });
      input.on('error', (err) => done(new NoInputError(`cannot read bundle ${file}: ${err.message}`)));
      if (decoder) {
        decoder.on('data', (c: Buffer) => feed(c));
        decoder.on('end', () => {
          if (!settled && !draining) parser.end();
        });
        decoder.on('error', (err: Error) => {
          if (settled || draining) return;
          // A cut-short or damaged gzip stream: what was read so far still counts.
          const cut = /unexpected end/i.test(err.message);
          issues.push({ kind: cut ? 'TRUNCATED' : 'CORRUPT', file: null, detail: `gzip data ${cut ? 'ends early' : 'is damaged'} (${err.message})` });
          ended();
        });
      }
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    // The archive's own hash, for the responder's notes (every byte is read, even after the tar side stopped).
    if (raw === fst.size) sha256 = hash.digest('hex');
  } finally {
    await handle.close().catch(() => undefined);
  }

  if (top === '' && issues.length === 0) issues.push({ kind: 'CORRUPT', file: null, detail: 'archive holds no files' });
  return { name: top, files, issues, sha256 };
}

/**
 * An extracted bundle: `p` is the top folder itself (it holds SHA256SUMS or
 * manifest.json), or a folder holding exactly one such top folder.
 */
async function readFolder(p: string, limits: Limits, signal: AbortSignal | undefined): Promise<Raw> {
  let topDir = path.resolve(p);
  const looksLikeTop = async (d: string): Promise<boolean> => (await isFile(path.join(d, 'SHA256SUMS'))) || (await isFile(path.join(d, 'manifest.json')));
  if (!(await looksLikeTop(topDir))) {
    const subs = (await fsp.readdir(topDir, { withFileTypes: true })).filter((d) => d.isDirectory());
    const only = subs.length === 1 ? subs[0] : undefined;
    if (only && (await looksLikeTop(path.join(topDir, only.name)))) topDir = path.join(topDir, only.name);
  }
  const files = new Map<string, Buffer>();
  const issues: BundleIssue[] = [];
  let total = 0;
  let entries = 0;
  const walk = async (dir: string, rel: string): Promise<void> => {
    const list = await fsp.readdir(dir, { withFileTypes: true });
    list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of list) {
      throwIfAborted(signal);
      if (Date.now() > limits.deadline) throw tooSlow(`bundle folder ${topDir}`, limits);
      entries += 1;
      if (entries > limits.maxEntries) throw tooLarge(`bundle folder ${topDir}`, limits);
      const r = rel ? `${rel}/${d.name}` : d.name;
      const abs = path.join(dir, d.name);
      const st = await fsp.lstat(abs);
      if (st.isDirectory()) {
        await walk(abs, r);
      } else if (st.isFile()) {
        total += st.size;
        if (total > limits.maxBytes) throw tooLarge(`bundle folder ${topDir}`, limits);
        try {
          files.set(r, await readRegular(abs));
        } catch (err) {
          issues.push({ kind: 'CORRUPT', file: r, detail: `cannot read: ${(err as Error).message}` });
        }
      } else {
        issues.push({ kind: 'UNSAFE', file: r, detail: `unexpected ${st.isSymbolicLink() ? 'symbolic link' : 'special file'} (not followed)` });
      }
    }
  };
  await walk(topDir, '');
  return { name: path.basename(topDir), files, issues };
}

/** Read a regular file without following a symlink swapped in after lstat. */
async function readRegular(abs: string): Promise<Buffer> {
  const h = await fsp.open(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    const st = await h.stat();
    if (!st.isFile()) throw new Error('not a regular file');
    return await h.readFile();
  } finally {
    await h.close();
  }
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await fsp.lstat(p)).isFile();
  } catch {
    return false;
  }
}
