import fs from 'node:fs';
import os from 'node:os';

/**
 * Scheduling priority of one thread. On Linux, nice is a property of each thread: os.setPriority
 * without a pid is setpriority(PRIO_PROCESS, 0), which changes the calling thread alone, so a
 * worker thread can step back without slowing the rest of the process. baseline's package check
 * uses it: its MD5 workers hash on CPU time the scan leaves idle, and come back to the priority
 * they started with for what is left once the scan is done.
 */

/** This thread's nice value, or null where it cannot be read. */
export function threadNice(): number | null {
  try {
    return os.getPriority();
  } catch {
    return null;
  }
}

/** Set this thread's nice value; false where that is not possible or not permitted. */
export function setThreadNice(n: number): boolean {
  try {
    os.setPriority(n);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether a thread that lowered its priority may raise it again: CAP_SYS_NICE (bit 23 of
 * CapEff). Without it (an unprivileged user, a container that drops it) it could not.
 */
export function canRaisePriority(): boolean {
  if (process.platform !== 'linux') return false;
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m !== null && (BigInt(`0x${m[1]}`) & (1n << 23n)) !== 0n;
  } catch {
    return false;
  }
}
