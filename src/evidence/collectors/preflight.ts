/**
 * Step 1, preflight: the clocks and identity of the host, taken first so every later
 * timestamp can be placed against them. Artifact "system".
 */
import fs from 'node:fs';
import os from 'node:os';
import type { ArtifactOutput, CollectContext, CollectError } from '../types.js';
import { readProcFile, readRegular, toError, under } from './fsread.js';

/** btime (seconds since the epoch) from the text of /proc/stat. */
export function parseBtime(statText: string): number | null {
  const m = /^btime\s+(\d+)$/m.exec(statText);
  return m ? Number(m[1]) : null;
}

export function readBtime(procRoot: string): number | null {
  try {
    return parseBtime(fs.readFileSync(`${procRoot}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

export function parseUptime(text: string): { uptime_s: number; idle_s: number } | null {
  const f = text.trim().split(/\s+/);
  const up = Number(f[0]);
  const idle = Number(f[1]);
  return Number.isFinite(up) && Number.isFinite(idle) ? { uptime_s: up, idle_s: idle } : null;
}

function localtimeLink(fsRoot: string): string | null {
  try {
    return fs.readlinkSync(under(fsRoot, 'etc/localtime'));
  } catch {
    return null;
  }
}

export interface SystemArtifact {
  wall_clock: string;
  wall_clock_ms: number;
  /** process.hrtime.bigint() in ns, as text (it does not fit a JSON number) */
  monotonic_ns: string;
  uptime_s: number | null;
  idle_s: number | null;
  /** btime from /proc/stat */
  boot_time: string | null;
  boot_time_s: number | null;
  boot_id: string | null;
  machine_id: string | null;
  hostname: string;
  kernel: { release: string | null; version: string | null; proc_version: string | null };
  integ: { pid: number; ppid: number; argv: string[]; uid: number | null; euid: number | null; gid: number | null; egid: number | null; node: string };
  timezone: { tz_env: string | null; localtime_link: string | null };
  rtc: { readable: boolean; path: string; since_epoch_s: number | null; skew_s: number | null; note: string };
}

export async function collectPreflight(ctx: CollectContext, argv: string[]): Promise<ArtifactOutput> {
  const errors: CollectError[] = [];
  const raw: ArtifactOutput['raw'] = [];
  const wallMs = Date.now();
  const mono = process.hrtime.bigint();
  const P = ctx.procRoot;
  const text = (rel: string, rawName: string, optional = false): string | null => {
    const b = readProcFile(`${P}/${rel}`, errors, { optional, artifact: 'system' });
    if (b === null) return null;
    raw.push({ file: rawName, data: b });
    return b.toString('utf8');
  };
  const uptime = text('uptime', 'proc/uptime');
  const stat = text('stat', 'proc/stat');
  const bootId = text('sys/kernel/random/boot_id', 'proc/sys/kernel/random/boot_id');
  const hostname = text('sys/kernel/hostname', 'proc/sys/kernel/hostname');
  const release = text('sys/kernel/osrelease', 'proc/sys/kernel/osrelease');
  const version = text('sys/kernel/version', 'proc/sys/kernel/version');
  const procVersion = text('version', 'proc/version', true);

  let machineId: string | null = null;
  try {
    machineId = readRegular(under(ctx.fsRoot, 'etc/machine-id'), 4096).data.toString('utf8').trim() || null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') errors.push(toError(err, under(ctx.fsRoot, 'etc/machine-id'), 'system'));
  }

  // The RTC counts whole seconds: a skew of ±1 s is resolution, not drift.
  const rtcPath = `${ctx.sysRoot}/class/rtc/rtc0/since_epoch`;
  let rtc: SystemArtifact['rtc'] = {
    readable: false,
    path: rtcPath,
    since_epoch_s: null,
    skew_s: null,
    note: 'no RTC exposed (virtual machine or container?)',
  };
  try {
    const rtcNow = Date.now();
    const s = Number(fs.readFileSync(rtcPath, 'utf8').trim());
    if (Number.isFinite(s)) {
      raw.push({ file: 'sys/class/rtc/rtc0/since_epoch', data: Buffer.from(`${s}\n`) });
      rtc = {
        readable: true,
        path: rtcPath,
        since_epoch_s: s,
        skew_s: Math.round((s - rtcNow / 1000) * 1000) / 1000,
        note: 'skew = RTC - system clock in seconds; the RTC counts whole seconds, and one kept in local time shows the UTC offset as skew',
      };
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') {
      errors.push(toError(err, rtcPath, 'system'));
      rtc.note = `RTC not readable (${code})`;
    }
  }

  const up = uptime === null ? null : parseUptime(uptime);
  const btime = stat === null ? null : parseBtime(stat);
  const data: SystemArtifact = {
    wall_clock: new Date(wallMs).toISOString(),
    wall_clock_ms: wallMs,
    monotonic_ns: mono.toString(),
    uptime_s: up?.uptime_s ?? null,
    idle_s: up?.idle_s ?? null,
    boot_time: btime === null ? null : new Date(btime * 1000).toISOString(),
    boot_time_s: btime,
    boot_id: bootId?.trim() ?? null,
    machine_id: machineId,
    hostname: hostname?.trim() || os.hostname(),
    kernel: { release: release?.trim() ?? null, version: version?.trim() ?? null, proc_version: procVersion?.trim() ?? null },
    integ: {
      pid: process.pid,
      ppid: process.ppid,
      argv,
      uid: process.getuid?.() ?? null,
      euid: process.geteuid?.() ?? null,
      gid: process.getgid?.() ?? null,
      egid: process.getegid?.() ?? null,
      node: process.version,
    },
    // Intl would cost ~25 ms of ICU loading here; the zone is context, not evidence.
    timezone: { tz_env: process.env['TZ'] ?? null, localtime_link: localtimeLink(ctx.fsRoot) },
    rtc,
  };
  return {
    json: [
      {
        name: 'system',
        data,
        method:
          'Date.now, process.hrtime.bigint; read /proc/uptime, /proc/stat (btime), /proc/sys/kernel/{random/boot_id,hostname,osrelease,version}, /sys/class/rtc/rtc0/since_epoch',
      },
    ],
    raw,
    errors,
  };
}
