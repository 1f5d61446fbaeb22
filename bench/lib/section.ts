import type { MachineInfo } from './machine.js';

/** Options shared by every section (parsed once by bench.ts). */
export interface BenchOptions {
  files: number;
  big: number;
  bigMiB: number;
  tree: string | null;
  jobs: number;
  quick: boolean;
  json: boolean;
  repeat: number;
  scaleFiles: number;
  keep: boolean;
  noAide: boolean;
  noB3sum: boolean;
  profile: boolean;
  /** before each timed run, wait for other processes to go quiet */
  waitIdle: boolean;
  /** re-read the tree right before every timed run */
  rewarm: boolean;
  /** fs section: integ variants to run (slugs: blake3, sha256, blake3-no-xattrs-flags, blake3-sha256-ioc-feed); blake3 always */
  variants?: string[];
  /** drop the page cache before every timed run (--cold) */
  cold?: boolean;
  /** snapshot section: extra idle processes to start (--procs N) */
  procs?: number;
  /** snapshot section: a UAC checkout to compare with (--uac DIR) */
  uac?: string | null;
}

export interface BenchContext {
  opts: BenchOptions;
  machine: MachineInfo;
  /** a fresh temp directory for this run (removed at the end unless --keep) */
  work: string;
  /** progress to stderr */
  log(msg: string): void;
}

export type TargetStatus = 'pass' | 'fail' | 'n/a';

export interface TargetResult {
  target: string;
  measured: string;
  status: TargetStatus;
}

/** What a section hands back: text for people, data for --json. */
export interface SectionResult {
  name: string;
  title: string;
  /** rendered tables and paragraphs, printed in order */
  text: string[];
  notes: string[];
  targets: TargetResult[];
  /** machine-readable results */
  data: Record<string, unknown>;
  /** something went wrong that makes the numbers invalid (integ exited non-zero, …) */
  failed: boolean;
}

/**
 * One benchmark section in its own module (fs-bench.ts, scale-bench.ts, later a snapshot
 * bench): bench.ts only parses flags, picks the sections and prints what they return.
 */
export interface Section {
  name: string;
  /** one line for --help */
  summary: string;
  /** runs when no --only is given */
  byDefault(opts: BenchOptions): boolean;
  run(ctx: BenchContext): Promise<SectionResult>;
}
