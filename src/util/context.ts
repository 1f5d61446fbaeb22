import type { Logger } from 'pino';

/**
 * What every app step receives from the CLI edge: a logger (JSON lines on stderr or
 * --log FILE), the one AbortSignal wired to SIGINT/SIGTERM, the environment, and
 * whether a progress display may be drawn (stderr is a TTY).
 */
export interface RunContext {
  log: Logger;
  signal: AbortSignal;
  env: NodeJS.ProcessEnv;
  /** true when stderr is a TTY: progress bars may be drawn there. */
  interactive: boolean;
  /** process.argv as given, for manifests and run records. */
  argv: string[];
}
