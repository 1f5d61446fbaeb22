/**
 * Sweep what dead runs left in the evidence folder: staging folders
 * `.<base>.staging-<pid>-<random>` whose pid no longer runs, and `<base>[-N].tar.gz.partial`
 * files that no live run's staging folder covers (a run creates its staging folder before it
 * reserves its .partial, and publishes the .partial before removing the staging folder, so a
 * live run's .partial always has a staging folder with a live pid next to it).
 *
 * Conservative on purpose: only entries owned by the running user, never through a symlink
 * (lstat, O_NOFOLLOW), and a staging folder whose pid cannot be read (older integ) or is alive
 * (even if reused by another program) keeps its base's files. A run in another pid namespace
 * sharing the folder is not visible to us: do not share one evidence folder between containers.
 */
import fs from 'node:fs/promises';
import { at, euid, lstatOrNull, O_DIR_NOFOLLOW, removeTreeAt, sameFile } from './fsat.js';

const STAGING = /^\.(integ-.+-\d{8}T\d{6}Z)\.staging-(?:(\d+)-)?[A-Za-z0-9]{6}$/;
const PARTIAL = /^(integ-.+-\d{8}T\d{6}Z)(?:-\d+)?\.tar\.gz\.partial$/;

/** Name of a new staging folder's prefix (mkdtemp adds six random characters). */
export function stagingPrefix(base: string): string {
  return `.${base}.staging-${process.pid}-`;
}

export function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Remove stale staging folders and .partial files of dead runs; returns the names removed. */
export async function sweepStale(outFd: number): Promise<string[]> {
  const names = await fs.readdir(at(outFd));
  const me = euid();
  const live = new Set<string>();
  const deadStaging: Array<{ name: string; base: string }> = [];
  for (const name of names) {
    const m = STAGING.exec(name);
    if (!m?.[1]) continue;
    const pid = m[2] === undefined ? NaN : Number(m[2]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pidAlive(pid)) live.add(m[1]);
    else deadStaging.push({ name, base: m[1] });
  }
  const removed: string[] = [];
  for (const { name } of deadStaging) {
    const st = await lstatOrNull(at(outFd, name)).catch(() => undefined);
    if (!st?.isDirectory() || st.uid !== me) continue;
    let h: fs.FileHandle;
    try {
      h = await fs.open(at(outFd, name), O_DIR_NOFOLLOW);
    } catch {
      continue;
    }
    try {
      const fst = await h.stat();
      if (!sameFile(fst, st) || fst.uid !== me) continue;
      if (await removeTreeAt(outFd, h, fst, name)) removed.push(name);
    } finally {
      await h.close();
    }
  }
  for (const name of names) {
    const m = PARTIAL.exec(name);
    if (!m?.[1] || live.has(m[1])) continue;
    const st = await lstatOrNull(at(outFd, name)).catch(() => undefined);
    if (!st?.isFile() || st.uid !== me) continue;
    try {
      await fs.unlink(at(outFd, name));
      removed.push(name);
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
  return removed;
}
