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

/** One item with a stable key. */
interface Keyed {
  key: string;
  item: Obj;
}

/** Set difference of keyed items. */
function setDiff(a: Keyed[], b: Keyed[]): { added: unknown[]; removed: unknown[] } {
  const ma = new Map(a.map((x) => [x.key, x.item]));
  const mb = new Map(b.map((x) => [x.key, x.item]));
  const added: unknown[] = [];
  const removed: unknown[] = [];
  for (const k of [...new Set([...ma.keys(), ...mb.keys()])].sort()) {
    if (!ma.has(k)) added.push(mb.get(k));
    else if (!mb.has(k)) removed.push(ma.get(k));
  }
  return { added, removed };
}

const keyOf = (...parts: unknown[]): string => JSON.stringify(parts);

/**
 * A stable name for a network namespace: "host" for integ's own, "container:<id>" when a
 * process in it belongs to a container, else "netns:<inode>" (stable until a reboot).
 */
function netnsLabeller(a: ReadonlyMap<string, unknown>): (netns: unknown) => string {
  const sockets = a.get('sockets');
  let own: number | null = null;
  for (const n of isObj(sockets) ? (arr(sockets['namespaces']) ?? []) : [])
    if (isObj(n) && n['own'] === true && typeof n['netns'] === 'number') own = n['netns'];
  const containerOf = new Map<number, string>();
  const procs = a.get('processes');
  for (const p of isObj(procs) ? (arr(procs['processes']) ?? []) : []) {
    if (!isObj(p) || typeof p['netns'] !== 'number' || !isObj(p['container'])) continue;
    const id = str(p['container']['id']);
    if (id && !containerOf.has(p['netns'])) containerOf.set(p['netns'], `container:${id.slice(0, 12)}`);
  }
  return (netns) => (typeof netns !== 'number' || netns === own ? 'host' : (containerOf.get(netns) ?? `netns:${netns}`));
}

// ---- listening ports: network namespace + proto + addr + port + the owner's executable path
function listeningItems(data: unknown, label: (n: unknown) => string): Keyed[] | null {
  const list = isObj(data) ? arr(data['listening']) : null;
  if (!list) return null;
  const out: Keyed[] = [];
  const seen = new Set<string>();
  for (const l of list) {
    if (!isObj(l)) continue;
    const owners = (arr(l['owners']) ?? []).filter(isObj);
    const exes = owners.length ? owners.map((o) => str(o['exe'])) : [null];
    for (const exe of exes) {
      const item = { netns: label(l['netns']), proto: str(l['proto']), addr: str(l['addr']), port: typeof l['port'] === 'number' ? l['port'] : null, exe };
      const key = keyOf(item.netns, item.proto, item.addr, item.port, item.exe);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ key, item });
    }
  }
  return out;
}

// ---- established TCP connections: the remote endpoint is the point; ephemeral ports are left out
function connectionItems(a: ReadonlyMap<string, unknown>, label: (n: unknown) => string): Keyed[] | null {
  const sockets = a.get('sockets');
  const list = isObj(sockets) ? arr(sockets['sockets']) : null;
  if (!list) return null;
  const exeByPid = new Map<number, string | null>();
  const procs = a.get('processes');
  for (const p of isObj(procs) ? (arr(procs['processes']) ?? []) : []) if (isObj(p) && typeof p['pid'] === 'number') exeByPid.set(p['pid'], str(p['exe']));
  const listeningPorts = new Set<string>();
  const lst = a.get('listening');
  for (const l of isObj(lst) ? (arr(lst['listening']) ?? []) : [])
    if (isObj(l)) listeningPorts.add(`${label(l['netns'])}|${String(l['proto'])}|${String(l['port'])}`);
  const out: Keyed[] = [];
  const seen = new Set<string>();
  for (const s of list) {
    if (!isObj(s) || s['state'] !== 'ESTABLISHED' || s['seen'] === 'first' || !isObj(s['local']) || !isObj(s['remote'])) continue;
    const netns = label(s['netns']);
    const proto = str(s['proto']);
    const local = s['local'];
    const remote = s['remote'];
    const inbound = listeningPorts.has(`${netns}|${String(proto)}|${String(local['port'])}`);
    const pids = (arr(s['pids']) ?? []).filter((x): x is number => typeof x === 'number');
    const exes = pids.length ? [...new Set(pids.map((p) => exeByPid.get(p) ?? null))] : [null];
    for (const exe of exes) {
      const item = inbound
        ? { netns, proto, direction: 'inbound', local: `${String(local['addr'])}:${String(local['port'])}`, remote: String(remote['addr']), exe }
        : { netns, proto, direction: 'outbound', remote: `${String(remote['addr'])}:${String(remote['port'])}`, exe };
      const key = keyOf(item);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ key, item });
    }
  }
  return out;
}

// ---- persistence places and accounts: by path and content (a change shows as gone + new)
function persistenceItems(data: unknown): Keyed[] | null {
  const list = isObj(data) ? arr(data['entries']) : null;
  if (!list) return null;
  return list.filter(isObj).map((e) => {
    const item = {
      path: str(e['path']),
      ...(typeof e['path_b64'] === 'string' ? { path_b64: e['path_b64'] } : {}),
      category: str(e['category']),
      type: str(e['type']),
      sha256: str(e['sha256']),
      symlink_target: str(e['symlink_target']),
      ...(e['sha256'] === null && e['type'] === 'file' ? { size: e['size'] } : {}),
      ...(arr(e['enabled_by']) ? { enabled_by: e['enabled_by'] } : {}),
    };
    return { key: keyOf(item), item };
  });
}
function accountItems(data: unknown): Keyed[] | null {
  const list = isObj(data) ? arr(data['accounts']) : null;
  if (!list) return null;
  return list.filter(isObj).map((x) => {
    const item = {
      name: str(x['name']),
      uid: x['uid'],
      gid: x['gid'],
      home: str(x['home']),
      shell: str(x['shell']),
      password: str(x['password']),
      hash_fingerprint: str(x['hash_fingerprint']),
    };
    return { key: keyOf(item), item };
  });
}
function findingItems(data: unknown): Keyed[] | null {
  const list = isObj(data) ? arr(data['findings']) : null;
  if (!list) return null;
  const out: Keyed[] = [];
  const seen = new Set<string>();
  for (const f of list.filter(isObj)) {
    const exe = str(f['exe']);
    const p = str(f['path']);
    // pids change between snapshots: only a finding with nothing else to name it keeps its pid
    const item = { kind: str(f['kind']), severity: str(f['severity']), exe, path: p, ...(exe === null && p === null ? { pid: f['pid'] } : {}) };
    const key = keyOf(item);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ key, item });
  }
  return out;
}

/** Kernel thread names carry CPU and pool numbers (kworker/u8:3-events): compare their shape. */
export function normaliseKernelThreadName(name: string): string {
  return name.replace(/\d+/g, '#');
}

// ---- processes: (executable, cmdline, user) — never the pid
interface ProcEntry {
  key: string;
  item: Obj;
  sha: string | null;
}

function processItems(data: unknown, exes: unknown, system: unknown): { user: ProcEntry[]; kernel: Keyed[] } | null {
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
  const user: ProcEntry[] = [];
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
    const item: Obj = { exe, cmdline, user: u };
    // Arguments that are not UTF-8 are shown with \xHH escapes and kept exactly in base64:
    // the key uses the exact bytes, so two different argv never compare equal.
    if (isObj(p['cmdline_b64'])) item['cmdline_b64'] = p['cmdline_b64'];
    if (typeof p['exe_b64'] === 'string') item['exe_b64'] = p['exe_b64'];
    // A zombie or unreadable process has no cmdline: its name is all there is.
    if (cmdline.length === 0) item['name'] = str(p['name']);
    user.push({
      key: keyOf(exe, item['exe_b64'] ?? null, cmdline, item['cmdline_b64'] ?? null, u, item['name'] ?? null),
      item,
      sha: shaByPid.get(pid) ?? null,
    });
  }
  return { user, kernel };
}

/**
 * Processes are matched by (path, cmdline, user) and counted; where both snapshots know the
 * sha256 of a group's executables and the sets differ (a binary replaced in place), the
 * group is compared by (path, cmdline, user, sha256) instead. A hash missing on one side
 * (a bound, a time-out) therefore never makes a process look new.
 */
function processDiff(a: ProcEntry[], b: ProcEntry[]): { added: unknown[]; removed: unknown[] } {
  interface Group {
    item: Obj;
    n: number;
    shas: Map<string, number>;
  }
  const group = (xs: ProcEntry[]): Map<string, Group> => {
    const m = new Map<string, Group>();
    for (const x of xs) {
      let g = m.get(x.key);
      if (!g) m.set(x.key, (g = { item: x.item, n: 0, shas: new Map() }));
      g.n++;
      if (x.sha) g.shas.set(x.sha, (g.shas.get(x.sha) ?? 0) + 1);
    }
    return m;
  };
  const ga = group(a);
  const gb = group(b);
  const added: unknown[] = [];
  const removed: unknown[] = [];
  const firstSha = (g: Group | undefined): string | null => (g ? ([...g.shas.keys()][0] ?? null) : null);
  for (const k of [...new Set([...ga.keys(), ...gb.keys()])].sort()) {
    const x = ga.get(k);
    const y = gb.get(k);
    const shaSetsDiffer =
      x && y && x.shas.size > 0 && y.shas.size > 0 && ([...x.shas.keys()].some((h) => !y.shas.has(h)) || [...y.shas.keys()].some((h) => !x.shas.has(h)));
    if (shaSetsDiffer) {
      for (const h of [...new Set([...x.shas.keys(), ...y.shas.keys()])].sort()) {
        const ca = x.shas.get(h) ?? 0;
        const cb = y.shas.get(h) ?? 0;
        if (cb > ca) added.push({ ...y.item, exe_sha256: h, instances: cb - ca });
        else if (ca > cb) removed.push({ ...x.item, exe_sha256: h, instances: ca - cb });
      }
      continue;
    }
    const na = x?.n ?? 0;
    const nb = y?.n ?? 0;
    if (nb > na) added.push({ ...y!.item, exe_sha256: firstSha(y), instances: nb - na });
    else if (na > nb) removed.push({ ...x!.item, exe_sha256: firstSha(x), instances: na - nb });
  }
  return { added, removed };
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
 * listening (keyed with the network namespace), connections (established TCP, by remote
 * endpoint), processes, kernel_threads, sessions, modules, ld_so_preload, and when both have
 * them findings, accounts, persistence.
 */
export function diffSnapshots(a: Map<string, unknown>, b: Map<string, unknown>): SnapshotDiff {
  const sections: DiffSection[] = [];
  const skipped: SnapshotDiff['skipped'] = [];
  // An artifact present in one snapshot only means the two cannot be called the same.
  let lopsided = false;
  const compare = (name: string, artifact: string, ka: Keyed[] | null, kb: Keyed[] | null): void => {
    if (ka === null || kb === null) {
      const where = ka === null && kb === null ? 'both snapshots' : ka === null ? 'the first snapshot' : 'the second snapshot';
      if ((ka === null) !== (kb === null)) lopsided = true;
      skipped.push({ name, reason: `artifact "${artifact}" missing or unusable in ${where}` });
      return;
    }
    sections.push({ name, ...setDiff(ka, kb) });
  };

  const la = netnsLabeller(a);
  const lb = netnsLabeller(b);
  compare('listening', 'listening', listeningItems(a.get('listening'), la), listeningItems(b.get('listening'), lb));
  compare('connections', 'sockets', connectionItems(a, la), connectionItems(b, lb));

  const pa = processItems(a.get('processes'), a.get('executables'), a.get('system'));
  const pb = processItems(b.get('processes'), b.get('executables'), b.get('system'));
  if (pa && pb) sections.push({ name: 'processes', ...processDiff(pa.user, pb.user) });
  else compare('processes', 'processes', pa ? [] : null, pb ? [] : null);
  compare('kernel_threads', 'processes', pa?.kernel ?? null, pb?.kernel ?? null);

  compare('sessions', 'sessions', sessionItems(a.get('sessions')), sessionItems(b.get('sessions')));
  compare('modules', 'modules', moduleItems(a.get('modules')), moduleItems(b.get('modules')));
  compare('ld_so_preload', 'ld_so_preload', preloadItem(a.get('ld_so_preload')), preloadItem(b.get('ld_so_preload')));
  // Artifacts added by later versions: compared when both bundles have them, else skipped quietly
  // (an older bundle lacks them; that alone is no difference).
  const optional = (name: string, artifact: string, fn: (d: unknown) => Keyed[] | null): void => {
    const ka = fn(a.get(artifact));
    const kb = fn(b.get(artifact));
    if (ka && kb) sections.push({ name, ...setDiff(ka, kb) });
    else if (ka || kb) skipped.push({ name, reason: `artifact "${artifact}" in one snapshot only (made by an older integ)` });
  };
  optional('findings', 'findings', findingItems);
  optional('accounts', 'accounts', accountItems);
  optional('persistence', 'persistence', persistenceItems);

  return { same: !lopsided && sections.every((s) => s.added.length === 0 && s.removed.length === 0), sections, skipped };
}
