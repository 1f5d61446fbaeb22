/**
 * Reading one process from /proc/PID with synchronous calls (the core bracket must be
 * tight), the pid listing, and the probe for pids hidden from the listing.
 */
import { isUtf8 } from 'node:buffer';
import fs from 'node:fs';
import type { CollectError } from '../types.js';
import { pathToText } from '../../core/pathenc.js';
import { FdLinkArena, readFdLinksInto } from './fdlinks.js';
import { decodeLossless, isGone, readBounded, readProcScratch, toError } from './fsread.js';

/** USER_HZ: the unit of starttime in /proc/PID/stat; 100 on every mainstream Linux architecture. */
export const CLK_TCK = 100;
/** PF_KTHREAD in the flags field of /proc/PID/stat. */
const PF_KTHREAD = 0x00200000;

/** The fields of /proc/PID/stat we keep. */
export interface StatFields {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  tty_nr: number;
  flags: number;
  utime: number;
  stime: number;
  nice: number;
  num_threads: number;
  /** clock ticks after boot */
  starttime: number;
  vsize: number;
  rss_pages: number;
}

/**
 * Parse /proc/PID/stat. The comm field is between the first "(" and the LAST ")": a
 * process can name itself "a) R 1 (b" and only the last parenthesis is trustworthy.
 */
export function parseStat(line: string): StatFields {
  const open = line.indexOf('(');
  const close = line.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error('malformed stat: no (comm)');
  const pid = Number(line.slice(0, open).trim());
  const comm = line.slice(open + 1, close);
  const f = line
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  if (f.length < 22 || !Number.isInteger(pid)) throw new Error('malformed stat: too few fields');
  const n = (i: number): number => Number(f[i]);
  return {
    pid,
    comm,
    state: f[0]!,
    ppid: n(1),
    pgrp: n(2),
    session: n(3),
    tty_nr: n(4),
    flags: n(6),
    utime: n(11),
    stime: n(12),
    nice: n(16),
    num_threads: n(17),
    starttime: n(19),
    vsize: n(20),
    rss_pages: n(21),
  };
}

/** /proc/PID/status as key → value (value with its leading tab/spaces removed). */
export function parseStatus(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** NUL-separated argv → array; a trailing NUL does not make an empty last argument. */
export function parseCmdline(buf: Buffer): string[] {
  if (buf.length === 0) return [];
  const end = buf[buf.length - 1] === 0 ? buf.length - 1 : buf.length;
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i <= end; i++) {
    if (i === end || buf[i] === 0) {
      out.push(pathToText(Buffer.from(buf.subarray(start, i))));
      start = i + 1;
    }
  }
  return out;
}

function ids(v: string | undefined): number[] {
  return v ? v.split(/\s+/).filter(Boolean).map(Number) : [];
}

/** "net:[4026531840]" → 4026531840 */
export function nsInode(link: string): number | null {
  const m = /\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : null;
}

/** status keys worth keeping per process (the rest is memory accounting) */
const STATUS_KEEP = ['State', 'Tgid', 'NSpid', 'TracerPid', 'Groups', 'Threads', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp'];

/** One open file descriptor: where its link points and what kind of thing that is. */
export interface FdEntry {
  fd: number;
  target: string;
  /** the target's exact bytes in base64 when they are not UTF-8 */
  target_b64?: string;
  /** socket, pipe, memfd, deleted (a file unlinked while open), anon (anon_inode:…), dev (/dev/…), file */
  kind: 'socket' | 'pipe' | 'memfd' | 'deleted' | 'anon' | 'dev' | 'file';
}

/** Classify an fd link target (the " (deleted)" suffix is the kernel's; a memfd is "/memfd:NAME (deleted)"). */
export function fdKind(target: string): FdEntry['kind'] {
  if (target.startsWith('socket:[')) return 'socket';
  if (target.startsWith('pipe:[')) return 'pipe';
  if (target.startsWith('/memfd:')) return 'memfd';
  if (target.startsWith('anon_inode:')) return 'anon';
  if (target.endsWith(' (deleted)')) return 'deleted';
  if (target.startsWith('/dev/')) return 'dev';
  return 'file';
}

/** Namespace ids (inode numbers of /proc/PID/ns/* links). */
export interface NamespaceIds {
  pid: number | null;
  mnt: number | null;
  net: number | null;
  user: number | null;
  uts: number | null;
  ipc: number | null;
  cgroup: number | null;
}
const NS_KINDS = ['pid', 'mnt', 'net', 'user', 'uts', 'ipc', 'cgroup'] as const;

/**
 * The container a cgroup path names, if any: docker-<64 hex>.scope, /docker/<64 hex>,
 * cri-containerd-…, crio-…, libpod-…, /kubepods/…/<64 hex>. Returns the 64-hex id and the runtime.
 */
export function containerFromCgroup(path: string): { id: string; runtime: string } | null {
  const m = /(?:^|[/-])(docker|cri-containerd|crio|libpod|containerd|lxc|kubepods)?[-/]?([0-9a-f]{64})(?:\.scope)?(?:\/|$)/.exec(path);
  if (!m) {
    const lxc = /\/lxc(?:\.payload)?[./]([^/]+)/.exec(path);
    return lxc ? { id: lxc[1]!, runtime: 'lxc' } : null;
  }
  const rt = /docker/.test(path)
    ? 'docker'
    : /cri-containerd|containerd/.test(path)
      ? 'containerd'
      : /crio/.test(path)
        ? 'cri-o'
        : /libpod/.test(path)
          ? 'podman'
          : /kubepods/.test(path)
            ? 'kubernetes'
            : (m[1] ?? 'unknown');
  return { id: m[2]!, runtime: rt };
}

export interface ProcessRecord {
  pid: number;
  ppid: number;
  /** Name from status (same as comm) */
  name: string;
  state: string;
  /** real, effective, saved, filesystem */
  uid: number[];
  gid: number[];
  /** user name of the real uid from <root>/etc/passwd, else the uid as text */
  user: string;
  cmdline: string[];
  /** each argument that is not valid UTF-8, exactly, in base64 (index → bytes); absent when all are UTF-8 */
  cmdline_b64?: Record<string, string>;
  /** readlink of /proc/PID/exe exactly as the kernel gives it; null for kernel threads or when unreadable */
  exe_link: string | null;
  /** exe_link's exact bytes in base64 when they are not UTF-8 (exe_link then shows them as \xHH) */
  exe_b64?: string;
  /** the executable's path: exe_link without the " (deleted)" suffix only when the file really is deleted */
  exe: string | null;
  /** nlink == 0 from stat of /proc/PID/exe (the suffix alone can be faked by a file name); null when unknown */
  exe_deleted: boolean | null;
  exe_dev: number | null;
  exe_ino: number | null;
  exe_size: number | null;
  cwd: string | null;
  root: string | null;
  netns: number | null;
  namespaces: NamespaceIds;
  /** /proc/PID/cgroup as read (one line per hierarchy; "0::/path" on cgroup v2) */
  cgroup: string[] | null;
  container: { id: string; runtime: string } | null;
  /** /proc/PID/environ as NAME=value strings, bounded; null when unreadable */
  environ: string[] | null;
  environ_truncated: boolean;
  kernel_thread: boolean;
  start_time: string | null;
  starttime_ticks: number;
  session: number;
  pgrp: number;
  tty_nr: number;
  threads: number;
  utime_ticks: number;
  stime_ticks: number;
  rss_pages: number;
  /** -1 when the fd directory could not be read */
  fd_count: number;
  socket_inodes: number[];
  /** open files, at most maxFdPaths of them, in fd order */
  fds: FdEntry[];
  fds_truncated: boolean;
  /** answered stat(/proc/N) but was missing from the /proc listing (read after the bracket) */
  hidden_from_listing?: true;
  /**
   * /proc/PID answered with another identity: the pid in its stat, or the Pid/Tgid of its
   * status, is not PID (a bind mount of /proc/OTHER over /proc/PID, or a hooked read).
   */
  identity_mismatch?: { stat_pid: number; status_pid: number | null; tgid: number | null };
  /** its /proc/PID is covered by a mount: read through /proc/TID of one of its threads instead */
  unmasked_via_tid?: number;
  /** exited between the bracket and the detail read: only what the bracket read is known */
  exited_after_bracket?: true;
  /** the pid was reused by another process between the bracket and the detail read (start times differ) */
  reused_after_bracket?: true;
  /** with reused_after_bracket: the fd links read in the bracket may be either process's, so none is kept */
  fds_unattributed?: true;
  status: Record<string, string>;
  /** /proc/PID/stat exactly as read */
  stat_raw: string;
}

export interface ReadProcessOptions {
  /** boot time (seconds since the epoch) from /proc/stat btime; null when unknown */
  btime: number | null;
  users: Map<number, string>;
  /** stop reading fd links after this many (a process can hold a million fds) */
  maxFds: number;
  /** fd paths kept per process (default 1024) */
  maxFdPaths?: number;
  /** bytes of /proc/PID/environ kept (default 32 KiB); 0 = not read */
  maxEnvironBytes?: number;
  /** ns/net links already read just before the bracket, so they are not read twice inside it */
  netLinks?: Map<number, string>;
  /** the time bound is reached: keep what the bracket read, read nothing more */
  bracketOnly?: boolean;
}

function tryLink(p: string, errors: CollectError[], quietENOENT: boolean): string | null {
  try {
    return fs.readlinkSync(p);
  } catch (err) {
    if (!(quietENOENT && isGone(err))) errors.push(toError(err, p, 'processes'));
    return null;
  }
}

/** Who holds a pid, read just before the core bracket: /proc/PID/stat (identity and start time). */
export interface ProcessIdentity {
  pid: number;
  statRaw: string;
  st: StatFields;
}

/** What the core bracket reads of one process: enough to identify it (stat) and map its sockets (fd links). */
export interface BracketRead extends ProcessIdentity, FdRead {}

/**
 * Just before the bracket: the stat line, for identity and start time. Returns null when the pid
 * is gone. Reading it here and not inside the bracket keeps the bracket to the fd links; the
 * detail read after the bracket compares the start time again (completeProcess), so a pid that
 * changed hands in between is caught.
 */
export function readProcessIdentity(procRoot: string, pid: number, errors: CollectError[]): ProcessIdentity | null {
  const base = `${procRoot}/${pid}`;
  try {
    const statRaw = decodeLossless(readProcScratch(`${base}/stat`)).trimEnd();
    return { pid, statRaw, st: parseStat(statRaw) };
  } catch (err) {
    if (!isGone(err)) errors.push(toError(err, `${base}/stat`, 'processes'));
    return null;
  }
}

/** The fd part of a bracket read. */
export interface FdRead {
  fdCount: number;
  /** fd number and link target, up to maxFds */
  fdLinks: Array<[number, string]>;
  sockets: number[];
}

/**
 * Inside the bracket: the fd links of process `pid`, identified just before, into an arena
 * (bytes only, decoded after the bracket). `opened` is a descriptor from openFdDir. Returns the
 * number of fds listed (-1 when the folder could not be read), or null when the process is gone
 * (its sockets went with it).
 */
export function readFdsInto(
  procRoot: string,
  pid: number,
  maxFds: number,
  errors: CollectError[],
  arena: FdLinkArena,
  opened: number | null = null,
): number | null {
  let fdCount = -1;
  try {
    fdCount = readFdLinksInto(opened === null ? `${procRoot}/${pid}/fd` : '', maxFds, arena, opened);
  } catch (err) {
    const dir = `${procRoot}/${pid}/fd`;
    if (isGone(err)) {
      if (opened !== null) return null; // the held folder belongs to a process that has exited
      // gone with its sockets, unless only the fd folder is missing (a copied tree, an odd kernel)
      if (!fs.existsSync(`${procRoot}/${pid}/stat`)) return null;
    } else errors.push(toError(err, dir, 'processes'));
  }
  if (fdCount > maxFds)
    errors.push({ path: `${procRoot}/${pid}/fd`, code: 'ETOOMANY', message: `${fdCount} fds, read the first ${maxFds}`, artifact: 'processes' });
  return fdCount;
}

/** Identity and fd links in one go (the hidden-pid and tid reads after the bracket, tests). */
export function readProcessBracket(procRoot: string, pid: number, maxFds: number, errors: CollectError[]): BracketRead | null {
  const id = readProcessIdentity(procRoot, pid, errors);
  if (!id) return null;
  const arena = new FdLinkArena();
  const fdCount = readFdsInto(procRoot, pid, maxFds, errors, arena);
  return fdCount === null ? null : { ...id, fdCount, ...arena.take(0, arena.size) };
}

function readEnviron(file: string, maxBytes: number, errors: CollectError[]): { env: string[] | null; truncated: boolean } {
  try {
    const r = readBounded(file, maxBytes);
    return { env: parseCmdline(r.data), truncated: r.truncated };
  } catch (err) {
    if (!isGone(err)) errors.push(toError(err, file, 'processes'));
    return { env: null, truncated: false };
  }
}

/** Arguments that are not valid UTF-8, exactly (decodeLossless escapes them in cmdline). */
function nonUtf8Args(buf: Buffer): Record<string, string> | undefined {
  if (isUtf8(buf)) return undefined;
  const out: Record<string, string> = {};
  const end = buf.length && buf[buf.length - 1] === 0 ? buf.length - 1 : buf.length;
  let start = 0;
  let idx = 0;
  for (let i = 0; i <= end; i++) {
    if (i === end || buf[i] === 0) {
      const a = buf.subarray(start, i);
      if (!isUtf8(a)) out[String(idx)] = a.toString('base64');
      idx++;
      start = i + 1;
    }
  }
  return out;
}

/**
 * After the bracket: the rest of the process (status, cmdline, exe, cwd, root, namespaces,
 * cgroup, environ), matched to the bracket's read by pid + start time. A process that exited
 * meanwhile keeps what the bracket read (its sockets still have an owner); a reused pid is
 * flagged and its details are not taken from the newcomer.
 */
export function completeProcess(procRoot: string, b: BracketRead, opts: ReadProcessOptions, errors: CollectError[]): ProcessRecord {
  const { pid, st, statRaw } = b;
  const base = `${procRoot}/${pid}`;
  const maxFdPaths = opts.maxFdPaths ?? 1024;
  const fds: FdEntry[] = b.fdLinks.slice(0, maxFdPaths).map(([fd, target]) => {
    const e: FdEntry = { fd, target, kind: fdKind(target) };
    // The bracket read it as a string (fast); a name that is not UTF-8 is re-read as bytes.
    if (target.includes('\uFFFD')) {
      try {
        const raw = fs.readlinkSync(`${base}/fd/${fd}`, { encoding: 'buffer' });
        if (!isUtf8(raw)) {
          e.target = pathToText(raw);
          e.target_b64 = raw.toString('base64');
        }
      } catch {
        // closed meanwhile: keep what the bracket read
      }
    }
    return e;
  });
  const rec: ProcessRecord = {
    pid,
    ppid: st.ppid,
    name: st.comm,
    state: st.state,
    uid: [],
    gid: [],
    user: '',
    cmdline: [],
    exe_link: null,
    exe: null,
    exe_deleted: null,
    exe_dev: null,
    exe_ino: null,
    exe_size: null,
    cwd: null,
    root: null,
    netns: null,
    namespaces: { pid: null, mnt: null, net: null, user: null, uts: null, ipc: null, cgroup: null },
    cgroup: null,
    container: null,
    environ: null,
    environ_truncated: false,
    kernel_thread: (st.flags & PF_KTHREAD) !== 0,
    start_time: opts.btime === null ? null : new Date((opts.btime + st.starttime / CLK_TCK) * 1000).toISOString(),
    starttime_ticks: st.starttime,
    session: st.session,
    pgrp: st.pgrp,
    tty_nr: st.tty_nr,
    threads: st.num_threads,
    utime_ticks: st.utime,
    stime_ticks: st.stime,
    rss_pages: st.rss_pages,
    fd_count: b.fdCount,
    socket_inodes: b.sockets,
    fds,
    fds_truncated: b.fdLinks.length > maxFdPaths || (b.fdCount >= 0 && b.fdCount > b.fdLinks.length),
    status: {},
    stat_raw: statRaw,
  };
  const netLink = opts.netLinks?.get(pid);
  if (netLink !== undefined) rec.netns = nsInode(netLink);
  if (st.pid !== pid) rec.identity_mismatch = { stat_pid: st.pid, status_pid: null, tgid: null };

  if (opts.bracketOnly) return rec;
  // Same process as in the bracket? (a pid is only reused after its process is gone)
  try {
    const again = parseStat(decodeLossless(readProcScratch(`${base}/stat`)));
    if (again.starttime !== st.starttime) {
      // The fd links were read between the two stat reads: they may be either holder's.
      rec.reused_after_bracket = true;
      rec.fds_unattributed = true;
      rec.fds = [];
      rec.socket_inodes = [];
      return rec;
    }
  } catch (err) {
    if (isGone(err)) {
      rec.exited_after_bracket = true;
      return rec;
    }
    errors.push(toError(err, `${base}/stat`, 'processes'));
  }

  let status: Record<string, string> = {};
  try {
    status = parseStatus(readProcScratch(`${base}/status`).toString('utf8'));
  } catch (err) {
    if (!isGone(err)) errors.push(toError(err, `${base}/status`, 'processes'));
  }
  const statusPid = status['Pid'] !== undefined ? Number(status['Pid']) : null;
  const tgid = status['Tgid'] !== undefined ? Number(status['Tgid']) : null;
  if (st.pid !== pid || (statusPid !== null && statusPid !== pid) || (tgid !== null && tgid !== pid))
    rec.identity_mismatch = { stat_pid: st.pid, status_pid: statusPid, tgid };
  try {
    const buf = Buffer.from(readProcScratch(`${base}/cmdline`));
    rec.cmdline = parseCmdline(buf);
    const b64 = nonUtf8Args(buf);
    if (b64) rec.cmdline_b64 = b64;
  } catch (err) {
    if (!isGone(err)) errors.push(toError(err, `${base}/cmdline`, 'processes'));
  }
  // Kernel threads and zombies have no exe/cwd: ENOENT there is expected, not an error.
  let exeLink: string | null = null;
  try {
    const raw = fs.readlinkSync(`${base}/exe`, { encoding: 'buffer' });
    exeLink = pathToText(raw);
    if (!isUtf8(raw)) rec.exe_b64 = raw.toString('base64');
  } catch (err) {
    if (!isGone(err)) errors.push(toError(err, `${base}/exe`, 'processes'));
  }
  if (exeLink !== null) {
    try {
      const es = fs.statSync(`${base}/exe`);
      rec.exe_deleted = es.nlink === 0;
      rec.exe_dev = es.dev;
      rec.exe_ino = es.ino;
      rec.exe_size = es.size;
    } catch (err) {
      if (!isGone(err)) errors.push(toError(err, `${base}/exe`, 'processes'));
    }
  }
  rec.exe_link = exeLink;
  rec.exe = exeLink !== null && rec.exe_deleted === true && exeLink.endsWith(' (deleted)') ? exeLink.slice(0, -' (deleted)'.length) : exeLink;
  rec.cwd = tryLink(`${base}/cwd`, errors, true);
  rec.root = tryLink(`${base}/root`, errors, true);
  for (const k of NS_KINDS) {
    const link = k === 'net' && netLink !== undefined ? netLink : tryLink(`${base}/ns/${k}`, errors, true);
    rec.namespaces[k] = link === null ? null : nsInode(link);
  }
  rec.netns = rec.namespaces.net;
  try {
    const cg = readProcScratch(`${base}/cgroup`).toString('utf8');
    rec.cgroup = cg.split('\n').filter(Boolean);
    for (const line of rec.cgroup) {
      const c = containerFromCgroup(line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1));
      if (c) {
        rec.container = c;
        break;
      }
    }
  } catch (err) {
    if (!isGone(err)) errors.push(toError(err, `${base}/cgroup`, 'processes'));
  }
  if (!rec.kernel_thread && opts.maxEnvironBytes !== 0) {
    const env = readEnviron(`${base}/environ`, opts.maxEnvironBytes ?? 32 << 10, errors);
    rec.environ = env.env;
    rec.environ_truncated = env.truncated;
  }

  const uid = ids(status['Uid']);
  const keep: Record<string, string> = {};
  for (const k of STATUS_KEEP) if (status[k] !== undefined) keep[k] = status[k]!;
  const realUid = uid[0];
  rec.ppid = status['PPid'] !== undefined ? Number(status['PPid']) : st.ppid;
  rec.name = status['Name'] ?? st.comm;
  rec.uid = uid;
  rec.gid = ids(status['Gid']);
  rec.user = realUid === undefined ? '' : (opts.users.get(realUid) ?? String(realUid));
  rec.status = keep;
  return rec;
}

/**
 * Read one process (bracket part and details back to back). Returns null when the pid is
 * gone; permission errors on parts of it are pushed to errors and the rest is kept.
 */
export function readProcess(procRoot: string, pid: number, opts: ReadProcessOptions, errors: CollectError[]): ProcessRecord | null {
  const b = readProcessBracket(procRoot, pid, opts.maxFds, errors);
  if (b === null) return null;
  const rec = completeProcess(procRoot, b, opts, errors);
  return rec.exited_after_bracket ? null : rec;
}

/** Numeric entries of the /proc directory listing (what readdir/getdents shows). */
export function listPids(procRoot: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync(procRoot)) {
    const c = name.charCodeAt(0);
    if (c >= 48 && c <= 57 && /^\d+$/.test(name)) out.push(Number(name));
  }
  return out.sort((a, b) => a - b);
}

export interface HiddenPid {
  pid: number;
  /** the thread that answered the probe, when it was a thread of the hidden process */
  found_via_tid: number | null;
  name: string | null;
  cmdline: string[] | null;
  exe: string | null;
}

export interface HiddenProbeResult {
  hidden: HiddenPid[];
  /** pids 1..probed_up_to were stat()ed */
  probed_up_to: number;
  /** where the probe meant to go: see limit_reason */
  limit: number;
  /** why the limit is where it is */
  limit_reason: string;
  pid_max: number | null;
  /** the last pid the kernel allocated in integ's pid namespace (ns_last_pid or /proc/loadavg) */
  last_pid: number | null;
  complete: boolean;
  /** tids that answered but belong to a listed process (normal threads) */
  threads_seen: number;
  /** pids named in some task's children file (the process tree walk, independent of the pid range) */
  children_walked: number;
  /** covered pids (something mounted over /proc/PID) with a thread whose own /proc/TID still shows the process */
  covered_via_tid: Array<{ pid: number; tid: number }>;
  duration_ms: number;
}

/**
 * Find pids that answer stat(/proc/N) but are missing from the /proc listing (a classic
 * getdents-hooking rootkit). /proc/TID also answers for every thread, so a hit counts only
 * when its thread group leader is not listed either. A second listing, taken after the
 * probe, excludes processes that simply started meanwhile.
 *
 * The range probed is what can have been allocated: pids are handed out upwards from the
 * last one (ns_last_pid) and wrap at pid_max, so until a wrap no pid above
 * max(last_pid, highest listed) exists and the probe stops there plus a margin. After a wrap
 * (last_pid below the highest listed pid) a hidden process may hold any pid: the whole range
 * up to pid_max is probed as far as the time bound allows, and `complete` says whether it got
 * there. `extra` (pids from the children walk) are checked whatever the range.
 */
export function probeHiddenPids(
  procRoot: string,
  listed: ReadonlySet<number>,
  opts: {
    pidMax: number | null;
    margin: number;
    stopAt: number;
    relist: () => number[];
    lastPid?: number | null;
    extra?: Iterable<number>;
    covered?: ReadonlySet<number>;
  },
): HiddenProbeResult {
  const t0 = performance.now();
  let maxListed = 0;
  for (const p of listed) if (p > maxListed) maxListed = p;
  const cap = opts.pidMax ?? 4194304;
  const lastPid = opts.lastPid ?? null;
  const extra = [...(opts.extra ?? [])];
  let highest = Math.max(maxListed, lastPid ?? 0);
  for (const e of extra) if (e > highest && e <= cap) highest = e;
  let limit: number;
  let limitReason: string;
  if (lastPid === null) {
    limit = Math.min(cap, highest + opts.margin);
    limitReason = `last allocated pid unknown: highest listed pid ${maxListed} + margin ${opts.margin}`;
  } else if (lastPid < maxListed) {
    limit = cap;
    limitReason = `pids have wrapped (last allocated ${lastPid} < highest listed ${maxListed}): any pid up to pid_max may be in use`;
  } else {
    limit = Math.min(cap, highest + opts.margin);
    limitReason = `no pid above the last allocated one (${lastPid}) can exist: probed to it + margin ${opts.margin}`;
  }
  const candidates = new Set<number>();
  let n = 1;
  for (; n <= limit; n++) {
    if ((n & 1023) === 0 && Date.now() >= opts.stopAt) break;
    if (listed.has(n)) continue;
    if (fs.statSync(`${procRoot}/${n}`, { throwIfNoEntry: false }) !== undefined) candidates.add(n);
  }
  const probedUpTo = n - 1;
  for (const e of extra) if (!listed.has(e) && e > probedUpTo) candidates.add(e);
  const later = new Set(opts.relist());
  const isListed = (p: number): boolean => listed.has(p) || later.has(p);
  const hidden = new Map<number, HiddenPid>();
  const coveredVia = new Map<number, number>();
  let threads = 0;
  for (const c of [...candidates].sort((a, b) => a - b)) {
    if (later.has(c)) continue;
    let status: Record<string, string>;
    try {
      status = parseStatus(fs.readFileSync(`${procRoot}/${c}/status`, 'utf8'));
    } catch {
      continue; // gone meanwhile
    }
    const tgid = Number(status['Tgid'] ?? c);
    if (tgid !== c && isListed(tgid)) {
      // A mount over /proc/PID covers that directory only: /proc/TID of its other threads still shows the process.
      if (opts.covered?.has(tgid) && !coveredVia.has(tgid)) coveredVia.set(tgid, c);
      threads++;
      continue;
    }
    if (hidden.has(tgid)) continue;
    let cmdline: string[] | null = null;
    let exe: string | null = null;
    let name: string | null = status['Name'] ?? null;
    try {
      cmdline = parseCmdline(fs.readFileSync(`${procRoot}/${tgid}/cmdline`));
    } catch {
      // keep null
    }
    try {
      exe = fs.readlinkSync(`${procRoot}/${tgid}/exe`);
    } catch {
      // keep null
    }
    if (tgid !== c) {
      try {
        name = parseStatus(fs.readFileSync(`${procRoot}/${tgid}/status`, 'utf8'))['Name'] ?? name;
      } catch {
        // keep the thread's name
      }
    }
    hidden.set(tgid, { pid: tgid, found_via_tid: tgid === c ? null : c, name, cmdline, exe });
  }
  // A pid reused by a new process after the second listing would look hidden: a hidden
  // process is missing from every listing, so one more settles it.
  if (hidden.size > 0) for (const p of opts.relist()) hidden.delete(p);
  return {
    hidden: [...hidden.values()],
    probed_up_to: probedUpTo,
    limit,
    limit_reason: limitReason,
    pid_max: opts.pidMax,
    last_pid: lastPid,
    complete: probedUpTo >= limit,
    threads_seen: threads,
    children_walked: extra.length,
    covered_via_tid: [...coveredVia].map(([pid, tid]) => ({ pid, tid })),
    duration_ms: round(performance.now() - t0),
  };
}

/** The last pid allocated in integ's pid namespace: /proc/sys/kernel/ns_last_pid, else field 5 of /proc/loadavg. */
export function readLastPid(procRoot: string): number | null {
  try {
    const v = Number(fs.readFileSync(`${procRoot}/sys/kernel/ns_last_pid`, 'utf8').trim());
    if (Number.isInteger(v) && v > 0) return v;
  } catch {
    // fall back to loadavg
  }
  try {
    const v = Number(fs.readFileSync(`${procRoot}/loadavg`, 'utf8').trim().split(/\s+/)[4]);
    if (Number.isInteger(v) && v > 0) return v;
  } catch {
    // unknown
  }
  return null;
}

/**
 * Every pid named in a children file (/proc/PID/task/TID/children) of the given processes,
 * following children of children: the process tree as the scheduler knows it, which a
 * filtered /proc listing does not change. Bounded by maxPids and the deadline.
 */
export function walkChildren(
  procRoot: string,
  roots: Iterable<number>,
  opts: { stopAt: number; maxPids: number },
): { pids: Set<number>; parentOf: Map<number, number>; complete: boolean; supported: boolean } {
  const seen = new Set<number>();
  const parentOf = new Map<number, number>();
  const queue = [...roots];
  const queued = new Set(queue);
  let supported = false;
  let complete = true;
  for (let i = 0; i < queue.length; i++) {
    if ((i & 63) === 0 && Date.now() >= opts.stopAt) {
      complete = false;
      break;
    }
    const pid = queue[i]!;
    let tasks: string[];
    try {
      tasks = fs.readdirSync(`${procRoot}/${pid}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      let text: string;
      try {
        text = fs.readFileSync(`${procRoot}/${pid}/task/${t}/children`, 'latin1');
        supported = true;
      } catch {
        continue;
      }
      for (const w of text.split(' ')) {
        const c = Number(w);
        if (!Number.isInteger(c) || c <= 0 || w.trim() === '') continue;
        seen.add(c);
        if (!parentOf.has(c)) parentOf.set(c, pid);
        if (!queued.has(c) && queue.length < opts.maxPids) {
          queued.add(c);
          queue.push(c);
        } else if (!queued.has(c)) complete = false;
      }
    }
  }
  return { pids: seen, parentOf, complete, supported };
}

/** A mount whose mount point is /proc/N or below it: it covers what /proc/N shows. */
export interface ProcMount {
  pid: number;
  mount_point: string;
  /** what is mounted there: the source's root inside its file system and its type */
  root: string;
  fs_type: string;
  source: string;
  /** the process whose children file names this pid (from the children walk), when known */
  parent?: { pid: number; name: string | null; exe: string | null };
}

/** Mount points over /proc/N or anything below it, from a mountinfo text (paths as the kernel escapes them). */
export function procMountsFrom(mountinfo: string, procRoot: string): ProcMount[] {
  const out: ProcMount[] = [];
  const prefixes = [...new Set(['/proc', procRoot])];
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 0) continue;
    const mp = f[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    for (const pre of prefixes) {
      const m = new RegExp(`^${pre.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/(\\d+)(?:/|$)`).exec(mp);
      if (m) {
        out.push({ pid: Number(m[1]), mount_point: mp, root: f[3]!, fs_type: f[sep + 1] ?? '', source: f[sep + 2] ?? '' });
        break;
      }
    }
  }
  return out;
}

/** Listed pids whose /proc/N directory is on another device than /proc itself (something is mounted over it). */
export function procDevMismatch(procRoot: string, pids: readonly number[]): Array<{ pid: number; dev: number; proc_dev: number }> {
  let procDev: number;
  try {
    procDev = fs.statSync(procRoot).dev;
  } catch {
    return [];
  }
  const out: Array<{ pid: number; dev: number; proc_dev: number }> = [];
  for (const pid of pids) {
    const st = fs.statSync(`${procRoot}/${pid}`, { throwIfNoEntry: false });
    if (st && st.dev !== procDev) out.push({ pid, dev: st.dev, proc_dev: procDev });
  }
  return out;
}

export function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
