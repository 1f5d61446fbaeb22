/**
 * Reading one process from /proc/PID with synchronous calls (the core bracket must be
 * tight), the pid listing, and the probe for pids hidden from the listing.
 */
import fs from 'node:fs';
import type { CollectError } from '../types.js';
import { decodeLossless, isGone, readProcScratch, toError } from './fsread.js';

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
  const f = line.slice(close + 1).trim().split(/\s+/);
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
      out.push(decodeLossless(buf.subarray(start, i)));
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

const SOCKET_RE = /^socket:\[(\d+)\]$/;
/** status keys worth keeping per process (the rest is memory accounting) */
const STATUS_KEEP = ['State', 'Tgid', 'NSpid', 'TracerPid', 'Groups', 'Threads', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp'];

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
  /** readlink of /proc/PID/exe exactly as the kernel gives it; null for kernel threads or when unreadable */
  exe_link: string | null;
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
  /** answered stat(/proc/N) but was missing from the /proc listing (read after the bracket) */
  hidden_from_listing?: true;
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
  /** ns/net links already read just before the bracket, so they are not read twice inside it */
  netLinks?: Map<number, string>;
}

function tryLink(p: string, errors: CollectError[], quietENOENT: boolean): string | null {
  try {
    return fs.readlinkSync(p);
  } catch (err) {
    if (!(quietENOENT && isGone(err))) errors.push(toError(err, p, 'processes'));
    return null;
  }
}

/**
 * Read one process. Returns null when the pid is gone (exited between listing and
 * reading); permission errors on parts of it are pushed to errors and the rest is kept.
 */
export function readProcess(procRoot: string, pid: number, opts: ReadProcessOptions, errors: CollectError[]): ProcessRecord | null {
  const base = `${procRoot}/${pid}`;
  let statRaw: string;
  let st: StatFields;
  try {
    statRaw = decodeLossless(readProcScratch(`${base}/stat`)).trimEnd();
    st = parseStat(statRaw);
  } catch (err) {
    if (isGone(err)) return null;
    errors.push(toError(err, `${base}/stat`, 'processes'));
    return null;
  }
  let status: Record<string, string> = {};
  try {
    status = parseStatus(readProcScratch(`${base}/status`).toString('utf8'));
  } catch (err) {
    if (isGone(err)) return null;
    errors.push(toError(err, `${base}/status`, 'processes'));
  }
  let cmdline: string[] = [];
  try {
    cmdline = parseCmdline(readProcScratch(`${base}/cmdline`));
  } catch (err) {
    if (isGone(err)) return null;
    errors.push(toError(err, `${base}/cmdline`, 'processes'));
  }
  const kernelThread = (st.flags & PF_KTHREAD) !== 0;
  // Kernel threads and zombies have no exe/cwd: ENOENT there is expected, not an error.
  const exeLink = tryLink(`${base}/exe`, errors, true);
  let deleted: boolean | null = null;
  let exeDev: number | null = null;
  let exeIno: number | null = null;
  let exeSize: number | null = null;
  if (exeLink !== null) {
    try {
      const es = fs.statSync(`${base}/exe`);
      deleted = es.nlink === 0;
      exeDev = es.dev;
      exeIno = es.ino;
      exeSize = es.size;
    } catch (err) {
      if (!isGone(err)) errors.push(toError(err, `${base}/exe`, 'processes'));
    }
  }
  const exe = exeLink !== null && deleted === true && exeLink.endsWith(' (deleted)') ? exeLink.slice(0, -' (deleted)'.length) : exeLink;
  const cwd = tryLink(`${base}/cwd`, errors, true);
  const root = tryLink(`${base}/root`, errors, true);
  const netLink = opts.netLinks?.get(pid) ?? tryLink(`${base}/ns/net`, errors, true);

  let fdCount = -1;
  const sockets: number[] = [];
  try {
    const fds = fs.readdirSync(`${base}/fd`);
    fdCount = fds.length;
    const n = Math.min(fds.length, opts.maxFds);
    for (let i = 0; i < n; i++) {
      let target: string;
      try {
        target = fs.readlinkSync(`${base}/fd/${fds[i]}`);
      } catch {
        continue; // closed meanwhile
      }
      if (target.charCodeAt(0) !== 115 /* s */) continue;
      const m = SOCKET_RE.exec(target);
      if (m) sockets.push(Number(m[1]));
    }
    if (fds.length > opts.maxFds)
      errors.push({ path: `${base}/fd`, code: 'ETOOMANY', message: `${fds.length} fds, read the first ${opts.maxFds}`, artifact: 'processes' });
  } catch (err) {
    if (!isGone(err)) errors.push(toError(err, `${base}/fd`, 'processes'));
  }

  const uid = ids(status['Uid']);
  const keep: Record<string, string> = {};
  for (const k of STATUS_KEEP) if (status[k] !== undefined) keep[k] = status[k]!;
  const realUid = uid[0];
  return {
    pid,
    ppid: status['PPid'] !== undefined ? Number(status['PPid']) : st.ppid,
    name: status['Name'] ?? st.comm,
    state: st.state,
    uid,
    gid: ids(status['Gid']),
    user: realUid === undefined ? '' : (opts.users.get(realUid) ?? String(realUid)),
    cmdline,
    exe_link: exeLink,
    exe,
    exe_deleted: deleted,
    exe_dev: exeDev,
    exe_ino: exeIno,
    exe_size: exeSize,
    cwd,
    root,
    netns: netLink === null ? null : nsInode(netLink),
    kernel_thread: kernelThread,
    start_time: opts.btime === null ? null : new Date((opts.btime + st.starttime / CLK_TCK) * 1000).toISOString(),
    starttime_ticks: st.starttime,
    session: st.session,
    pgrp: st.pgrp,
    tty_nr: st.tty_nr,
    threads: st.num_threads,
    utime_ticks: st.utime,
    stime_ticks: st.stime,
    rss_pages: st.rss_pages,
    fd_count: fdCount,
    socket_inodes: sockets,
    status: keep,
    stat_raw: statRaw,
  };
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
  /** where the probe meant to go: min(pid_max, max listed pid + margin) */
  limit: number;
  pid_max: number | null;
  complete: boolean;
  /** tids that answered but belong to a listed process (normal threads) */
  threads_seen: number;
  duration_ms: number;
}

/**
 * Find pids that answer stat(/proc/N) but are missing from the /proc listing (a classic
 * getdents-hooking rootkit). /proc/TID also answers for every thread, so a hit counts only
 * when its thread group leader is not listed either. A second listing, taken after the
 * probe, excludes processes that simply started meanwhile.
 */
export function probeHiddenPids(
  procRoot: string,
  listed: ReadonlySet<number>,
  opts: { pidMax: number | null; margin: number; stopAt: number; relist: () => number[] },
): HiddenProbeResult {
  const t0 = performance.now();
  let maxListed = 0;
  for (const p of listed) if (p > maxListed) maxListed = p;
  const cap = opts.pidMax ?? 4194304;
  const limit = Math.min(cap, maxListed + opts.margin);
  const candidates: number[] = [];
  let n = 1;
  for (; n <= limit; n++) {
    if ((n & 1023) === 0 && Date.now() >= opts.stopAt) break;
    if (listed.has(n)) continue;
    if (fs.statSync(`${procRoot}/${n}`, { throwIfNoEntry: false }) !== undefined) candidates.push(n);
  }
  const probedUpTo = n - 1;
  const later = new Set(opts.relist());
  const isListed = (p: number): boolean => listed.has(p) || later.has(p);
  const hidden = new Map<number, HiddenPid>();
  let threads = 0;
  for (const c of candidates) {
    if (later.has(c)) continue;
    let status: Record<string, string>;
    try {
      status = parseStatus(fs.readFileSync(`${procRoot}/${c}/status`, 'utf8'));
    } catch {
      continue; // gone meanwhile
    }
    const tgid = Number(status['Tgid'] ?? c);
    if (tgid !== c && isListed(tgid)) {
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
    pid_max: opts.pidMax,
    complete: probedUpTo >= limit,
    threads_seen: threads,
    duration_ms: round(performance.now() - t0),
  };
}

export function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
