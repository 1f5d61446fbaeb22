/** Attributes a rule can check; the JSON report names differences from this list. */
export const ATTRIBUTES = [
  'content',
  'type',
  'mode',
  'uid',
  'gid',
  'size',
  'mtime',
  'ctime',
  'inode',
  'nlink',
  'target',
  'xattrs',
  'caps',
  'acl',
  'label',
  'flags',
  'entries',
] as const;
export type Attribute = (typeof ATTRIBUTES)[number];
/** `growing` is a check mode, not an attribute: a log may grow but not shrink or be rewritten. */
export type CheckItem = Attribute | 'growing';

export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const HASH_ALGOS = ['blake3', 'sha256'] as const;
export type HashAlgo = (typeof HASH_ALGOS)[number];

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev' | 'unknown';

/**
 * One filesystem entry as recorded in a baseline or observed by a check.
 * Paths are bytes (Linux file names are bytes), as the policy names them (no --root prefix).
 * 64-bit quantities are bigint so nanosecond times and large inodes stay exact.
 */
export interface EntryRecord {
  path: Buffer;
  type: EntryType;
  /** st_mode & 0o7777 */
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  inode: bigint;
  nlink: number;
  /** symlink target bytes, else null */
  target: Buffer | null;
  blake3: string | null;
  sha256: string | null;
  /** extended attributes in the stored encoding of core/fsattrs.ts; null/undefined: not recorded */
  xattrs?: string | null;
  /** FS_IOC_GETFLAGS value, -1 unsupported; null/undefined: not recorded or not applicable */
  flags?: number | null;
}

/** What a check observed for one path, plus the digest of the baseline-length prefix for `growing` rules. */
export interface Observed extends EntryRecord {
  prefixBlake3?: string | null;
  prefixSha256?: string | null;
  /** digests computed in the same read for known-bad hash lists and package digests; never stored */
  extra?: Partial<Record<ExtraAlgo, string>>;
}

/**
 * Digests a scan can compute besides the stored ones, as node:crypto names them: the known-bad
 * lists' (sha256, sha1, md5) and the package databases' (rpm also records SHA-224/384/512).
 */
export type ExtraAlgo = 'sha256' | 'sha1' | 'md5' | 'sha224' | 'sha384' | 'sha512';

export interface Rule {
  name: string;
  severity: Severity;
  paths: string[];
  exclude: string[];
  check: CheckItem[];
  /** store the content of this rule's regular files in the store (known-good copies for diff and restore) */
  keepContent?: boolean;
  /** files larger than this are not kept (bytes) */
  keepContentMaxBytes?: number;
  /** paths of this rule whose content is never kept (secrets) */
  keepContentExclude?: string[];
}

export interface OnAlert {
  snapshot: boolean;
  /** seconds within which an identical set of findings reuses the earlier bundle */
  cooldownSeconds: number;
  copyMaxFileBytes: number;
  copyMaxTotalBytes: number;
}

export interface Retention {
  maxBundles: number;
  maxBytes: number;
}

export interface Policy {
  version: 1;
  hash: HashAlgo[];
  /** global excludes: out of scope for every rule */
  exclude: string[];
  rules: Rule[];
  onAlert: OnAlert;
  retention: Retention;
  trust: { publicKey: string | null };
  /** known-bad hash lists to match every file against (absolute, resolved against the policy's folder) */
  ioc: string[];
  /** where the policy came from (file path or "embedded default") */
  source: string;
  /** the policy text exactly as read, stored with each generation */
  text: string;
}

export type FindingKind = 'added' | 'removed' | 'changed';

export interface Finding {
  path: Buffer;
  kind: FindingKind;
  rule: string;
  severity: Severity;
  attributes: Attribute[];
  before: EntryRecord | null;
  after: EntryRecord | null;
  /** risk tags (core/risk.ts); findings with any sort first */
  risk?: string[];
  /** which package owns the path and whether its content is what the package shipped */
  package?: PackageOwner | null;
}

/** Package provenance of a path (dpkg or rpm): digestMatches null when it cannot be told. */
export interface PackageOwner {
  manager: 'dpkg' | 'rpm';
  name: string;
  version: string;
  digestMatches: boolean | null;
  conffile: boolean;
}

/** A file in scope whose content is on a known-bad hash list. */
export interface IocMatch {
  path: Buffer;
  rule: string;
  algorithm: 'sha256' | 'sha1' | 'md5';
  digest: string;
  label: string | null;
  source: string;
}

/** An in-scope entry that could not be read completely: a finding of its own (exit bit 8). */
export interface ScanError {
  path: Buffer;
  code: string;
  message: string;
}
