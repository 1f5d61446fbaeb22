import fs from 'node:fs';
import os from 'node:os';
import { pino, destination, type Logger } from 'pino';

/**
 * Logs are pino JSON lines, to stderr or to --log FILE (created 0600: logs name paths
 * on the host). stdout carries only the report. Level: $INTEG_LOG_LEVEL, default
 * "warn" on stderr (so a terminal is not flooded) and "info" in a log file.
 */
/** Every line names the program and the host, as syslog lines do, so logs from a fleet can be merged. */
const BASE = { name: 'integ', hostname: os.hostname(), pid: process.pid };

export function createLogger(logFile: string | undefined, env: NodeJS.ProcessEnv): Logger {
  const level = env.INTEG_LOG_LEVEL ?? (logFile ? 'info' : 'warn');
  if (logFile) {
    const fd = fs.openSync(logFile, 'a', 0o600);
    return pino({ level, base: BASE }, destination({ fd, sync: true }));
  }
  return pino({ level, base: BASE }, destination({ fd: 2, sync: true }));
}
