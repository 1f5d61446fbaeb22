/**
 * Step 2, the bracketed core: socket tables, then every process, then the socket tables
 * again, so a socket is tied to its owners with a known, short window of uncertainty.
 * Each process's stat (identity, start time) is read just before; inside the bracket only its fd
 * links, synchronously and unparsed; after it the rest, matched by pid + start time.
 * Artifacts: processes, sockets, listening, unix_sockets, core_churn.
 */
import fs from 'node:fs';
import type { ArtifactOutput, CollectContext, CollectError } from '../types.js';
import { closeFdDir, FdLinkArena, fdHoldBudget, openFdDir, warmFdDir } from './fdlinks.js';
import { expired, isGone, readProcFile, readUsers, timeoutError, toError } from './fsread.js';
import {
  INET_PROTOS,
  NET_FILES,
  parseInetTable,
  parsePacketTable,
  parseUnixTable,
  type Endpoint,
  type InetProto,
  type NetFile,
  type PacketSocketRow,
} from './net.js';
import {
  completeProcess,
  listPids,
  nsInode,
  probeHiddenPids,
  procDevMismatch,
  procMountsFrom,
  readLastPid,
  readProcess,
  readFdsInto,
  readProcessIdentity,
  round,
  walkChildren,
  type BracketRead,
  type HiddenProbeResult,
  type ProcessIdentity,
  type ProcessRecord,
  type ProcMount,
} from './processes.js';
import { readBtime } from './preflight.js';

export interface CoreOptions {
  /** fd links read per process at most */
  maxFds?: number;
  /** pids probed beyond the largest listed pid when looking for hidden pids */
  hiddenMargin?: number;
  /** time spent on the hidden-pid probe at most (ms) */
  hiddenBudgetMs?: number;
  /** test seam: called between the process walk and the second read of the socket tables */
  onBetweenReads?: () => void;
  /** test seam: the /proc listing (a rootkit's filtered getdents, in tests) */
  listPids?: (procRoot: string) => number[];
  /** test seam: the last allocated pid (null = unknown); default from ns_last_pid */
  lastPid?: number | null;
  /** bytes of each /proc/PID/environ kept (default 32 KiB) */
  maxEnvironBytes?: number;
  /** bytes of environments kept in all (default 16 MiB); later processes get environ null */
  maxEnvironTotal?: number;
}

/** What later steps (executables) reuse from the core step. */
export interface CoreShared {
  processes: ProcessRecord[];
}

interface NsEntry {
  netns: number | null;
  own: boolean;
  /** pids living in it, tried in order to read /proc/PID/net */
  pids: number[];
}

interface TableRead {
  /** directory the tables were read from, e.g. /proc/net or /proc/1234/net */
  dir: string;
  files: Map<NetFile, Buffer>;
}

function readTables(dir: string, errors: CollectError[]): TableRead | null {
  const files = new Map<NetFile, Buffer>();
  for (const f of NET_FILES) {
    try {
      files.set(f, fs.readFileSync(`${dir}/${f}`));
    } catch (err) {
      // tcp is always there: its absence means the pid is gone (try another one).
      if (f === 'tcp') {
        if (isGone(err)) return null;
        errors.push(toError(err, `${dir}/${f}`, 'sockets'));
        return null;
      }
      // raw6/packet are missing when the kernel lacks IPv6 or AF_PACKET.
      if (!isGone(err)) errors.push(toError(err, `${dir}/${f}`, 'sockets'));
    }
  }
  return { dir, files };
}

function readNs(procRoot: string, ns: NsEntry, errors: CollectError[]): TableRead | null {
  if (ns.own) return readTables(`${procRoot}/net`, errors);
  for (const pid of ns.pids) {
    const t = readTables(`${procRoot}/${pid}/net`, errors);
    if (t) return t;
  }
  return null;
}

export interface OwnerRef {
  pid: number;
  name: string;
  user: string;
  exe: string | null;
  exe_deleted: boolean | null;
}

export interface SocketEntry {
  proto: InetProto;
  netns: number | null;
  local: Endpoint;
  remote: Endpoint;
  state: string;
  uid: number;
  inode: number;
  tx_queue: number;
  rx_queue: number;
  pids: number[];
  /** in which of the two reads of the bracket it was present */
  seen: 'both' | 'first' | 'second';
}

/** A packet socket with where and when it was seen and who owns it. */
export interface PacketEntry extends PacketSocketRow {
  netns: number | null;
  pids: number[];
  seen: 'both' | 'first' | 'second';
}

export interface UnixEntry {
  netns: number | null;
  inode: number;
  type: string;
  state: string;
  listening: boolean;
  path: string | null;
  pids: number[];
  seen: 'both' | 'first' | 'second';
}

export interface ListeningEntry {
  proto: InetProto;
  addr: string;
  port: number;
  netns: number | null;
  inode: number;
  uid: number;
  owners: OwnerRef[];
}

function endpointText(e: Endpoint): string {
  return e.addr.includes(':') ? `[${e.addr}]:${e.port}` : `${e.addr}:${e.port}`;
}

/** One socket in the churn lists, short. */
export interface SocketBrief {
  proto: string;
  netns: number | null;
  local: string | null;
  remote: string | null;
  state: string;
  inode: number;
  path?: string | null;
  pids: number[];
}

/** Merge the two reads of one table family into entries keyed stably across both. */
function mergeSeen<T>(first: Map<string, T>, second: Map<string, T>): Array<{ row: T; seen: 'both' | 'first' | 'second' }> {
  const out: Array<{ row: T; seen: 'both' | 'first' | 'second' }> = [];
  for (const [k, row] of second) out.push({ row, seen: first.has(k) ? 'both' : 'second' });
  for (const [k, row] of first) if (!second.has(k)) out.push({ row, seen: 'first' });
  return out;
}

export async function collectCore(ctx: CollectContext, shared: Partial<CoreShared>, opts: CoreOptions = {}): Promise<ArtifactOutput> {
  const P = ctx.procRoot;
  const errors: CollectError[] = [];
  const raw: ArtifactOutput['raw'] = [];
  const maxFds = opts.maxFds ?? 65536;
  const users = readUsers(ctx.fsRoot);
  const btime = readBtime(P);
  const euid = process.geteuid?.() ?? null;

  // ---- before the bracket: the listing and each pid's network namespace (cheap readlinks).
  const list = opts.listPids ?? listPids;
  const listed = list(P);
  let ownNs: number | null = null;
  try {
    ownNs = nsInode(fs.readlinkSync(`${P}/self/ns/net`));
  } catch (err) {
    errors.push(toError(err, `${P}/self/ns/net`, 'sockets'));
  }
  const nsMap = new Map<string, NsEntry>();
  const nsKey = (n: number | null): string => (n === null ? 'own' : String(n));
  nsMap.set(nsKey(ownNs), { netns: ownNs, own: true, pids: [] });
  const netLinks = new Map<number, string>();
  // Who holds each pid (stat: identity and start time), read here so the bracket holds only
  // the fd links; the detail read after the bracket checks the start time again.
  const identities: ProcessIdentity[] = [];
  // Each /proc/PID/fd is opened here too, up to a share of the descriptor limit: opening is most
  // of what reading a /proc fd folder costs, and the open descriptor stays bound to that process
  // (it reads as gone once the process exits, even if the pid is reused). Closed after the bracket.
  const heldFdDirs: Array<number | null> = [];
  let holdBudget = fdHoldBudget();
  const vanished: number[] = [];
  let walkTimedOut = false;
  for (let i = 0; i < listed.length; i++) {
    if ((i & 31) === 0 && expired(ctx)) {
      walkTimedOut = true;
      errors.push(timeoutError(`process walk stopped after ${i} of ${listed.length} pids`, 'processes'));
      break;
    }
    const pid = listed[i]!;
    const id = readProcessIdentity(P, pid, errors);
    if (id === null) {
      vanished.push(pid);
      continue;
    }
    identities.push(id);
    let held = holdBudget-- > 0 ? openFdDir(`${P}/${pid}/fd`) : null;
    if (held !== null && !warmFdDir(held, `${P}/${pid}/fd`, maxFds)) {
      closeFdDir(held);
      held = null;
    }
    heldFdDirs.push(held);
    let link: string;
    try {
      link = fs.readlinkSync(`${P}/${pid}/ns/net`);
    } catch {
      continue; // unknown here; the detail read records the error
    }
    netLinks.set(pid, link);
    const ino = nsInode(link);
    const k = nsKey(ino);
    let e = nsMap.get(k);
    if (!e) nsMap.set(k, (e = { netns: ino, own: false, pids: [] }));
    if (e.pids.length < 8) e.pids.push(pid);
  }

  const vanishedBefore = vanished.length;
  // ---- the bracket
  const first = new Map<string, TableRead | null>();
  const second = new Map<string, TableRead | null>();
  const bracketReads: BracketRead[] = [];
  const arena = new FdLinkArena();
  const fdCounts: Array<number | null> = [];
  /** each process's range in the arena: from, to */
  const ends: number[] = [];
  const firstStartWall = Date.now();
  let t0 = 0;
  let t1 = 0;
  let t2 = 0;
  let t3 = 0;
  try {
    t0 = performance.now();
    for (const [k, ns] of nsMap) first.set(k, readNs(P, ns, errors));
    t1 = performance.now();
    // Inside the bracket only what maps sockets to owners: the fd links, as bytes (decoded after).
    for (let i = 0; i < identities.length; i++) {
      if ((i & 63) === 0 && expired(ctx)) break;
      const from = arena.size;
      fdCounts.push(readFdsInto(P, identities[i]!.pid, maxFds, errors, arena, heldFdDirs[i]));
      ends.push(from, arena.size);
    }
    opts.onBetweenReads?.();
    t2 = performance.now();
    for (const [k, ns] of nsMap) second.set(k, readNs(P, ns, errors));
    t3 = performance.now();
    // ---- end of the bracket
    for (let i = 0; i < fdCounts.length; i++) {
      const fdCount = fdCounts[i]!;
      if (fdCount === null) vanished.push(identities[i]!.pid);
      else bracketReads.push({ ...identities[i]!, fdCount, ...arena.take(ends[2 * i]!, ends[2 * i + 1]!) });
    }
    const unread = identities.length - bracketReads.length - (vanished.length - vanishedBefore);
    if (unread > 0) {
      walkTimedOut = true;
      errors.push(timeoutError(`fd links read for ${identities.length - unread} of ${identities.length} pids`, 'processes'));
    }
  } finally {
    for (const fd of heldFdDirs) if (fd !== null) closeFdDir(fd);
  }

  // The rest of each process, matched to the bracket's read by pid + start time.
  const processes: ProcessRecord[] = [];
  const readOpts = { btime, users, maxFds, netLinks, maxEnvironBytes: opts.maxEnvironBytes };
  const environTotalMax = opts.maxEnvironTotal ?? 16 << 20;
  let environTotal = 0;
  let detailsStopped = false;
  for (const b of bracketReads) {
    if (!detailsStopped && expired(ctx)) {
      detailsStopped = true;
      errors.push(timeoutError('process details (status, cmdline, exe, environ …) not read for the remaining pids', 'processes'));
    }
    if (readOpts.maxEnvironBytes !== 0 && environTotal >= environTotalMax) {
      readOpts.maxEnvironBytes = 0;
      errors.push({ code: 'ELIMIT', message: `environments not read beyond ${environTotalMax} bytes in all`, artifact: 'processes' });
    }
    const rec = completeProcess(P, b, detailsStopped ? { ...readOpts, bracketOnly: true } : readOpts, errors);
    for (const e of rec.environ ?? []) environTotal += e.length + 1;
    processes.push(rec);
    const k = nsKey(rec.netns);
    if (rec.netns !== null && !nsMap.has(k)) nsMap.set(k, { netns: rec.netns, own: false, pids: [rec.pid] });
  }

  // Something mounted over /proc/N hides (mount --bind /empty /proc/N) or disguises
  // (mount --bind /proc/A /proc/N) that process: from mountinfo and from st_dev.
  let procMounts: ProcMount[] = [];
  const mi = readProcFile(`${P}/self/mountinfo`, errors, { optional: true, artifact: 'core_churn' });
  if (mi) procMounts = procMountsFrom(mi.toString('utf8'), P);
  const devMismatch = procDevMismatch(P, listed);

  // Hidden pids: after the bracket so it does not widen it.
  let hidden: HiddenProbeResult | null = null;
  let children: ReturnType<typeof walkChildren> | null = null;
  if (!expired(ctx)) {
    let pidMax: number | null = null;
    try {
      pidMax = Number(fs.readFileSync(`${P}/sys/kernel/pid_max`, 'utf8').trim()) || null;
    } catch (err) {
      errors.push(toError(err, `${P}/sys/kernel/pid_max`, 'core_churn'));
    }
    const budget = opts.hiddenBudgetMs ?? Math.max(300, ctx.deadline - Date.now() - 500);
    const stopAt = Math.min(ctx.deadline - 200, Date.now() + budget);
    children = walkChildren(P, listed, { stopAt, maxPids: 1 << 20 });
    hidden = probeHiddenPids(P, new Set(listed), {
      pidMax,
      margin: opts.hiddenMargin ?? 1024,
      stopAt,
      relist: () => list(P),
      lastPid: opts.lastPid !== undefined ? opts.lastPid : readLastPid(P),
      extra: children.pids,
      covered: new Set([
        ...procMounts.map((m) => m.pid),
        ...devMismatch.map((m) => m.pid),
        ...bracketReads.filter((b) => b.st.pid !== b.pid).map((b) => b.pid),
      ]),
    });
    for (const m of procMounts) {
      const pp = children.parentOf.get(m.pid);
      if (pp === undefined) continue;
      const rec = processes.find((x) => x.pid === pp && !x.identity_mismatch);
      m.parent = { pid: pp, name: rec?.name ?? null, exe: rec?.exe ?? null };
    }
    // A covered process with another thread: read it through /proc/TID (its fd table, exe and
    // cmdline are the process's), so its sockets get their owner back.
    for (const { pid, tid } of hidden.covered_via_tid) {
      const rec = readProcess(P, tid, { btime, users, maxFds }, errors);
      if (!rec) continue;
      delete rec.identity_mismatch;
      processes.push({ ...rec, pid, unmasked_via_tid: tid });
    }
    // Read the hidden ones like any other process (after the bracket), so their sockets get
    // an owner and their executables get hashed.
    for (const h of hidden.hidden) {
      const rec = readProcess(P, h.pid, { btime, users, maxFds }, errors);
      if (rec) processes.push({ ...rec, hidden_from_listing: true });
    }
  } else {
    errors.push(timeoutError('hidden-pid probe skipped', 'core_churn'));
  }

  // ---- parse and join (outside the bracket)
  const owners = new Map<number, number[]>();
  const byPid = new Map<number, ProcessRecord>();
  const readPids = new Set(processes.map((p) => p.pid));
  for (const p of processes) {
    // /proc/B showing process A (a bind mount): its fds are A's, already counted under A.
    if (p.identity_mismatch && readPids.has(p.identity_mismatch.stat_pid)) continue;
    byPid.set(p.pid, p);
    for (const ino of p.socket_inodes) {
      const l = owners.get(ino);
      if (!l) owners.set(ino, [p.pid]);
      else if (!l.includes(p.pid)) l.push(p.pid);
    }
  }
  const pidsOf = (ino: number): number[] => (ino === 0 ? [] : (owners.get(ino) ?? []));

  const namespaces: Array<Record<string, unknown>> = [];
  const inetFirst = new Map<string, SocketEntry>();
  const inetSecond = new Map<string, SocketEntry>();
  const pktFirst = new Map<string, PacketEntry>();
  const pktSecond = new Map<string, PacketEntry>();
  const unixFirst = new Map<string, UnixEntry>();
  const unixSecond = new Map<string, UnixEntry>();
  const bad: Array<{ file: string; line: string }> = [];

  const ingest = (read: TableRead | null, ns: NsEntry, which: 'first' | 'second'): void => {
    if (!read) return;
    // raw/proc/net/first/tcp for integ's namespace, raw/proc/<pid>/net/first/tcp for the others
    const tag = ns.own ? 'proc/net' : `proc/${read.dir.slice(P.length + 1)}`;
    const inet = which === 'first' ? inetFirst : inetSecond;
    const pkt = which === 'first' ? pktFirst : pktSecond;
    const unix = which === 'first' ? unixFirst : unixSecond;
    for (const [file, buf] of read.files) {
      raw.push({ file: `${tag}/${which}/${file}`, data: buf });
      const text = buf.toString('utf8');
      if ((INET_PROTOS as readonly string[]).includes(file)) {
        const proto = file as InetProto;
        const parsed = parseInetTable(text, proto);
        for (const line of parsed.bad) bad.push({ file: `${read.dir}/${file}`, line });
        for (const r of parsed.rows) {
          // TIME_WAIT and request sockets have inode 0: the addresses make them unique.
          const key = `${ns.netns}|${proto}|${r.inode}|${endpointText(r.local)}|${endpointText(r.remote)}`;
          inet.set(key, {
            proto,
            netns: ns.netns,
            local: r.local,
            remote: r.remote,
            state: r.state,
            uid: r.uid,
            inode: r.inode,
            tx_queue: r.tx_queue,
            rx_queue: r.rx_queue,
            pids: pidsOf(r.inode),
            seen: which,
          });
        }
      } else if (file === 'unix') {
        const parsed = parseUnixTable(text);
        for (const line of parsed.bad) bad.push({ file: `${read.dir}/${file}`, line });
        for (const r of parsed.rows)
          unix.set(`${ns.netns}|${r.inode}`, {
            netns: ns.netns,
            inode: r.inode,
            type: r.type,
            state: r.state,
            listening: r.listening,
            path: r.path,
            pids: pidsOf(r.inode),
            seen: which,
          });
      } else if (file === 'packet') {
        const parsed = parsePacketTable(text);
        for (const line of parsed.bad) bad.push({ file: `${read.dir}/${file}`, line });
        for (const r of parsed.rows) pkt.set(`${ns.netns}|${r.inode}`, { netns: ns.netns, ...r, pids: pidsOf(r.inode), seen: which });
      }
    }
  };
  for (const [k, ns] of nsMap) {
    const a = first.get(k) ?? null;
    const b = second.get(k) ?? null;
    ingest(a, ns, 'first');
    ingest(b, ns, 'second');
    namespaces.push({
      netns: ns.netns,
      own: ns.own,
      read_via: (b ?? a)?.dir ?? null,
      first_read: a !== null,
      second_read: b !== null,
      pids: processes.filter((p) => (ns.own ? p.netns === ns.netns || p.netns === null : p.netns === ns.netns)).length,
    });
  }

  const sockets = mergeSeen(inetFirst, inetSecond).map(({ row, seen }) => ({ ...row, seen }));
  const packet = mergeSeen(pktFirst, pktSecond).map(({ row, seen }) => ({ ...row, seen }));
  const unixSockets = mergeSeen(unixFirst, unixSecond).map(({ row, seen }) => ({ ...row, seen }));

  const ownerRef = (pid: number): OwnerRef => {
    const p = byPid.get(pid);
    return { pid, name: p?.name ?? '', user: p?.user ?? '', exe: p?.exe ?? null, exe_deleted: p?.exe_deleted ?? null };
  };
  const listening: ListeningEntry[] = [];
  for (const s of sockets) {
    if (s.seen === 'first') continue;
    const isTcpListen = s.proto.startsWith('tcp') && s.state === 'LISTEN';
    const isUdpBound = s.proto.startsWith('udp') && s.state === 'UNCONN' && s.local.port !== 0;
    if (!isTcpListen && !isUdpBound) continue;
    listening.push({ proto: s.proto, addr: s.local.addr, port: s.local.port, netns: s.netns, inode: s.inode, uid: s.uid, owners: s.pids.map(ownerRef) });
  }
  listening.sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto) || a.addr.localeCompare(b.addr));

  const brief = (s: SocketEntry): SocketBrief => ({
    proto: s.proto,
    netns: s.netns,
    local: endpointText(s.local),
    remote: endpointText(s.remote),
    state: s.state,
    inode: s.inode,
    pids: s.pids,
  });
  const briefPkt = (s: PacketEntry): SocketBrief => ({
    proto: 'packet',
    netns: s.netns,
    local: `ifindex ${s.ifindex} proto ${s.protocol}`,
    remote: null,
    state: s.running ? 'RUNNING' : 'DOWN',
    inode: s.inode,
    pids: s.pids,
  });
  const briefUnix = (s: UnixEntry): SocketBrief => ({
    proto: 'unix',
    netns: s.netns,
    local: null,
    remote: null,
    state: s.state,
    inode: s.inode,
    path: s.path,
    pids: s.pids,
  });
  const appeared = [
    ...sockets.filter((s) => s.seen === 'second').map(brief),
    ...packet.filter((s) => s.seen === 'second').map(briefPkt),
    ...unixSockets.filter((s) => s.seen === 'second').map(briefUnix),
  ];
  const disappeared = [
    ...sockets.filter((s) => s.seen === 'first').map(brief),
    ...packet.filter((s) => s.seen === 'first').map(briefPkt),
    ...unixSockets.filter((s) => s.seen === 'first').map(briefUnix),
  ];
  const unowned = [
    ...sockets.filter((s) => s.seen !== 'first' && s.inode !== 0 && s.pids.length === 0).map(brief),
    ...packet.filter((s) => s.seen !== 'first' && s.inode !== 0 && s.pids.length === 0).map(briefPkt),
  ];
  const unownedUnix = unixSockets.filter((s) => s.seen !== 'first' && s.inode !== 0 && s.pids.length === 0).length;

  shared.processes = processes;

  const bracketMs = round(t3 - t0);
  const notes: string[] = [];
  if (euid !== 0) notes.push("not running as root: the fds, exe and cwd of other users' processes are unreadable, so their sockets show no owner");
  notes.push(
    'unowned sockets: held by the kernel, created after the process walk (see appeared), passed in flight over a unix socket, or owned by an unreadable process',
  );
  const churn = {
    bracket_ms: bracketMs,
    first_read: { started_at: new Date(firstStartWall).toISOString(), duration_ms: round(t1 - t0) },
    process_walk_ms: round(t2 - t1),
    second_read: { duration_ms: round(t3 - t2) },
    namespaces: namespaces.length,
    processes_listed: listed.length,
    processes_read: processes.length,
    vanished_pids: vanished,
    walk_complete: !walkTimedOut,
    appeared,
    disappeared,
    unowned,
    unowned_unix_count: unownedUnix,
    hidden_pids: hidden,
    children_walk: children ? { pids: children.pids.size, complete: children.complete, supported: children.supported } : null,
    proc_mounts: procMounts,
    proc_dev_mismatch: devMismatch,
    unparsed_lines: bad,
    notes,
  };

  return {
    json: [
      {
        name: 'processes',
        data: { count: processes.length, boot_time_s: btime, clk_tck: 100, vanished_pids: vanished, processes },
        method:
          'readdir /proc; before the bracket read /proc/[pid]/stat; inside it readlink fd/* only; after it, matched by pid + start time (stat again): status, cmdline, environ (bounded), cgroup; readlink exe,cwd,root,ns/*; stat exe (nlink 0 = deleted)',
      },
      {
        name: 'sockets',
        data: { namespaces, sockets, packet },
        method:
          'read /proc/net/{tcp,tcp6,udp,udp6,raw,raw6,packet} (and /proc/[pid]/net/* once per network namespace) before and after the process walk; owners from /proc/[pid]/fd socket:[inode] links',
      },
      {
        name: 'listening',
        data: { listening },
        method: 'TCP sockets in LISTEN and unconnected UDP sockets with a bound port, from the second read of the bracket; owners from /proc/[pid]/fd',
      },
      { name: 'unix_sockets', data: { unix_sockets: unixSockets }, method: 'read /proc/net/unix (per network namespace) before and after the process walk' },
      {
        name: 'core_churn',
        data: churn,
        method:
          'difference between the two reads of the socket tables; stat /proc/N for every pid that can have been allocated (ns_last_pid, pid_max) and the children files of every task, compared with the readdir listing; mountinfo and st_dev of /proc/N',
      },
    ],
    raw,
    errors,
  };
}
