/** The evidence bundle's format: schemas, record types, names and paths (pure helpers shared by the writer, verify and tests). */
import type { KeyObject } from 'node:crypto';
import { DataError } from '../util/errors.js';

export const BUNDLE_SCHEMA = 'integ.bundle/1';
export const SIGNATURE_SCHEMA = 'integ.signature/1';
/** Files the writer itself produces at seal time; addFile refuses these names. */
export const RESERVED_FILES = ['manifest.json', 'signature.json', 'SHA256SUMS', 'log.jsonl'] as const;
/** `prev` of the first log line. */
export const LOG_GENESIS = '0'.repeat(64);

export interface BundleWriterOptions {
  /** Evidence folder; created (mkdir -p, 0700) if missing; refused when another user could rename entries in it. */
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

/** `integ-<host>-<stamp>`: hostname reduced to [A-Za-z0-9._-], at most 64 characters. */
export function sanitiseHost(hostname: string): string {
  const s = hostname
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[.]+/, '')
    .slice(0, 64);
  return s === '' ? 'unknown' : s;
}

/** 2026-11-21T23:00:00.123Z → 20261121T230000Z */
export function compactUtc(d: Date): string {
  return d
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
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

export function isErrno(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code);
}

export function parentDirs(rel: string): string[] {
  const segs = rel.split('/');
  const out: string[] = [];
  for (let i = 1; i < segs.length; i += 1) out.push(segs.slice(0, i).join('/'));
  return out;
}

/** The one sha256 helper, under the name the writer's callers know. */
export { sha256Hex as sha256hex } from '../util/sha256.js';

export function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
