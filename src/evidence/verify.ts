/**
 * `integ verify`: re-check an evidence bundle's seal and say exactly what does not match.
 *
 * A bundle is trustworthy (ok) when
 *   - the archive reads to its end, with one top folder and only regular files;
 *   - every file matches SHA256SUMS, and SHA256SUMS lists every file but itself;
 *   - manifest.json is an integ.bundle/1 manifest naming this bundle, its `files` list
 *     matches every file (except manifest.json, signature.json, SHA256SUMS), and its
 *     artifacts' sha256 agree;
 *   - log.jsonl's hash chain is intact and ends where manifest.json says it ends;
 *   - with --verify-key: signature.json is a valid Ed25519 signature of manifest.json by
 *     that key (an unsigned bundle then fails).
 * Anything else is a problem naming the file; any problem means exit 16.
 */
import path from 'node:path';
import type { RunContext } from '../util/context.js';
import { readBundle } from './bundle-reader.js';
import { BUNDLE_SCHEMA, LOG_GENESIS } from './bundle-format.js';
import { throwIfAborted as checkAborted } from '../util/abort.js';
import { keyId, loadPublicKey, verify as verifySig } from '../trust/keys.js';
import { sha256Hex } from '../util/sha256.js';

const VERIFY_SCHEMA = 'integ.verify/1';

/**
 * ALTERED/ADDED/REMOVED: a file differs from, is missing from, or is absent in the
 * recorded hashes. TRUNCATED/CORRUPT: the archive (file null) or one file is cut short
 * or unreadable. UNSAFE: an entry that a bundle never holds (absolute or `..` path, link,
 * device, outside the top folder). DUPLICATE: a path stored twice. LOG: the log chain.
 * MANIFEST: manifest.json disagrees with itself or the bundle. SIGNATURE: see `signature`.
 */
export type VerifyProblemKind = 'ALTERED' | 'ADDED' | 'REMOVED' | 'TRUNCATED' | 'CORRUPT' | 'UNSAFE' | 'DUPLICATE' | 'LOG' | 'MANIFEST' | 'SIGNATURE';

export interface VerifyProblem {
  kind: VerifyProblemKind;
  /** Path inside the top folder; null for the archive as a whole. */
  file: string | null;
  detail: string;
}

/**
 * valid / invalid: checked against --verify-key. absent: the bundle is not signed.
 * not-checked: signed, but no --verify-key was given.
 */
export type SignatureStatus = 'valid' | 'invalid' | 'absent' | 'not-checked';

export interface VerifyResult {
  schema: typeof VERIFY_SCHEMA;
  /** Absolute path of what was verified. */
  bundle: string;
  /** Bundle name (the top folder). */
  name: string;
  ok: boolean;
  signature: SignatureStatus;
  /** key id recorded in signature.json, when there is one. */
  key_id: string | null;
  /** sha256 of the .tar.gz (compare with the responder's notes); null for a folder. */
  archive_sha256: string | null;
  /** Files in the bundle. */
  files: number;
  /** Lines in log.jsonl. */
  log_lines: number;
  problems: VerifyProblem[];
}

export interface VerifyOptions {
  /** Public key file (or private key) that must have signed the manifest. */
  verifyKey?: string;
}

/** Files the manifest cannot list: itself, its signature, and the sums over all three. */
const SEAL_FILES = new Set(['manifest.json', 'signature.json', 'SHA256SUMS']);

class Problems {
  readonly list: VerifyProblem[] = [];
  private readonly seen = new Set<string>();
  add(kind: VerifyProblemKind, file: string | null, detail: string): void {
    const key = `${kind}\0${file ?? ''}`;
    // One line per file and kind, except the log, whose lines are each worth naming.
    if (kind !== 'LOG' && this.seen.has(key)) return;
    this.seen.add(key);
    this.list.push({ kind, file, detail });
  }
  has(kind: VerifyProblemKind, file: string | null): boolean {
    return this.seen.has(`${kind}\0${file ?? ''}`);
  }
  touches(file: string): boolean {
    return this.list.some((p) => p.file === file);
  }
}

/**
 * Verify a bundle (.tar.gz or extracted folder). Throws NoInputError (66) when the bundle
 * or key file does not exist, DataError (65) for an unusable key or an over-large bundle;
 * everything wrong with the bundle itself is returned in `problems` (ok = false).
 */
export async function verifyBundle(bundlePath: string, opts: VerifyOptions = {}, ctx: Partial<Pick<RunContext, 'log' | 'signal'>> = {}): Promise<VerifyResult> {
  const abs = path.resolve(bundlePath);
  const pub = opts.verifyKey !== undefined ? await loadPublicKey(opts.verifyKey) : undefined;
  const b = await readBundle(abs, { signal: ctx.signal });
  checkAborted(ctx.signal);
  const problems = new Problems();
  for (const i of b.issues) problems.add(i.kind, i.file, i.detail);

  const actual = new Map<string, string>();
  for (const [rel, buf] of b.files) actual.set(rel, sha256Hex(buf));
  const missing = (rel: string): boolean => !actual.has(rel) && !problems.has('TRUNCATED', rel);
  // In a cut-short archive a missing file may simply never have arrived; say so.
  const truncated = problems.has('TRUNCATED', null);
  const why = (listedIn: string): string => `listed in ${listedIn} but not in the bundle${truncated ? ' (the archive is truncated)' : ''}`;

  // 1. SHA256SUMS
  const sums = parseSums(b.files.get('SHA256SUMS'), problems);
  if (sums) {
    for (const [rel, hex] of sums) {
      if (rel === 'SHA256SUMS') continue;
      if (missing(rel)) problems.add('REMOVED', rel, why('SHA256SUMS'));
      else if (actual.has(rel) && actual.get(rel) !== hex) {
        problems.add('ALTERED', rel, `sha256 ${actual.get(rel)} does not match SHA256SUMS (${hex})`);
      }
    }
    for (const rel of actual.keys()) {
      if (rel !== 'SHA256SUMS' && !sums.has(rel)) problems.add('ADDED', rel, 'not listed in SHA256SUMS');
    }
  } else if (!b.files.has('SHA256SUMS') && !problems.has('TRUNCATED', 'SHA256SUMS')) {
    problems.add('REMOVED', 'SHA256SUMS', 'missing: the bundle cannot be checked file by file');
  }

  // 2. manifest.json
  const manifestBytes = b.files.get('manifest.json');
  const m = b.manifest;
  let logRecord: { lines: number; last: string | null } | undefined;
  if (!manifestBytes) {
    if (!problems.has('TRUNCATED', 'manifest.json')) problems.add('REMOVED', 'manifest.json', 'missing');
  } else if (m) {
    if (m.schema !== BUNDLE_SCHEMA) problems.add('MANIFEST', 'manifest.json', `schema ${JSON.stringify(m.schema)}, expected ${BUNDLE_SCHEMA}`);
    if (b.name && m.bundle !== b.name) {
      problems.add('MANIFEST', 'manifest.json', `names bundle ${JSON.stringify(m.bundle)} but the top folder is ${b.name}`);
    }
    const listed = new Map<string, { size: number; sha256: string }>();
    if (!Array.isArray(m.files)) {
      problems.add('MANIFEST', 'manifest.json', 'has no "files" list');
    } else {
      for (const f of m.files as unknown[]) {
        const rec = f as { file?: unknown; size?: unknown; sha256?: unknown };
        if (typeof rec?.file !== 'string' || typeof rec.sha256 !== 'string' || typeof rec.size !== 'number') {
          problems.add('MANIFEST', 'manifest.json', `malformed entry in "files": ${JSON.stringify(f)}`);
          continue;
        }
        listed.set(rec.file, { size: rec.size, sha256: rec.sha256.toLowerCase() });
      }
      for (const [rel, rec] of listed) {
        if (SEAL_FILES.has(rel)) continue;
        const got = actual.get(rel);
        if (got === undefined) {
          if (missing(rel)) problems.add('REMOVED', rel, why('manifest.json'));
        } else if (got !== rec.sha256 || b.files.get(rel)?.length !== rec.size) {
          const viaSums = sums?.get(rel) === got;
          problems.add(
            'ALTERED',
            rel,
            viaSums
              ? `matches SHA256SUMS but not manifest.json (sha256 ${rec.sha256}): SHA256SUMS was rewritten`
              : `sha256 ${got} does not match manifest.json (${rec.sha256})`,
          );
        }
      }
      for (const rel of actual.keys()) {
        if (!SEAL_FILES.has(rel) && !listed.has(rel)) problems.add('ADDED', rel, 'not listed in manifest.json');
      }
    }
    if (Array.isArray(m.artifacts)) {
      for (const a of m.artifacts as unknown[]) {
        const art = a as { file?: unknown; sha256?: unknown };
        if (typeof art?.file !== 'string' || art.file === '' || typeof art.sha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(art.sha256)) continue;
        const rec = listed.get(art.file);
        if (rec && rec.sha256 !== art.sha256.toLowerCase()) {
          problems.add('MANIFEST', art.file, `artifact sha256 ${art.sha256} disagrees with the manifest's files list (${rec.sha256})`);
        } else if (!rec && actual.has(art.file) && actual.get(art.file) !== art.sha256.toLowerCase()) {
          problems.add('ALTERED', art.file, `sha256 ${actual.get(art.file)} does not match the artifact record (${art.sha256})`);
        }
      }
    }
    const lg = m.log as { lines?: unknown; last_sha256?: unknown } | undefined;
    if (lg && typeof lg.lines === 'number') {
      logRecord = { lines: lg.lines, last: typeof lg.last_sha256 === 'string' ? lg.last_sha256 : null };
    } else {
      problems.add('MANIFEST', 'manifest.json', 'has no "log" record (lines, last_sha256)');
    }
  }

  // 3. log.jsonl chain
  const logBuf = b.files.get('log.jsonl');
  let logLines = 0;
  if (logBuf) {
    logLines = checkLogChain(logBuf, logRecord, problems);
  } else if (!problems.touches('log.jsonl')) {
    problems.add('REMOVED', 'log.jsonl', 'missing');
  }

  // 4. signature
  let signature: SignatureStatus = 'absent';
  let sigKeyId: string | null = null;
  const sigBuf = b.files.get('signature.json');
  if (sigBuf) {
    let sig: { alg?: unknown; key_id?: unknown; sig?: unknown } | undefined;
    try {
      const parsed: unknown = JSON.parse(sigBuf.toString('utf8'));
      if (parsed && typeof parsed === 'object') sig = parsed as typeof sig;
    } catch {
      sig = undefined;
    }
    sigKeyId = typeof sig?.key_id === 'string' ? sig.key_id : null;
    if (!pub) {
      signature = 'not-checked';
    } else if (!sig || sig.alg !== 'ed25519' || typeof sig.sig !== 'string') {
      signature = 'invalid';
      problems.add('SIGNATURE', 'signature.json', 'not an integ Ed25519 signature record');
    } else if (!manifestBytes) {
      signature = 'invalid';
      problems.add('SIGNATURE', 'manifest.json', 'signature present but manifest.json is missing');
    } else if (verifySig(manifestBytes, sig.sig, pub)) {
      signature = 'valid';
    } else {
      signature = 'invalid';
      const want = keyId(pub);
      problems.add(
        'SIGNATURE',
        'manifest.json',
        sigKeyId !== null && sigKeyId !== want
          ? `signed by key ${sigKeyId}, not by the --verify-key (${want})`
          : `signature does not match manifest.json (altered after signing) for key ${want}`,
      );
    }
  } else if (pub) {
    problems.add('SIGNATURE', 'signature.json', 'bundle is not signed, but --verify-key was given');
  }

  // Hashed while it was read: the file is never opened a second time (it could have been swapped for a FIFO).
  const archiveSha = b.archiveSha256;
  checkAborted(ctx.signal);
  const result: VerifyResult = {
    schema: VERIFY_SCHEMA,
    bundle: abs,
    name: b.name,
    ok: problems.list.length === 0,
    signature,
    key_id: sigKeyId,
    archive_sha256: archiveSha,
    files: b.files.size,
    log_lines: logLines,
    problems: problems.list,
  };
  ctx.log?.info({ bundle: abs, ok: result.ok, problems: result.problems.length, signature }, 'bundle verified');
  return result;
}

/** Parse SHA256SUMS as `sha256sum` writes it; malformed lines are problems. */
function parseSums(buf: Buffer | undefined, problems: Problems): Map<string, string> | undefined {
  if (!buf) return undefined;
  const sums = new Map<string, string>();
  const lines = buf.toString('utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((line, i) => {
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (!m || m[1] === undefined || m[2] === undefined) {
      problems.add('ALTERED', 'SHA256SUMS', `line ${i + 1} is not "<sha256>  <file>"`);
      return;
    }
    if (sums.has(m[2])) problems.add('ALTERED', 'SHA256SUMS', `lists ${m[2]} more than once`);
    sums.set(m[2], m[1].toLowerCase());
  });
  return sums;
}

/**
 * Walk the log's hash chain: line n must carry seq n and prev = sha256 of line n-1's
 * bytes (64 zeros for line 1); the manifest pins the line count and last line's hash.
 * Returns the number of lines.
 */
function checkLogChain(buf: Buffer, record: { lines: number; last: string | null } | undefined, problems: Problems): number {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < buf.length; i += 1) {
    if (buf[i] === 0x0a) {
      lines.push(buf.subarray(start, i));
      start = i + 1;
    }
  }
  const unterminated = start < buf.length;
  if (unterminated) lines.push(buf.subarray(start));
  let prev = LOG_GENESIS;
  lines.forEach((line, i) => {
    const n = i + 1;
    const why: string[] = [];
    let entry: { seq?: unknown; prev?: unknown } | undefined;
    try {
      const parsed: unknown = JSON.parse(line.toString('utf8'));
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) entry = parsed as typeof entry;
    } catch {
      entry = undefined;
    }
    if (!entry) {
      problems.add('LOG', 'log.jsonl', `line ${n}: not a JSON object`);
    } else {
      if (entry.prev !== prev) {
        why.push(
          n === 1
            ? 'the first line must have prev = 64 zeros; lines were removed from the start'
            : `prev does not match line ${n - 1}: line ${n - 1} was edited or lines before ${n} were removed`,
        );
      }
      if (entry.seq !== n) why.push(`seq ${JSON.stringify(entry.seq)}, expected ${n}`);
      if (why.length > 0) problems.add('LOG', 'log.jsonl', `line ${n}: chain broken (${why.join('; ')})`);
    }
    prev = sha256Hex(line);
  });
  if (unterminated) problems.add('LOG', 'log.jsonl', `line ${lines.length}: has no final newline (log truncated)`);
  if (record) {
    if (lines.length < record.lines) {
      problems.add('LOG', 'log.jsonl', `line ${lines.length + 1}: missing (manifest.json records ${record.lines} lines, found ${lines.length})`);
    } else if (lines.length > record.lines) {
      problems.add('LOG', 'log.jsonl', `line ${record.lines + 1}: added after sealing (manifest.json records ${record.lines} lines)`);
    } else if (lines.length > 0 && record.last !== prev) {
      problems.add('LOG', 'log.jsonl', `line ${lines.length}: does not match the last-line hash in manifest.json`);
    }
  }
  return lines.length;
}
