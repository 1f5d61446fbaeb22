import { execFileSync } from 'node:child_process';
import path from 'node:path';

/**
 * Drop `file`'s pages from the page cache (fsync, then POSIX_FADV_DONTNEED), and say whether they
 * are gone, as fincore (util-linux) counts them: null where fincore is missing.
 */
export function evict(file: string): boolean | null {
  execFileSync('python3', ['-c', 'import os,sys\nfd=os.open(sys.argv[1],os.O_RDONLY)\nos.fsync(fd)\nos.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)', file]);
  try {
    return execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' }).trim() === '0';
  } catch {
    return null;
  }
}

/** Whether this kernel and file system take RWF_NOWAIT on `file`, asked through Python (independent of integ). */
export function kernelNoWait(file: string): boolean {
  const py = 'import os,sys\nfd=os.open(sys.argv[1],os.O_RDONLY)\ntry:\n  os.preadv(fd,[bytearray(16)],0,os.RWF_NOWAIT)\nexcept BlockingIOError:\n  pass';
  try {
    execFileSync('python3', ['-c', py, file], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why evict() could not be used on `file` (for the skip line). */
export const whyNotEvicted = (gone: boolean | null, file: string): string =>
  gone === null ? 'fincore (util-linux-extra) is not installed' : `the file system of ${path.dirname(file)} keeps the pages (tmpfs?)`;
