/**
 * Step 7, findings: derive the findings from everything collected so far, then read the
 * memory maps of each process a finding names. Artifacts: findings, maps.
 */
import type { ArtifactOutput, CollectContext, CollectError } from '../types.js';
import { deriveFindings, type IocMatcher } from '../findings.js';
import { expired, isGone, readBounded, timeoutError, toError } from './fsread.js';

export interface MapsOptions {
  /** processes whose maps are read at most (default 64) */
  maxProcesses?: number;
  /** bytes of one maps file kept (default 1 MiB) */
  maxBytes?: number;
}

export interface MapsEntry {
  pid: number;
  file: string | null;
  lines: number;
  truncated: boolean;
  /** mapped files that are deleted or memfd, and anonymous executable regions */
  suspicious: string[];
  error: string | null;
}

/** Lines of a maps file worth a look: executable mappings of deleted files, memfds and anonymous memory. */
export function suspiciousMaps(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(/\s+/);
    if (f.length < 5) continue;
    const perms = f[1] ?? '';
    const pathname = f.slice(5).join(' ');
    const exec = perms.includes('x');
    if (pathname.startsWith('/memfd:') || pathname.endsWith(' (deleted)') || (exec && pathname === '') || (exec && pathname.startsWith('['))) {
      if (pathname === '[vdso]' || pathname === '[vsyscall]' || pathname === '[uprobes]') continue;
      out.push(line);
    }
  }
  return out.slice(0, 200);
}

export async function collectFindings(
  ctx: CollectContext,
  artifacts: ReadonlyMap<string, unknown>,
  iocMatch: IocMatcher | undefined,
  opts: MapsOptions = {},
): Promise<ArtifactOutput> {
  const errors: CollectError[] = [];
  const raw: ArtifactOutput['raw'] = [];
  const { findings, notes } = deriveFindings(artifacts, { iocMatch });
  const maxProcs = opts.maxProcesses ?? 64;
  const maxBytes = opts.maxBytes ?? 1 << 20;
  const pids = [...new Set(findings.map((f) => f.pid).filter((p): p is number => p !== undefined))];
  const maps: MapsEntry[] = [];
  // a process whose /proc/PID is covered by a mount is read through one of its threads
  const viaTid = new Map<number, number>();
  const procs = artifacts.get('processes') as { processes?: Array<{ pid: number; unmasked_via_tid?: number }> } | undefined;
  for (const p of procs?.processes ?? []) if (typeof p.unmasked_via_tid === 'number') viaTid.set(p.pid, p.unmasked_via_tid);
  for (const pid of pids.slice(0, maxProcs)) {
    if (expired(ctx)) {
      errors.push(timeoutError(`maps read for ${maps.length} of ${pids.length} processes`, 'maps'));
      break;
    }
    const file = `${ctx.procRoot}/${viaTid.get(pid) ?? pid}/maps`;
    try {
      const r = readBounded(file, maxBytes);
      const text = r.data.toString('latin1');
      raw.push({ file: `proc/${pid}/maps`, data: r.data });
      maps.push({
        pid,
        file: `raw/proc/${pid}/maps`,
        lines: text.split('\n').filter(Boolean).length,
        truncated: r.truncated,
        suspicious: suspiciousMaps(text),
        error: null,
      });
    } catch (err) {
      const e = toError(err, file, 'maps');
      if (!isGone(err)) errors.push(e);
      maps.push({ pid, file: null, lines: 0, truncated: false, suspicious: [], error: `${e.code}: ${e.message}` });
    }
  }
  if (pids.length > maxProcs) errors.push({ code: 'ELIMIT', message: `maps of ${maxProcs} of ${pids.length} processes with a finding`, artifact: 'maps' });
  return {
    json: [
      {
        name: 'findings',
        data: { count: findings.length, ioc_checked: iocMatch !== undefined, findings, notes },
        method: 'derived from the artifacts above (processes, core_churn, listening, modules, ld_so_preload, executables)',
      },
      {
        name: 'maps',
        data: { bounds: { max_processes: maxProcs, max_bytes: maxBytes }, maps },
        method: 'read /proc/[pid]/maps of each process a finding names (bounded); raw copies under raw/proc/[pid]/maps',
      },
    ],
    raw,
    errors,
  };
}
