import { CantCreateError, IoError, LockedError, TrustError } from '../util/errors.js';

/** Turn a SQLite failure into the contract's error classes. */
export function storeError(e: unknown, file: string): Error {
  const code = (e as { code?: string }).code ?? '';
  const msg = (e as Error).message;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code.startsWith('SQLITE_BUSY'))
    return new LockedError(`${file}: another integ run holds the store; try again later`);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || code.startsWith('SQLITE_CORRUPT'))
    return new TrustError(`${file}: the store is corrupt or not an integ store (${msg}); keep it for analysis and start a new one with --db`);
  if (code === 'SQLITE_FULL') return new IoError(`${file}: no space left on device; the previous baseline is unchanged`);
  if (code === 'SQLITE_IOERR' || code.startsWith('SQLITE_IOERR')) return new IoError(`${file}: I/O error: ${msg}`);
  if (code === 'SQLITE_READONLY' || code.startsWith('SQLITE_READONLY')) return new CantCreateError(`${file}: the store is read-only: ${msg}`);
  if (code === 'SQLITE_CANTOPEN' || code.startsWith('SQLITE_CANTOPEN')) return new CantCreateError(`${file}: cannot open the store: ${msg}`);
  return e as Error;
}
