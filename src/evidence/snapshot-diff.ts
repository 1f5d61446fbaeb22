/**
 * Compare two snapshots (artifact name → parsed JSON, as read back from two bundles) and
 * report what is new or gone. Pure: no I/O. Every key is stable across runs and reboots:
 * pids, inodes, namespace ids and timestamps never take part.
 */

export interface DiffSection {
  name: string;
  added: unknown[];
  removed: unknown[];
}

export interface SnapshotDiff {
  same: boolean;
  sections: DiffSection[];
  /** sections not compared because an artifact is missing or failed; missing from one side only makes `same` false */
  skipped: Array<{ name: string; reason: string }>;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function arr(v: unknown): unknown[] | null {
  return Array.isArray(v) ? v : null;
}
function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/** One item with a stable key; `count` lets a multiset say "one more nginx worker". */
interface Keyed {
  key: string;
  item: Obj;
}

/** Multiset difference of keyed items; an item that occurs n more times is reported once with instances n. */
function multisetDiff(a: Keyed[], b: Keyed[], countField: boolean): { added: unknown[]; removed: unknown[] } {
  const count = (xs: Keyed[]): Map<string, { n: number; item: Obj }> => {
    const m = new Map<string, { n: number; item: Obj }>();
    for (const x of xs) {
      const e = m.get(x.key);
      if (e) e.n++;
      else m.set(x.key, { n: 1, item: x.item });
    }
    return m;
  };
  const ca = count(a);
  const cb = count(b);
  const added: unknown[] = [];
  const removed: unknown[] = [];
  const keys = [...new Set([...ca.keys(), ...cb.keys()])].sort();
  for (const k of keys) {
    const na = ca.get(k)?.n ?? 0;
    const nb = cb.get(k)?.n ?? 0;
    if (countField) {
      if (nb > na) added.push({ ...cb.get(k)!.item, instances: nb - na });
      else if (na > nb) removed.push({ ...ca.get(k)!.item, instances: na - nb });
    } else if (nb > 0 && na === 0) added.push(cb.get(k)!.item);
    else if (na > 0 && nb === 0) removed.push(ca.get(k)!.item);
  }
  return { added, removed };
}

const keyOf = (...parts: unknown[]): string => JSON.stringify(parts);

// ---- listening ports: proto + addr + port + the owner's executable path
function listeningItems(data: unknown): Keyed[] | null {
  const list = isObj(data) ? arr(data['listening']) : null;
  if (!list) return null;
  const out: Keyed[] = [];
  const seen = new Set<string>();
  for (const l of list) {
    if (!isObj(l)) continue;
    const owners = (arr(l['owners']) ?? []).filter(isObj);
    const exes = owners.length ? owners.map((o) => str(o['exe'])) : [null];
    for (const exe of exes) {
      const item = { proto: str(l['proto']), addr: str(l['addr']), port: typeof l['port'] === 'number' ? l['port'] : null, exe };
      const key = keyOf(item.proto, item.addr, item.port, item.exe);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ key, item });
    }
  }
  return out;
}

/** Kernel thread names carry CPU and pool numbers (kworker/u8:3-events): compare their shape. */
export function normaliseKernelThreadName(name: string): string {
  return name.replace(/\d+/g, '#');
}

// ---- processes: (executable sha256, else path; cmdline; user) — never the pid
function processItems(data: unknown, exes: unknown, system: unknown, useSha: boolean): { user: Keyed[]; kernel: Keyed[] } | null {
  const list = isObj(data) ? arr(data['processes']) : null;
  if (!list) return null;
  const shaByPid = new Map<number, string>();
  const exeList = isObj(exes) ? arr(exes['executables']) : null;
  for (const e of exeList ?? []) {
    if (!isObj(e) || typeof e['sha256'] !== 'string') continue;
    for (const pid of arr(e['pids']) ?? []) if (typeof pid === 'number') shaByPid.set(pid, e['sha256']);
  }
  // integ's own process is in every snapshot, with a different argv each time.
  const integ = isObj(system) && isObj(system['integ']) ? system['integ']['pid'] : undefined;
  const user: Keyed[] = [];
  const kernel: Keyed[] = [];
  for (const p of list) {
    if (!isObj(p)) continue;
    const pid = typeof p['pid'] === 'number' ? p['pid'] : -1;
    if (pid === integ) continue;
    if (p['kernel_thread'] === true) {
      const name = normaliseKernelThreadName(str(p['name']) ?? '');
      kernel.push({ key: name, item: { name } });
      continue;
    }
    const cmdline = (arr(p['cmdline']) ?? []).map(String);
    const u = str(p['user']) ?? '';
    const exe = str(p['exe']);
    const sha = useSha ? (shaByPid.get(pid) ?? null) : null;
    const item: Obj = { exe, exe_sha256: sha, cmdline, user: u };
    // A zombie or unreadable process has no cmdline: its name is all there is.
    if (cmdline.length === 0) item['name'] = str(p['name']);
    const ident = sha ?? `path:${exe ?? ''}`;
    user.push({ key: keyOf(ident, cmdline, u, cmdline.length === 0 ? item['name'] : null), item });
  }
  return { user, kernel };
}

// ---- sessions: (user, line, host) from utmp and logind
function sessionItems(data: unknown): Keyed[] | null {
  if (!isObj(data)) return null;
  const current = arr(data['current']);
  const logind = arr(data['logind']);
  if (!current && !logind) return null;
  const out: Keyed[] = [];
  const seen = new Set<string>();
  const push = (user: string | null, line: string | null, host: string | null): void => {
    const item = { user: user ?? '', line: line ?? '', host: host ?? '' };
    const key = keyOf(item.user, item.line, item.host);
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ key, item });
  };
  for (const s of current ?? []) if (isObj(s)) push(str(s['user']), str(s['line']), str(s['host']));
  for (const s of logind ?? []) if (isObj(s)) push(str(s['user']), str(s['tty']), str(s['remote_host']));
  return out;
}

// ---- kernel modules by name, including those only seen in /sys/module
function moduleItems(data: unknown): Keyed[] | null {
  const list = isObj(data) ? arr(data['modules']) : null;
  if (!list || !isObj(data)) return null;
  const names = new Set<string>();
  for (const m of list) if (isObj(m) && typeof m['name'] === 'string') names.add(m['name']);
  for (const n of arr(data['only_in_sys_module']) ?? []) if (typeof n === 'string') names.add(n);
  return [...names].map((name) => ({ key: name, item: { name } }));
}

// ---- /etc/ld.so.preload content
function preloadItem(data: unknown): Keyed[] | null {
  if (!isObj(data) || typeof data['present'] !== 'boolean') return null;
  const item = { present: data['present'], content: str(data['content']) };
  return [{ key: keyOf(item.present, item.content), item }];
}

/**
 * What is new (added) or gone (removed) from snapshot a to snapshot b, per section:
 * listening, processes, kernel_threads, sessions, modules, ld_so_preload.
 */
export function diffSnapshots(a: Map<string, unknown>, b: Map<string, unknown>): SnapshotDiff {
  const sections: DiffSection[] = [];
  const skipped: SnapshotDiff['skipped'] = [];
  // An artifact present in one snapshot only means the two cannot be called the same.
  let lopsided = false;
  const compare = (name: string, artifact: string, ka: Keyed[] | null, kb: Keyed[] | null, countField = false): void => {
    if (ka === null || kb === null) {
      const where = ka === null && kb === null ? 'both snapshots' : ka === null ? 'the first snapshot' : 'the second snapshot';
      if ((ka === null) !== (kb === null)) lopsided = true;
      skipped.push({ name, reason: `artifact "${artifact}" missing or unusable in ${where}` });
      return;
    }
    sections.push({ name, ...multisetDiff(ka, kb, countField) });
  };

  compare('listening', 'listening', listeningItems(a.get('listening')), listeningItems(b.get('listening')));

  const useSha = isObj(a.get('executables')) && isObj(b.get('executables'));
  const pa = processItems(a.get('processes'), a.get('executables'), a.get('system'), useSha);
  const pb = processItems(b.get('processes'), b.get('executables'), b.get('system'), useSha);
  compare('processes', 'processes', pa?.user ?? null, pb?.user ?? null, true);
  compare('kernel_threads', 'processes', pa?.kernel ?? null, pb?.kernel ?? null);

  compare('sessions', 'sessions', sessionItems(a.get('sessions')), sessionItems(b.get('sessions')));
  compare('modules', 'modules', moduleItems(a.get('modules')), moduleItems(b.get('modules')));
  compare('ld_so_preload', 'ld_so_preload', preloadItem(a.get('ld_so_preload')), preloadItem(b.get('ld_so_preload')));

  return { same: !lopsided && sections.every((s) => s.added.length === 0 && s.removed.length === 0), sections, skipped };
}
