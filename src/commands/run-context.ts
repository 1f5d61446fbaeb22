import { EXIT, InterruptedError, UsageError } from '../util/errors.js';
import type { RunContext } from '../util/context.js';

/**
 * Builds the context handed to an app step: logger, abort signal wired to SIGINT and
 * SIGTERM (a second signal exits at once with 130), environment.
 */
export async function makeContext(logFile: string | undefined): Promise<RunContext> {
  const { createLogger } = await import('../util/logger.js');
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) process.exit(EXIT.INTERRUPTED);
    process.stderr.write(`integ: ${sig} received, stopping (nothing half-written is kept)\n`);
    controller.abort(new InterruptedError(`interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const log = createLogger(logFile, process.env);
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
