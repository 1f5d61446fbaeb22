import { EXIT, InterruptedError, UsageError } from '../util/errors.js';
import type { RunContext } from '../util/context.js';

/** Signals that stop a run like Ctrl-C: SIGHUP is an SSH disconnect, SIGQUIT is Ctrl-backslash. */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
/** How long a run may take to clean up after a stop signal before it exits anyway. */
export const STOP_GRACE_MS = 5000;

/**
 * Builds the context handed to an app step: logger, abort signal wired to SIGINT, SIGTERM,
 * SIGHUP and SIGQUIT (a second signal, or a run still busy STOP_GRACE_MS after the first,
 * exits at once with 130), environment.
 */
export async function makeContext(logFile: string | undefined): Promise<RunContext> {
  const { createLogger } = await import('../util/logger.js');
  // Opened before our handlers replace the signals' default action: opening a --log FIFO waits
  // for a reader in the main thread, where no JavaScript handler could ever run, so until it is
  // open SIGTERM must still end the process the ordinary way.
  const log = createLogger(logFile, process.env);
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) process.exit(EXIT.INTERRUPTED);
    process.stderr.write(`integ: ${sig} received, stopping (nothing half-written is kept)\n`);
    controller.abort(new InterruptedError(`interrupted by ${sig}`));
    // Whatever does not listen to the signal (a blocking read, a stuck device) must not keep
    // the process alive: SQLite rolls back, and later runs sweep evidence staging left behind.
    setTimeout(() => {
      process.stderr.write(`integ: still stopping ${STOP_GRACE_MS / 1000} s after ${sig}; exiting now\n`);
      process.exit(EXIT.INTERRUPTED);
    }, STOP_GRACE_MS).unref();
  };
  for (const sig of STOP_SIGNALS) process.on(sig, onSignal);
  // With --log FILE the failure that ends the run is logged there too (stderr already shows it once).
  if (logFile) (await import('../output/run-output.js')).setFailureLog(log);
  return {
    log,
    signal: controller.signal,
    env: process.env,
    interactive: Boolean(process.stderr.isTTY),
    argv: process.argv.slice(),
  };
}

/** Validates --format. */
export function parseFormat(v: string | undefined): 'text' | 'json' {
  const f = v ?? 'text';
  if (f !== 'text' && f !== 'json') throw new UsageError(`--format must be "text" or "json", got "${f}"`);
  return f;
}

/** Validates a positive integer flag such as --jobs or --keep. */
export function parseCount(name: string, v: string | undefined, min = 0): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`${name} must be a whole number >= ${min}, got "${v}"`);
  return Number(v);
}
