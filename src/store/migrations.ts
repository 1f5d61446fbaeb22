/**
 * Numbered migrations, applied in order; all pending ones run in one transaction that ends
 * by setting user_version. Never edit a released migration: add the next one.
 */
export const MIGRATIONS: ReadonlyArray<{ version: number; sql: string }> = [
  {
    version: 1,
    sql: `
CREATE TABLE generations (
  id INTEGER PRIMARY KEY,
  created_at TEXT NOT NULL,
  kind TEXT NOT NULL,
  user TEXT NOT NULL,
  uid INTEGER NOT NULL,
  hostname TEXT NOT NULL,
  note TEXT,
  root TEXT NOT NULL,
  policy_source TEXT NOT NULL,
  policy_text TEXT NOT NULL,
  policy_digest TEXT NOT NULL,
  hash_algos TEXT NOT NULL,
  entry_count INTEGER NOT NULL,
  total_bytes INTEGER NOT NULL,
  error_count INTEGER NOT NULL,
  parent_id INTEGER,
  parent_digest TEXT,
  digest TEXT NOT NULL,
  signature TEXT,
  key_id TEXT,
  tool_version TEXT NOT NULL
) STRICT;
CREATE TABLE entries (
  gen INTEGER NOT NULL REFERENCES generations(id) ON DELETE CASCADE,
  path BLOB NOT NULL,
  rule TEXT NOT NULL,
  type TEXT NOT NULL,
  mode INTEGER NOT NULL,
  uid INTEGER NOT NULL,
  gid INTEGER NOT NULL,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  ctime_ns INTEGER NOT NULL,
  inode INTEGER NOT NULL,
  nlink INTEGER NOT NULL,
  target BLOB,
  blake3 TEXT,
  sha256 TEXT,
  error TEXT
) STRICT;
CREATE UNIQUE INDEX entries_gen_path ON entries(gen, path);
CREATE TABLE runs (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  gen INTEGER,
  baseline_digest TEXT,
  user TEXT NOT NULL,
  uid INTEGER NOT NULL,
  hostname TEXT NOT NULL,
  root TEXT NOT NULL,
  policy_digest TEXT NOT NULL,
  scanned INTEGER NOT NULL,
  added INTEGER NOT NULL,
  removed INTEGER NOT NULL,
  changed INTEGER NOT NULL,
  errors INTEGER NOT NULL,
  exit_code INTEGER NOT NULL,
  findings_digest TEXT NOT NULL,
  evidence TEXT
) STRICT;
CREATE TABLE run_findings (
  run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  path BLOB NOT NULL,
  kind TEXT NOT NULL,
  rule TEXT NOT NULL,
  severity TEXT NOT NULL,
  attributes TEXT NOT NULL,
  type TEXT, mode INTEGER, uid INTEGER, gid INTEGER, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER,
  inode INTEGER, nlink INTEGER, target BLOB, blake3 TEXT, sha256 TEXT
) STRICT;
CREATE INDEX run_findings_run ON run_findings(run, path);
CREATE TABLE run_errors (
  run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  path BLOB NOT NULL,
  code TEXT NOT NULL,
  message TEXT NOT NULL
) STRICT;
CREATE INDEX run_errors_run ON run_errors(run);
`,
  },
  {
    // Pruning and accept provenance. `pruned` keeps the id and digest of every generation
    // that `integ prune` or `integ export` removed, so the next generation's parent link can
    // still be checked (the trust gate treats it as the chain's anchor). `accepts` records
    // which check run an accept generation folded in; its rows are the difference between the
    // generation and its parent, which the generation digests themselves already cover.
    version: 2,
    sql: `
CREATE TABLE pruned (
  id INTEGER PRIMARY KEY,
  digest TEXT NOT NULL,
  pruned_at TEXT
) STRICT;
CREATE TABLE accepts (
  gen INTEGER PRIMARY KEY REFERENCES generations(id) ON DELETE CASCADE,
  run INTEGER NOT NULL,
  run_findings_digest TEXT NOT NULL,
  forced INTEGER NOT NULL,
  paths INTEGER NOT NULL
) STRICT;
CREATE TABLE accepted_paths (
  gen INTEGER NOT NULL REFERENCES generations(id) ON DELETE CASCADE,
  path BLOB NOT NULL,
  kind TEXT NOT NULL,
  rule TEXT NOT NULL,
  recheck TEXT NOT NULL
) STRICT;
CREATE INDEX accepted_paths_gen ON accepted_paths(gen, path);
CREATE INDEX runs_gen ON runs(gen);
`,
  },
  {
    // Extended attributes (with capabilities, ACLs, labels) and inode flags, on baseline entries
    // and on the entries a check observed. NULL means "not recorded": rows from before this
    // migration compare as not recorded, never as changed (see core/fsattrs.ts for the encoding).
    version: 3,
    sql: `
ALTER TABLE entries ADD COLUMN xattrs TEXT;
ALTER TABLE entries ADD COLUMN flags INTEGER;
ALTER TABLE run_findings ADD COLUMN xattrs TEXT;
ALTER TABLE run_findings ADD COLUMN flags INTEGER;
`,
  },
  {
    // Recovery and the incident record (issue 10).
    // `contents`: known-good file content, brotli-compressed, deduplicated by the blake3 digest of
    // the raw bytes. `kept`: which path of which generation has its content kept; its rows are part
    // of the generation digest (see generation-digest.ts), and the content itself is verified against
    // both its key and the entry's recorded digest before use. A trigger drops content no generation
    // references any more (prune, export). `notes`: the responder's hash-chained notes. `evidence`:
    // every bundle integ sealed, with its sha256, for the timeline and the report. `restores`: which
    // path a restore generation put back, from which generation, and the bundle holding the suspect copy.
    // Only new tables, created IF NOT EXISTS, so a store whose user_version was set back re-migrates.
    version: 4,
    sql: `
CREATE TABLE IF NOT EXISTS contents (
  digest TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  codec TEXT NOT NULL,
  data BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS kept (
  gen INTEGER NOT NULL REFERENCES generations(id) ON DELETE CASCADE,
  path BLOB NOT NULL,
  digest TEXT NOT NULL,
  PRIMARY KEY (gen, path)
) STRICT;
CREATE INDEX IF NOT EXISTS kept_digest ON kept(digest);
CREATE TRIGGER IF NOT EXISTS kept_gc AFTER DELETE ON kept BEGIN
  DELETE FROM contents WHERE digest = OLD.digest AND NOT EXISTS (SELECT 1 FROM kept WHERE digest = OLD.digest);
END;
CREATE TABLE IF NOT EXISTS notes (
  id INTEGER PRIMARY KEY,
  created_at TEXT NOT NULL,
  user TEXT NOT NULL,
  uid INTEGER NOT NULL,
  hostname TEXT NOT NULL,
  text TEXT NOT NULL,
  prev_digest TEXT,
  digest TEXT NOT NULL,
  signature TEXT,
  key_id TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS evidence (
  id INTEGER PRIMARY KEY,
  sealed_at TEXT NOT NULL,
  kind TEXT NOT NULL,
  path TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  size INTEGER,
  run INTEGER,
  gen INTEGER,
  note TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS restores (
  gen INTEGER NOT NULL REFERENCES generations(id) ON DELETE CASCADE,
  path BLOB NOT NULL,
  from_gen INTEGER NOT NULL,
  bundle TEXT,
  PRIMARY KEY (gen, path)
) STRICT;
`,
  },
  {
    // Issue 9 (ops): the policy texts check runs used, by digest, so `accept` re-reads paths
    // with exactly the policy of the last check. Filled from the generations' own policies.
    version: 5,
    sql: `
CREATE TABLE IF NOT EXISTS policies (
  digest TEXT PRIMARY KEY,
  source TEXT NOT NULL,
  text TEXT NOT NULL
) STRICT;
INSERT OR IGNORE INTO policies (digest, source, text) SELECT policy_digest, policy_source, policy_text FROM generations ORDER BY id;
`,
  },
  {
    // Issue 12 (performance): the MD5 of large files (packaged, or for an md5 feed) by the content
    // digest a generation recorded for them, so that a baseline re-reads only those whose content
    // is new (md5-cache.ts). \`gen\` is the last generation that used a row: pruning it drops the row.
    version: 6,
    sql: `
CREATE TABLE IF NOT EXISTS md5_cache (
  digest TEXT PRIMARY KEY,
  md5 TEXT NOT NULL,
  gen INTEGER NOT NULL REFERENCES generations(id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS md5_cache_gen ON md5_cache(gen);
`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
