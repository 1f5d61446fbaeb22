import { IntegError, InterruptedError } from './errors.js';

/**
 * The one way to turn an aborted signal into an error: the signal's reason when it is one
 * of ours (e.g. "interrupted by SIGTERM"), else InterruptedError. Always exit 130, never a
 * plain Error('aborted') that would be reported as an internal error (70).
 */
export function abortError(signal: AbortSignal | undefined): IntegError {
  const reason: unknown = signal?.reason;
  return reason instanceof IntegError ? reason : new InterruptedError();
}

/** Throw abortError(signal) when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}
