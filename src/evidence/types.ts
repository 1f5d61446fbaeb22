/**
 * Shared shapes of the evidence side. Collectors produce ArtifactOutput; the snapshot
 * orchestrator times them and hands files to a BundleSink; the bundle writer seals.
 */

/** One problem met while collecting (a permission error, a vanished pid, a time-out). */
export interface CollectError {
  path?: string;
  code: string;
  message: string;
  /** the artifact this error concerns; absent = the whole step (added by the collectors). */
  artifact?: string;
}

/** Where collectors read from. Tests point these at fixtures/ trees. */
export interface CollectContext {
  /** '/proc' on a live host. */
  procRoot: string;
  /** '/sys' on a live host. */
  sysRoot: string;
  /** '/' on a live host: prefix for /etc, /var/run/utmp, /run/systemd … */
  fsRoot: string;
  /** aborted on Ctrl-C or when the step's time bound is reached. */
  signal: AbortSignal;
  /** wall-clock ms at which the current step must stop collecting. */
  deadline: number;
}

/** What one collector step produces: normalised JSON artifacts plus raw copies of what they were parsed from. */
export interface ArtifactOutput {
  /** name → JSON-serialisable data; stored as artifacts/<name>.json */
  json: Array<{ name: string; data: unknown /** how this artifact was collected (manifest "method"); defaults to the step's. */; method?: string }>;
  /** raw copies of kernel/system files, stored as raw/<file> (file may contain '/'). */
  raw: Array<{ file: string; data: Buffer }>;
  errors: CollectError[];
}

/** One artifact as listed in manifest.json, in collection order. */
export interface ManifestArtifact {
  name: string;
  /** path inside the bundle's top folder, e.g. "artifacts/processes.json" */
  file: string;
  /** how it was collected, e.g. "read /proc/[pid]/stat,status,cmdline; readlink exe,cwd,fd/*" */
  method: string;
  started_at: string;
  finished_at: string;
  /** "ok" | "partial" | "failed" | "timeout" */
  status: 'ok' | 'partial' | 'failed' | 'timeout';
  error: string | null;
  size: number;
  sha256: string;
}

/** Receives files for the bundle; implemented by the bundle writer. */
export interface BundleSink {
  /** Write a file into the bundle (0600), returning its size and sha256. relPath is inside the top folder. */
  addFile(relPath: string, data: Buffer | string): Promise<{ file: string; size: number; sha256: string }>;
  /** Append one JSON line to log.jsonl (the writer adds ts, seq and prev hash). */
  log(entry: Record<string, unknown>): void;
}
