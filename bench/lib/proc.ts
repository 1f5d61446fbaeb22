import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** What one measured process run produced. */
export interface Measured {
  /** wall-clock seconds from spawn to exit, as seen by the bench */
  wallS: number;
  /** peak resident set size in MiB (the largest process of the tree), or null when unknown */
  peakRssMiB: number | null;
  /** how peakRssMiB was obtained */
  rssSource: 'time' | 'proc' | 'none';
  /** user + system CPU seconds of the process tree (GNU time), or null */
  cpuS: number | null;
  /** share of the machine's CPU time that other processes used just before this run (0..1) */
  busyBefore: number | null;
  exitCode: number;
  signal: NodeJS.Signals | null;
  /** files the child's stdout and stderr were written to */
  stdoutFile: string;
  stderrFile: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** where to put stdout/stderr/time files; a fresh temp dir when absent */
  scratch: string;
  /** basename of the stdout/stderr files */
  label: string;
}

const GNU_TIME = '/usr/bin/time';
let hasGnuTime: boolean | null = null;

/** GNU time with -f/-o (not the shell keyword, not BSD time). */
export function gnuTimeAvailable(): boolean {
  if (hasGnuTime !== null) return hasGnuTime;
  try {
    fs.accessSync(GNU_TIME, fs.constants.X_OK);
    const probe = path.join(os.tmpdir(), `integ-bench-time-probe-${process.pid}`);
    const r = spawnSyncQuiet(GNU_TIME, ['-f', '%M', '-o', probe, process.execPath, '-e', '']);
    hasGnuTime = r === 0 && /^\d+\s*$/m.test(fs.readFileSync(probe, 'utf8'));
    fs.rmSync(probe, { force: true });
  } catch {
    hasGnuTime = false;
  }
  return hasGnuTime;
}

function spawnSyncQuiet(cmd: string, args: string[]): number | null {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status;
}

function readVmHWM(pid: number): number | null {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Run a command, measuring wall time and peak RSS. Peak RSS comes from GNU time's %M
 * (ru_maxrss of the child and the descendants it waited for: for a Node process that covers
 * its worker threads, which share the process), else from polling /proc/PID/status VmHWM of
 * the direct child (which misses grandchildren, and a peak in the last poll interval).
 * stdout and stderr go to files, so large reports never sit in the bench's memory.
 */
export async function runMeasured(cmd: string, args: string[], opts: RunOptions): Promise<Measured> {
  fs.mkdirSync(opts.scratch, { recursive: true });
  const stdoutFile = path.join(opts.scratch, `${opts.label}.stdout`);
  const stderrFile = path.join(opts.scratch, `${opts.label}.stderr`);
  const timeFile = path.join(opts.scratch, `${opts.label}.time`);
  const out = fs.openSync(stdoutFile, 'w');
  const err = fs.openSync(stderrFile, 'w');
  const useTime = gnuTimeAvailable();
  const busyBefore = await machineBusy(300);
  const [file, argv] = useTime ? [GNU_TIME, ['-f', '%M %U %S', '-o', timeFile, cmd, ...args]] : [cmd, args];
  const t0 = process.hrtime.bigint();
  const child = spawn(file, argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', out, err] });
  let polled: number | null = null;
  const poll = useTime
    ? null
    : setInterval(() => {
        if (child.pid === undefined) return;
        const v = readVmHWM(child.pid);
        if (v !== null) polled = Math.max(polled ?? 0, v);
      }, 20);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (c, s) => resolve([c, s]));
  });
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  if (poll) clearInterval(poll);
  fs.closeSync(out);
  fs.closeSync(err);
  let peakKiB: number | null = polled;
  let rssSource: Measured['rssSource'] = polled !== null ? 'proc' : 'none';
  let cpuS: number | null = null;
  if (useTime) {
    try {
      // GNU time prefixes "Command exited with non-zero status N" on failure: take the last matching line.
      const lines = fs
        .readFileSync(timeFile, 'utf8')
        .split('\n')
        .map((l) => /^(\d+) ([\d.]+) ([\d.]+)$/.exec(l.trim()))
        .filter((m): m is RegExpExecArray => m !== null);
      const last = lines[lines.length - 1];
      if (last) {
        peakKiB = Number(last[1]);
        cpuS = Number(last[2]) + Number(last[3]);
        rssSource = 'time';
      }
    } catch {
      /* no time file: the command could not be started */
    }
  }
  return { wallS, peakRssMiB: peakKiB === null ? null : peakKiB / 1024, rssSource, cpuS, busyBefore, exitCode: code ?? 128, signal, stdoutFile, stderrFile };
}

function cpuTimes(): { busy: number; total: number } | null {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/**
 * How busy the machine is (0..1 of all cores) over the next `ms` milliseconds: a benchmark on
 * a machine shared with other work measures that work too, so each run records this.
 */
export async function machineBusy(ms: number): Promise<number | null> {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTimes();
  if (!a || !b || b.total === a.total) return null;
  return (b.busy - a.busy) / (b.total - a.total);
}

/** Wait (up to maxS seconds) until other processes use less than `threshold` of the machine. */
export async function waitIdle(threshold: number, maxS: number, log: (m: string) => void): Promise<number | null> {
  const until = Date.now() + maxS * 1000;
  let busy = await machineBusy(1000);
  let said = false;
  while (busy !== null && busy > threshold && Date.now() < until) {
    if (!said) log(`  machine busy (${(busy * 100).toFixed(0)}% CPU used by other processes): waiting up to ${maxS} s for it to settle …`);
    said = true;
    busy = await machineBusy(2000);
  }
  return busy;
}

/** The last few lines of a file, for error messages. */
export function tail(file: string, lines = 8): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Run a command and return its stdout (small outputs only: versions and such). */
export async function capture(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    let out = '';
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', () => resolve({ code: 127, out }));
    child.on('exit', (c) => resolve({ code: c ?? 128, out }));
  });
}
