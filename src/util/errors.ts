/**
 * Exit codes of the user-facing contract. One table, one place: only src/cli.ts
 * turns errors into process exit codes.
 */
export const EXIT = {
  OK: 0,
  ADDED: 1,
  REMOVED: 2,
  CHANGED: 4,
  INCOMPLETE: 8,
  /** diff: the two sides differ (diff's own meaning of 1, not check's "added") */
  DIFFERENT: 1,
  UNTRUSTED: 16,
  /** check/baseline: a file in scope matches a known-bad hash list (added to 1|2|4|8) */
  KNOWN_BAD: 32,
  USAGE: 64,
  DATAERR: 65,
  NOINPUT: 66,
  SOFTWARE: 70,
  CANTCREAT: 73,
  IOERR: 74,
  TEMPFAIL: 75,
  NOPERM: 77,
  INTERRUPTED: 130,
} as const;

/** Base class for every error integ expects; carries its exit code. */
export class IntegError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class UsageError extends IntegError {
  constructor(message: string) {
    super(message, EXIT.USAGE);
  }
}

/** Invalid policy or input data (exit 65). */
export class DataError extends IntegError {
  constructor(message: string) {
    super(message, EXIT.DATAERR);
  }
}

/** No baseline yet, or input not found (exit 66). */
export class NoInputError extends IntegError {
  constructor(message: string) {
    super(message, EXIT.NOINPUT);
  }
}

/** Baseline or bundle not trustworthy (exit 16). */
export class TrustError extends IntegError {
  constructor(message: string) {
    super(message, EXIT.UNTRUSTED);
  }
}

/** Another integ run holds the store (exit 75). */
export class LockedError extends IntegError {
  constructor(message: string) {
    super(message, EXIT.TEMPFAIL);
  }
}

/** Permission denied on the store or another input (exit 77, sysexits EX_NOPERM). */
export class NoPermError extends IntegError {
  constructor(message: string) {
    super(message, EXIT.NOPERM);
  }
}

export class CantCreateError extends IntegError {
  constructor(message: string) {
    super(message, EXIT.CANTCREAT);
  }
}

export class IoError extends IntegError {
  constructor(message: string) {
    super(message, EXIT.IOERR);
  }
}

export class InterruptedError extends IntegError {
  constructor(message = 'interrupted') {
    super(message, EXIT.INTERRUPTED);
  }
}

/** Map an operating-system error raised while writing output to the contract's codes. */
export function writeErrorFor(err: unknown, what: string): IntegError {
  const code = (err as NodeJS.ErrnoException)?.code;
  const msg = (err as Error)?.message ?? String(err);
  if (code === 'ENOSPC' || code === 'EIO' || code === 'EDQUOT' || code === 'EFBIG')
    return new IoError(`${what}: ${code === 'ENOSPC' ? 'no space left on device' : msg}`);
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOENT' || code === 'ENOTDIR' || code === 'EEXIST')
    return new CantCreateError(`${what}: ${msg}`);
  return new IoError(`${what}: ${msg}`);
}
