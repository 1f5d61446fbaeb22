/**
 * The store's tables as TypeScript sees them, and the one place each is decoded into the
 * records the rest of integ uses. Statements are prepared with these row types
 * (`db.prepare<Params, Row>(…)`), so a column is named and typed once, not cast at every read.
 * Integer columns read with safeIntegers(true) are bigint; otherwise number.
 */
import type { Generation } from '../core/generation.js';
import type { Attribute, EntryRecord, EntryType, FindingKind, ScanError, Severity } from '../core/types.js';

/** `generations` (SELECT *; plain integers). */
export interface GenerationRow {
  id: number;
  created_at: string;
  kind: Generation['kind'];
  user: string;
  uid: number;
  hostname: string;
  note: string | null;
  root: string;
  policy_source: string;
  policy_text: string;
  policy_digest: string;
  hash_algos: string;
  entry_count: number;
  total_bytes: number;
  error_count: number;
  parent_id: number | null;
  parent_digest: string | null;
  digest: string;
  signature: string | null;
  key_id: string | null;
  tool_version: string;
}

export function decodeGeneration(r: GenerationRow): Generation {
  return {
    id: r.id,
    createdAt: r.created_at,
    kind: r.kind,
    user: r.user,
    uid: r.uid,
    hostname: r.hostname,
    note: r.note,
    root: r.root,
    policySource: r.policy_source,
    policyText: r.policy_text,
    policyDigest: r.policy_digest,
    hashAlgos: r.hash_algos,
    entryCount: r.entry_count,
    totalBytes: r.total_bytes,
    errorCount: r.error_count,
    parentId: r.parent_id,
    parentDigest: r.parent_digest,
    digest: r.digest,
    signature: r.signature,
    keyId: r.key_id,
    toolVersion: r.tool_version,
  };
}

/** The entry columns shared by `entries` and `run_findings`, in ENTRY_COLUMNS order. */
export const ENTRY_COLUMNS = 'type, mode, uid, gid, size, mtime_ns, ctime_ns, inode, nlink, target, blake3, sha256, xattrs, flags';
/** How many values ENTRY_COLUMNS has (xattrs and flags since migration 3). */
export const ENTRY_COLUMN_COUNT = 14;

/**
 * ENTRY_COLUMNS as a table with these columns can answer them: a store from before migration 3
 * opened read-only (read-only media cannot be migrated) has no xattrs/flags columns; they read
 * as NULL, "not recorded".
 */
export function entryColumnsFor(columnNames: readonly string[]): string {
  return columnNames.includes('xattrs') ? ENTRY_COLUMNS : ENTRY_COLUMNS.replace('xattrs, flags', 'NULL AS xattrs, NULL AS flags');
}

/** ENTRY_COLUMNS read with safeIntegers(true). */
export interface EntryColumns {
  type: EntryType;
  mode: bigint;
  uid: bigint;
  gid: bigint;
  size: bigint;
  mtime_ns: bigint;
  ctime_ns: bigint;
  inode: bigint;
  nlink: bigint;
  target: Buffer | null;
  blake3: string | null;
  sha256: string | null;
  /** extended attributes (core/fsattrs.ts encoding); NULL: not recorded */
  xattrs: string | null;
  /** FS_IOC_GETFLAGS, -1 unsupported; NULL: not recorded */
  flags: bigint | null;
}

/** The same 14 columns as a raw row (`.raw(true)`), in ENTRY_COLUMNS order. */
export type EntryValues = [
  EntryType,
  bigint,
  bigint,
  bigint,
  bigint,
  bigint,
  bigint,
  bigint,
  bigint,
  Buffer | null,
  string | null,
  string | null,
  string | null,
  bigint | null,
];

/** `entries` as the repositories read it: row id, path, rule, error and the entry columns. */
export interface EntryRow extends EntryColumns {
  rowid: bigint;
  path: Buffer;
  rule: string;
  error: string | null;
}

export function decodeEntryColumns(path: Buffer, r: EntryColumns): EntryRecord {
  return {
    path,
    type: r.type,
    mode: Number(r.mode),
    uid: Number(r.uid),
    gid: Number(r.gid),
    size: r.size,
    mtimeNs: r.mtime_ns,
    ctimeNs: r.ctime_ns,
    inode: r.inode,
    nlink: Number(r.nlink),
    target: r.target,
    blake3: r.blake3,
    sha256: r.sha256,
    xattrs: r.xattrs ?? null,
    flags: r.flags === null || r.flags === undefined ? null : Number(r.flags),
  };
}

export function decodeEntryValues(path: Buffer, v: EntryValues): EntryRecord {
  const [type, mode, uid, gid, size, mtimeNs, ctimeNs, inode, nlink, target, blake3, sha256, xattrs, flags] = v;
  return {
    path,
    type,
    mode: Number(mode),
    uid: Number(uid),
    gid: Number(gid),
    size,
    mtimeNs,
    ctimeNs,
    inode,
    nlink: Number(nlink),
    target,
    blake3,
    sha256,
    xattrs: xattrs ?? null,
    flags: flags === null || flags === undefined ? null : Number(flags),
  };
}

/** Values for the 14 entry columns, in ENTRY_COLUMNS order (what INSERT binds). */
export function encodeEntryValues(rec: EntryRecord): unknown[] {
  return [
    rec.type,
    rec.mode,
    rec.uid,
    rec.gid,
    rec.size,
    rec.mtimeNs,
    rec.ctimeNs,
    BigInt.asIntN(64, rec.inode),
    rec.nlink,
    rec.target,
    rec.blake3,
    rec.sha256,
    rec.xattrs ?? null,
    rec.flags ?? null,
  ];
}

/** `runs` (SELECT *; plain integers). */
export interface RunRow {
  id: number;
  kind: 'check';
  started_at: string;
  finished_at: string;
  gen: number | null;
  baseline_digest: string | null;
  user: string;
  uid: number;
  hostname: string;
  root: string;
  policy_digest: string;
  scanned: number;
  added: number;
  removed: number;
  changed: number;
  errors: number;
  exit_code: number;
  findings_digest: string;
  evidence: string | null;
}

type Nullable<T> = { [K in keyof T]: T[K] | null };

/** `run_findings`: the entry columns are all NULL for a removed entry. */
export interface RunFindingRow extends Nullable<EntryColumns> {
  path: Buffer;
  kind: FindingKind;
  rule: string;
  severity: Severity;
  /** comma-separated attribute names */
  attributes: string;
}

/** The entry a finding observed: null for a removed entry (the schema writes all entry columns or none). */
export function decodeFindingEntry(r: RunFindingRow): EntryRecord | null {
  const observed = (x: RunFindingRow): x is RunFindingRow & EntryColumns => x.type !== null;
  return observed(r) ? decodeEntryColumns(r.path, r) : null;
}

export function decodeAttributes(s: string): Attribute[] {
  return s ? (s.split(',') as Attribute[]) : [];
}

/** `run_errors` */
export type RunErrorRow = ScanError;

/** `pruned` */
export interface PrunedRow {
  id: number;
  digest: string;
  pruned_at: string | null;
}

/** `accepts` */
export interface AcceptRow {
  run: number;
  run_findings_digest: string;
  forced: number;
  paths: number;
}

/** `accepted_paths` */
export interface AcceptedPathRow {
  kind: string;
  rule: string;
  recheck: string;
}
