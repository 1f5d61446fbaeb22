/**
 * Step 5, executables: sha256 and blake3 of every distinct running executable, read
 * through /proc/PID/exe, so a deleted or replaced binary is still hashed as it runs.
 * Artifact: executables.
 */
import crypto from 'node:crypto';
import { createBlake3 } from '../../scan/blake3.js';
import fs from 'node:fs';
import type { ArtifactOutput, CollectContext, CollectError } from '../types.js';
import { errCode, expired, isGone, timeoutError, toError } from './fsread.js';
import { listPids, type ProcessRecord } from './processes.js';

export interface ExecutableEntry {
  pids: number[];
  path: string | null;
  deleted: boolean;
  dev: number | null;
  ino: number | null;
  size: number | null;
  sha256: string | null;
  blake3: string | null;
  /** the /proc/PID/exe the bytes were read through */
  read_via: string | null;
  /** where the copy of a deleted or memfd executable is in the bundle (raw/exe-copies/…), else null */
  copy: string | null;
  /** why a deleted or memfd executable was not copied */
  copy_error?: string;
  error: string | null;
}

export interface ExecutablesOptions {
  /** bytes per executable at most (default 256 MiB) */
  maxBytes?: number;
  /** bytes of one copied deleted/memfd executable at most (default 32 MiB) */
  maxCopyBytes?: number;
  /** bytes of all copies together at most (default 256 MiB) */
  maxCopyTotal?: number;
}

interface ExeRef {
  pid: number;
  /** the /proc entry to read through when it is not pid's (a thread of a process whose /proc/PID is covered) */
  via?: number;
  exe: string | null;
  deleted: boolean | null;
  dev: number | null;
  ino: number | null;
}

/** When the core step did not run: readlink and stat /proc/PID/exe for every listed pid. */
function scanExes(procRoot: string, errors: CollectError[]): ExeRef[] {
  const out: ExeRef[] = [];
  for (const pid of listPids(procRoot)) {
    let link: string;
    try {
      link = fs.readlinkSync(`${procRoot}/${pid}/exe`);
    } catch (err) {
      if (!isGone(err)) errors.push(toError(err, `${procRoot}/${pid}/exe`, 'executables'));
      continue;
    }
    try {
      const st = fs.statSync(`${procRoot}/${pid}/exe`);
      const deleted = st.nlink === 0;
      out.push({ pid, exe: deleted && link.endsWith(' (deleted)') ? link.slice(0, -10) : link, deleted, dev: st.dev, ino: st.ino });
    } catch (err) {
      if (!isGone(err)) errors.push(toError(err, `${procRoot}/${pid}/exe`, 'executables'));
    }
  }
  return out;
}

const CHUNK = 1 << 20;

/** Hash one open executable; returns null digests with an error on a bound or a read failure. */
async function hashThrough(
  file: string,
  want: { dev: number | null; ino: number | null },
  maxBytes: number,
  ctx: CollectContext,
  keep?: Buffer[],
): Promise<{ size: number; sha256: string; blake3: string } | { error: string; code: string; size?: number }> {
  // O_NONBLOCK: an exe is always a regular file, but never risk blocking on anything else.
  const fh = await fs.promises.open(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { error: 'not a regular file', code: 'ENOTREG' };
    if (want.ino !== null && (st.ino !== want.ino || st.dev !== want.dev)) return { error: 'process now runs another file', code: 'ECHANGED' };
    if (st.size > maxBytes) return { error: `larger than the ${maxBytes}-byte bound`, code: 'EFBIG', size: st.size };
    const sha = crypto.createHash('sha256');
    const b3 = createBlake3();
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(st.size, 1)));
    let pos = 0;
    try {
      for (;;) {
        if (expired(ctx)) return { error: 'time bound reached while hashing', code: 'TIMEOUT', size: st.size };
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        const part = buf.subarray(0, bytesRead);
        sha.update(part);
        b3.update(part);
        if (keep) keep.push(Buffer.from(part));
        pos += bytesRead;
        if (pos > maxBytes) return { error: `grew beyond the ${maxBytes}-byte bound`, code: 'EFBIG', size: pos };
      }
      return { size: pos, sha256: sha.digest('hex'), blake3: b3.digest().toString('hex') };
    } finally {
      try {
        b3.dispose();
      } catch {
        // already disposed by digest()
      }
    }
  } finally {
    await fh.close();
  }
}

export async function collectExecutables(ctx: CollectContext, processes: ProcessRecord[] | undefined, opts: ExecutablesOptions = {}): Promise<ArtifactOutput> {
  const errors: CollectError[] = [];
  const maxBytes = opts.maxBytes ?? 256 << 20;
  const maxCopy = opts.maxCopyBytes ?? 32 << 20;
  const maxCopyTotal = opts.maxCopyTotal ?? 256 << 20;
  let copied = 0;
  const raw: ArtifactOutput['raw'] = [];
  const refs: ExeRef[] = processes
    ? processes
        .filter((p) => p.exe_link !== null && !p.identity_mismatch)
        .map((p) => ({
          pid: p.pid,
          ...(p.unmasked_via_tid !== undefined ? { via: p.unmasked_via_tid } : {}),
          exe: p.exe,
          deleted: p.exe_deleted,
          dev: p.exe_dev,
          ino: p.exe_ino,
        }))
    : scanExes(ctx.procRoot, errors);

  // Distinct files by (dev, inode); when stat failed, by path (best effort).
  const groups = new Map<string, { refs: ExeRef[] }>();
  for (const r of refs) {
    const k = r.ino !== null ? `${r.dev}:${r.ino}` : `path:${r.exe}`;
    const g = groups.get(k);
    if (g) g.refs.push(r);
    else groups.set(k, { refs: [r] });
  }

  const out: ExecutableEntry[] = [];
  let stopped = false;
  for (const g of groups.values()) {
    const head = g.refs[0]!;
    const entry: ExecutableEntry = {
      pids: g.refs.map((r) => r.pid).sort((a, b) => a - b),
      path: head.exe,
      deleted: g.refs.some((r) => r.deleted === true),
      dev: head.dev,
      ino: head.ino,
      size: null,
      sha256: null,
      blake3: null,
      read_via: null,
      copy: null,
      error: null,
    };
    out.push(entry);
    // A deleted or fileless executable exists nowhere else once the process ends: keep a copy.
    const wantCopy = entry.deleted || (entry.path ?? '').startsWith('/memfd:');
    if (stopped || expired(ctx)) {
      stopped = true;
      entry.error = 'TIMEOUT: not hashed, time bound reached';
      continue;
    }
    // Any pid of the group will do; the first may have exited meanwhile.
    let lastErr: { code: string; message: string; path: string } | null = null;
    for (const r of g.refs) {
      const via = `${ctx.procRoot}/${r.via ?? r.pid}/exe`;
      try {
        let keep: Buffer[] | undefined;
        if (wantCopy) {
          const size = head.ino !== null ? (processes?.find((p) => p.pid === r.pid)?.exe_size ?? null) : null;
          if (size !== null && size > maxCopy) entry.copy_error = `larger than the ${maxCopy}-byte copy bound`;
          else if (size !== null && copied + size > maxCopyTotal) entry.copy_error = `the ${maxCopyTotal}-byte bound of all copies is reached`;
          else keep = [];
        }
        const h = await hashThrough(via, { dev: r.dev, ino: r.ino }, maxBytes, ctx, keep);
        if ('error' in h) {
          if (h.size !== undefined) entry.size = h.size;
          lastErr = { code: h.code, message: h.error, path: via };
          if (h.code === 'ECHANGED') continue;
          break;
        }
        Object.assign(entry, { size: h.size, sha256: h.sha256, blake3: h.blake3, read_via: via });
        if (keep) {
          if (h.size > maxCopy || copied + h.size > maxCopyTotal) entry.copy_error = 'grew beyond the copy bound while read';
          else {
            const name =
              (entry.path ?? 'exe')
                .split('/')
                .pop()!
                .replace(/ \(deleted\)$/, '')
                .replace(/[^A-Za-z0-9._-]/g, '_')
                .slice(0, 60) || 'exe';
            const file = `exe-copies/${r.pid}-${name}`;
            raw.push({ file, data: Buffer.concat(keep) });
            copied += h.size;
            entry.copy = `raw/${file}`;
          }
        }
        lastErr = null;
        break;
      } catch (err) {
        lastErr = { code: errCode(err), message: toError(err, via).message, path: via };
        if (!isGone(err)) break;
      }
    }
    if (lastErr) {
      entry.error = `${lastErr.code}: ${lastErr.message}`;
      if (lastErr.code === 'TIMEOUT') stopped = true;
      errors.push({ path: lastErr.path, code: lastErr.code, message: `${entry.path ?? '?'}: ${lastErr.message}`, artifact: 'executables' });
    }
  }
  // Kernel threads have no executable; for the rest a missing link means it was unreadable
  // (another user's process without root) or a zombie: say how many were not covered.
  const withoutExe = processes ? processes.filter((p) => p.exe_link === null && !p.kernel_thread).map((p) => p.pid) : null;
  if (stopped) errors.push(timeoutError(`hashed ${out.filter((e) => e.sha256).length} of ${out.length} executables`, 'executables'));
  out.sort((a, b) => (a.path ?? '').localeCompare(b.path ?? '') || (a.pids[0] ?? 0) - (b.pids[0] ?? 0));
  return {
    json: [
      {
        name: 'executables',
        data: {
          count: out.length,
          max_bytes: maxBytes,
          copy_bounds: { max_bytes_each: maxCopy, max_bytes_total: maxCopyTotal, copied_bytes: copied },
          executables: out,
          // null when the core step did not run (then unreadable links are in errors)
          pids_without_exe: withoutExe,
          notes: withoutExe?.length ? ['pids_without_exe: /proc/PID/exe unreadable (not root) or the process is a zombie'] : [],
        },
        method:
          'open /proc/[pid]/exe (deleted files included), fstat (dev, inode) to deduplicate, sha256 (node:crypto) and blake3 of the bytes, bounded per file and by the step deadline; copies of deleted and memfd executables under raw/exe-copies/ (32 MiB each, 256 MiB in all)',
      },
    ],
    raw,
    errors,
  };
}
