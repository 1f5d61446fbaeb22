/**
 * Findings: what integ derives from the artifacts it collected, for the responder to read
 * first (artifacts/findings.json and the triage summary at the end of `snapshot`'s text).
 * Pure: artifact name → parsed JSON in, findings out; no I/O, so it runs the same on a
 * live collection and on a bundle read back.
 */

export type FindingSeverity = 'low' | 'medium' | 'high' | 'critical';

export type FindingKind =
  | 'hidden_process'
  | 'masquerade'
  | 'deleted_executable'
  | 'memfd_executable'
  | 'executable_in_tmp'
  | 'preload'
  | 'unowned_listener'
  | 'module_mismatch'
  | 'ioc_match';

export interface SnapshotFinding {
  kind: FindingKind;
  severity: FindingSeverity;
  pid?: number;
  path?: string;
  /** the executable, when the finding concerns a process and it is known */
  exe?: string | null;
  detail: string;
}

/**
 * Looks a running executable's digest up in known-bad lists (the IOC feeds of `--ioc`);
 * returns what matched or undefined.
 */
export type IocMatcher = (digests: { sha256: string }) => { label: string; source: string } | undefined;

export interface FindingsResult {
  findings: SnapshotFinding[];
  /** coverage the responder must know about (an incomplete hidden-pid probe, no root …) */
  notes: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

const TMP_DIRS = ['/tmp/', '/dev/shm/', '/var/tmp/'];
const SEVERITY_ORDER: Record<FindingSeverity, number> = { critical: 0, high: 1, medium: 2, low: 3 };
/** Within one severity: what a responder should look at first. */
const KIND_ORDER: FindingKind[] = [
  'hidden_process',
  'masquerade',
  'ioc_match',
  'memfd_executable',
  'module_mismatch',
  'preload',
  'deleted_executable',
  'executable_in_tmp',
  'unowned_listener',
];

/** Derive the findings from one snapshot's artifacts. */
export function deriveFindings(artifacts: ReadonlyMap<string, unknown>, opts: { iocMatch?: IocMatcher } = {}): FindingsResult {
  const findings: SnapshotFinding[] = [];
  const notes: string[] = [];
  const system = artifacts.get('system');
  const integPid = isObj(system) && isObj(system['integ']) ? num(system['integ']['pid']) : null;
  const euid = isObj(system) && isObj(system['integ']) ? num(system['integ']['euid']) : null;
  const procs = arr(isObj(artifacts.get('processes')) ? (artifacts.get('processes') as Obj)['processes'] : null).filter(isObj);
  const byPid = new Map<number, Obj>();
  for (const p of procs) {
    const pid = num(p['pid']);
    if (pid !== null && !byPid.has(pid)) byPid.set(pid, p);
  }
  const churn = artifacts.get('core_churn');
  // processes read through one of their threads because /proc/PID itself is covered
  const unmasked = new Map<number, Obj>();
  for (const p of procs) if (typeof p['unmasked_via_tid'] === 'number' && num(p['pid']) !== null) unmasked.set(num(p['pid'])!, p);
  const unmaskedNote = (pid: number): string => {
    const u = unmasked.get(pid);
    if (!u) return '';
    const cmd = arr(u['cmdline']).map(String).join(' ');
    return `; read through its thread /proc/${String(u['unmasked_via_tid'])}: ${String(u['name'] ?? '?')} ${str(u['exe']) ?? '?'}${cmd ? ` [${cmd}]` : ''}`;
  };

  // ---- hidden processes
  const hiddenPids = new Set<number>();
  const hide = (pid: number, detail: string, exe: string | null): void => {
    if (hiddenPids.has(pid)) {
      const f = findings.find((x) => x.kind === 'hidden_process' && x.pid === pid);
      if (f && !f.detail.includes(detail)) f.detail += `; ${detail}`;
      return;
    }
    hiddenPids.add(pid);
    findings.push({ kind: 'hidden_process', severity: 'critical', pid, exe, detail });
  };
  if (isObj(churn)) {
    const probe = churn['hidden_pids'];
    if (isObj(probe)) {
      for (const h of arr(probe['hidden']).filter(isObj)) {
        const pid = num(h['pid']);
        if (pid === null) continue;
        const via = num(h['found_via_tid']);
        const cmd = arr(h['cmdline']).map(String).join(' ');
        hide(
          pid,
          `answers stat(/proc/${pid}) but is missing from the /proc listing${via !== null ? ` (found through its thread ${via})` : ''}${h['name'] ? `: ${String(h['name'])}` : ''}${cmd ? ` [${cmd}]` : ''}`,
          str(h['exe']),
        );
      }
      if (probe['complete'] === false)
        notes.push(
          `hidden-pid probe incomplete: stat()ed pids 1..${String(probe['probed_up_to'])} of ${String(probe['limit'])} (${String(probe['limit_reason'] ?? '')}); the children walk covers processes whose parent is visible`,
        );
    } else notes.push('hidden-pid probe did not run (time bound): hidden processes may be missed');
    const cw = churn['children_walk'];
    if (isObj(cw) && cw['supported'] === false) notes.push('children files (/proc/PID/task/TID/children) unavailable: hidden pids found by range probe only');
    for (const m of arr(churn['proc_mounts']).filter(isObj)) {
      const pid = num(m['pid']);
      if (pid === null) continue;
      const mp = str(m['mount_point']) ?? `/proc/${pid}`;
      hide(
        pid,
        `${mp} is a mount point (${str(m['fs_type']) ?? '?'} ${str(m['source']) ?? '?'} root ${str(m['root']) ?? '?'}): what /proc shows for this pid is not the process${isObj(m['parent']) ? `; child of pid ${String(m['parent']['pid'])} (${String(m['parent']['name'] ?? '?')} ${String(m['parent']['exe'] ?? '?')})` : ''}${unmaskedNote(pid)}`,
        str(unmasked.get(pid)?.['exe']),
      );
    }
    for (const d of arr(churn['proc_dev_mismatch']).filter(isObj)) {
      const pid = num(d['pid']);
      if (pid !== null) hide(pid, `/proc/${pid} is on device ${String(d['dev'])}, not /proc's ${String(d['proc_dev'])} (something is mounted over it)`, null);
    }
  }

  // ---- per process
  const preloadSeen = new Set<string>();
  for (const p of procs) {
    const pid = num(p['pid']);
    if (pid === null || pid === integPid) continue;
    const exe = str(p['exe']);
    const link = str(p['exe_link']);
    const im = p['identity_mismatch'];
    if (isObj(im)) {
      const other = [num(im['stat_pid']), num(im['status_pid']), num(im['tgid'])].filter((x): x is number => x !== null && x !== pid);
      const uniq = [...new Set(other)];
      findings.push({
        kind: 'masquerade',
        severity: 'critical',
        pid,
        exe,
        detail: `/proc/${pid} reports pid ${uniq.join('/')} (stat pid ${String(im['stat_pid'])}, status Pid ${String(im['status_pid'])}, Tgid ${String(im['tgid'])}): its entry shows another process`,
      });
      hide(pid, `/proc/${pid} reports another process (pid ${uniq.join('/')}): the real process ${pid} is not visible`, null);
    }
    if (p['hidden_from_listing'] === true && !hiddenPids.has(pid)) hide(pid, 'missing from the /proc listing', exe);
    if (typeof p['unmasked_via_tid'] === 'number') {
      const f = findings.find((x) => x.kind === 'hidden_process' && x.pid === pid);
      if (f && !f.exe) f.exe = exe;
    }
    if (link !== null && link.startsWith('/memfd:')) {
      findings.push({
        kind: 'memfd_executable',
        severity: 'critical',
        pid,
        exe: link,
        path: link,
        detail: `runs from an anonymous memory file (${link}): fileless execution`,
      });
    } else if (p['exe_deleted'] === true) {
      findings.push({
        kind: 'deleted_executable',
        severity: 'high',
        pid,
        exe,
        path: exe ?? undefined,
        detail: `its executable ${exe ?? '?'} was deleted while it runs (an upgrade leaves this too: compare the copy's sha256 with the package)`,
      });
    }
    if (exe !== null && TMP_DIRS.some((d) => exe.startsWith(d)))
      findings.push({ kind: 'executable_in_tmp', severity: 'high', pid, exe, path: exe, detail: `runs from a world-writable temporary directory: ${exe}` });
    for (const e of arr(p['environ'])) {
      const v = str(e);
      if (v === null || !v.startsWith('LD_PRELOAD=')) continue;
      const lib = v.slice('LD_PRELOAD='.length);
      if (lib === '') continue;
      const key = `${pid}|${lib}`;
      if (preloadSeen.has(key)) continue;
      preloadSeen.add(key);
      findings.push({ kind: 'preload', severity: 'high', pid, exe, path: lib, detail: `LD_PRELOAD=${lib} in its environment` });
    }
  }

  // ---- /etc/ld.so.preload
  const pre = artifacts.get('ld_so_preload');
  if (isObj(pre) && pre['present'] === true) {
    const entries = arr(pre['entries']).map(String);
    findings.push({
      kind: 'preload',
      severity: entries.length ? 'critical' : 'medium',
      path: str(pre['path']) ?? '/etc/ld.so.preload',
      detail: entries.length ? `/etc/ld.so.preload loads into every dynamically linked program: ${entries.join(', ')}` : '/etc/ld.so.preload exists (empty)',
    });
  }

  // ---- unowned listeners
  const listening = artifacts.get('listening');
  for (const l of arr(isObj(listening) ? listening['listening'] : null).filter(isObj)) {
    if (arr(l['owners']).length > 0 || num(l['inode']) === 0) continue;
    const addr = str(l['addr']) ?? '?';
    const ep = addr.includes(':') ? `[${addr}]:${String(l['port'])}` : `${addr}:${String(l['port'])}`;
    findings.push({
      kind: 'unowned_listener',
      severity: euid === 0 ? 'high' : 'low',
      path: `${String(l['proto'])} ${ep}`,
      detail: `${String(l['proto'])} ${ep} (netns ${String(l['netns'])}, inode ${String(l['inode'])}, uid ${String(l['uid'])}) has no owning process${euid === 0 ? ': held by the kernel, passed over a unix socket, or by a hidden process' : ' visible to a non-root integ'}${hiddenPids.size ? ` (hidden here: pid ${[...hiddenPids].sort((x, y) => x - y).join(', ')})` : ''}`,
    });
  }

  // ---- kernel modules
  const mods = artifacts.get('modules');
  if (isObj(mods)) {
    for (const n of arr(mods['only_in_proc_modules']).map(String))
      findings.push({
        kind: 'module_mismatch',
        severity: 'high',
        path: n,
        detail: `module ${n} is in /proc/modules but has no /sys/module/${n} (kobject removed)`,
      });
    for (const n of arr(mods['only_in_sys_module']).map(String))
      findings.push({
        kind: 'module_mismatch',
        severity: 'critical',
        path: n,
        detail: `module ${n} is in /sys/module but missing from /proc/modules (unlinked from the module list: a rootkit hiding itself)`,
      });
  }

  // ---- known-bad executables
  if (opts.iocMatch) {
    const exes = artifacts.get('executables');
    for (const e of arr(isObj(exes) ? exes['executables'] : null).filter(isObj)) {
      const sha = str(e['sha256']);
      if (!sha) continue;
      const m = opts.iocMatch({ sha256: sha });
      if (!m) continue;
      const pids = arr(e['pids']).filter((x): x is number => typeof x === 'number');
      for (const pid of pids.length ? pids : [undefined])
        findings.push({
          kind: 'ioc_match',
          severity: 'critical',
          ...(pid !== undefined ? { pid } : {}),
          exe: str(e['path']),
          path: str(e['path']) ?? undefined,
          detail: `sha256 ${sha} is known bad: ${m.label} (${m.source})`,
        });
    }
  }

  if (euid !== null && euid !== 0) notes.push("not run as root: other users' processes are partly unreadable, so owners and executables may be missing");
  findings.sort(
    (a, b) =>
      SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
      KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) ||
      (a.pid ?? 0) - (b.pid ?? 0) ||
      (a.path ?? '').localeCompare(b.path ?? ''),
  );
  return { findings, notes };
}
