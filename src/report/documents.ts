/**
 * The JSON documents integ prints (`--format json`), as types: the renderers return these,
 * so a field renamed or dropped is a compile error, not a silent change of the contract.
 * Field names are the README's; paths that are not UTF-8 add a `…_b64` field (PathJson).
 */
import type { PathJson } from '../core/pathenc.js';
import type { Attribute, EntryType, FindingKind, Severity } from '../core/types.js';
import type { Summary } from '../core/verdict.js';
import type { SnapshotFinding } from '../evidence/findings.js';
import type { DiffSection } from '../evidence/snapshot-diff.js';

export interface ToolJson {
  name: 'integ';
  version: string;
}

/** An entry record (report/records.ts recordJson). */
export type RecordJson = {
  type: EntryType;
  /** octal, e.g. "0644" */
  mode: string;
  uid: number;
  gid: number;
  /** a string when beyond 2^53 */
  size: number | string;
  mtime: string;
  ctime: string;
  inode: number | string;
  nlink: number;
  target: string | null;
  target_b64?: string;
  blake3: string | null;
  sha256: string | null;
} & FsattrsJson;

/** Extended attributes, capabilities, ACL, label and inode flags of a record (null: not recorded). */
export interface FsattrsJson {
  xattrs: Record<string, string> | 'unsupported' | null;
  caps: string | null;
  acl: string[] | null;
  label: string | null;
  flags: string[] | 'unsupported' | null;
}

/** Package provenance of a change (dpkg or rpm). */
export interface PackageJson {
  manager: 'dpkg' | 'rpm';
  name: string;
  version: string;
  digest_matches: boolean | null;
  conffile: boolean;
}

/** A file whose content is on a known-bad hash list. */
export type IocMatchJson = PathJson & { rule: string; algorithm: 'sha256' | 'sha1' | 'md5'; digest: string; label: string | null; source: string };

/** `integ check --format json` */
export interface CheckDocument {
  schema: 'integ.check/1';
  tool: ToolJson;
  host: { hostname: string };
  started_at: string;
  finished_at: string;
  root: string;
  policy: { source: string; hash: string[] };
  baseline: { generation: number; created_at: string; note: string | null; digest: string; signed: boolean };
  summary: Summary;
  changes: (PathJson & {
    kind: FindingKind;
    rule: string;
    severity: Severity;
    attributes: Attribute[];
    risk: string[];
    package: PackageJson | null;
    before: RecordJson | null;
    after: RecordJson | null;
  })[];
  errors: (PathJson & { code: string; message: string })[];
  ioc_matches: IocMatchJson[];
  ioc_feeds: string[];
  evidence: { bundle: string; sha256: string; reused: boolean } | null;
  notices: string[];
  exit_code: number;
}

/** A generation, the same shape in history, accept and export. */
export interface GenerationJson {
  generation: number;
  kind: 'baseline' | 'accept' | 'restore';
  created_at: string;
  user: string;
  uid: number;
  hostname: string;
  note: string | null;
  root: string;
  policy: { source: string; digest: string; hash: string[] };
  entries: number;
  bytes: number;
  unreadable: number;
  parent: { generation: number; digest: string | null } | null;
  digest: string;
  signed: boolean;
  key_id: string | null;
}

/** `integ history --format json` */
export interface HistoryDocument {
  schema: 'integ.history/1';
  tool: ToolJson;
  db: string;
  current: { generation: number; digest: string } | null;
  generations: (GenerationJson & { accept: { run: number; forced: boolean; paths: number } | null })[];
  pruned: { generation: number; digest: string; pruned_at: string | null }[];
  /** the hash chain over the generations' headers; `integ history` exits 16 when it does not verify */
  chain: { verified: boolean; problems: string[] };
}

/** `integ show PATH --format json` */
export type ShowDocument = {
  schema: 'integ.show/1';
  tool: ToolJson;
  db: string;
  generations: {
    generation: number;
    kind: 'baseline' | 'accept' | 'restore';
    created_at: string;
    note: string | null;
    digest: string;
    change: 'first' | 'added' | 'removed' | 'changed' | 'same' | 'absent';
    attributes: Attribute[];
    accepted: { kind: string; recheck: string } | null;
    rule: string | null;
    error: string | null;
    record: RecordJson | null;
  }[];
} & PathJson;

/** `integ accept --format json` */
export interface AcceptDocument {
  schema: 'integ.accept/1';
  tool: ToolJson;
  generation: GenerationJson;
  parent: { generation: number; digest: string };
  run: { id: number; finished_at: string; findings_digest: string };
  accepted: (PathJson & {
    kind: FindingKind;
    rule: string;
    severity: Severity;
    attributes: Attribute[];
    recheck: 'same' | 'forced';
    changed_since: string[];
  })[];
  remaining: number;
  exit_code: number;
}

/** `integ prune --format json` */
export interface PruneDocument {
  schema: 'integ.prune/1';
  tool: ToolJson;
  db: string;
  dry_run: boolean;
  current: { generation: number; digest: string };
  kept: { generation: number; digest: string }[];
  pruned: { generation: number; digest: string }[];
  runs_deleted: number;
  vacuumed: boolean;
  bytes_before: number | null;
  bytes_after: number | null;
}

/** `integ export --format json` */
export interface ExportDocument {
  schema: 'integ.export/1';
  tool: ToolJson;
  source: string;
  out: string;
  generation: GenerationJson;
  omitted: number[];
  journal_mode: string;
  bytes: number;
  sha256: string;
}

/** One side of `integ diff`. */
export interface DiffSideJson {
  db: string;
  generation: number;
  kind: 'baseline' | 'accept' | 'restore';
  created_at: string;
  hostname: string;
  note: string | null;
  entries: number;
  digest: string;
  signed: boolean;
}

/**
 * `integ diff A B --format json` (stores), written as it streams: this head, then
 * `differences`, `summary` and `exit_code` (report/store-diff-report.ts).
 */
export interface StoreDiffDocumentHead {
  schema: 'integ.diff/1';
  tool: ToolJson;
  a: DiffSideJson;
  b: DiffSideJson;
  attributes: Attribute[];
  notices: string[];
}

/** `integ snapshot --format json` */
export interface SnapshotDocument {
  schema: 'integ.snapshot/1';
  bundle: string;
  sha256: string;
  size: number;
  name: string;
  started_at: string;
  finished_at: string;
  artifacts: number;
  timings: { core_bracket_ms: number; steps_1_4_ms: number; total_ms: number };
  steps: { step: string; name: string; status: string; duration_ms: number; error: string | null; errors: number }[];
  /** artifacts/findings.json's findings; null when the findings step did not run */
  findings: SnapshotFinding[] | null;
  findings_notes: string[];
}

/** `integ diff A.tar.gz B.tar.gz --format json` */
export interface SnapshotDiffDocument {
  schema: 'integ.snapshot-diff/1';
  a: string;
  b: string;
  same: boolean;
  sections: DiffSection[];
  skipped: { name: string; reason: string }[];
}

/** `integ keygen --format json` */
export interface KeygenDocument {
  schema: 'integ.keygen/1';
  private_key: string;
  public_key: string;
  key_id: string;
}
