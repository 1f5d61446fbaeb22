import { UsageError } from './errors.js';

/** The one Linux check: snapshot reads /proc and /sys and is supported on Linux only. */
export function linuxOnlyProblem(platform: NodeJS.Platform = process.platform): string | null {
  return platform === 'linux' ? null : `integ snapshot is supported on Linux only (this system is ${platform})`;
}

/** Throws the usage error (64) that says so, off Linux. */
export function assertLinux(platform: NodeJS.Platform = process.platform): void {
  const problem = linuxOnlyProblem(platform);
  if (problem) throw new UsageError(problem);
}
