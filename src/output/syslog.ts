import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import { UsageError } from '../util/errors.js';

/**
 * RFC 5424 syslog output. Targets: `unix:/dev/log` (the default; any local datagram or
 * stream socket), `udp://host:port`, `tcp://host:port` (RFC 6587 octet-counted framing).
 * Node has no AF_UNIX datagram sockets, so local sockets are written through util-linux's
 * logger(1) (Debian's essential bsdutils), which speaks RFC 5424 with structured data.
 */
export type SyslogTarget = { kind: 'unix'; path: string } | { kind: 'udp' | 'tcp'; host: string; port: number };

export const DEFAULT_SYSLOG = 'unix:/dev/log';

/** Our structured-data ID: RFC 5612's documentation enterprise number, as RFC 5424 requires name@number. */
export const SD_ID = 'integ@32473';

const FACILITIES: Record<string, number> = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};
export const SEVERITY_NAMES = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const;
export type SyslogSeverity = (typeof SEVERITY_NAMES)[number];

export function parseSyslogTarget(s: string): SyslogTarget {
  if (s.startsWith('unix:')) {
    const p = s.slice(5);
    if (!p.startsWith('/')) throw new UsageError(`--syslog ${s}: expected unix:/absolute/socket/path`);
    return { kind: 'unix', path: p };
  }
  const m = /^(udp|tcp):\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})$/.exec(s);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) throw new UsageError(`--syslog ${s}: expected unix:/dev/log, udp://HOST:PORT or tcp://HOST:PORT`);
  return { kind: m[1] as 'udp' | 'tcp', host: m[2]!.replace(/^\[|\]$/g, ''), port: Number(m[3]) };
}

export function parseFacility(s: string | undefined): number {
  if (s === undefined) return FACILITIES.daemon!;
  const f = FACILITIES[s];
  if (f === undefined) throw new UsageError(`syslog facility must be one of ${Object.keys(FACILITIES).join(', ')}, got "${s}"`);
  return f;
}

/** One message before framing. */
export interface SyslogMessage {
  severity: SyslogSeverity;
  msgid: string;
  /** structured-data parameters under SD_ID (values are escaped here) */
  params: [string, string][];
  text: string;
}

/** RFC 5424 §6.3.3: inside a PARAM-VALUE, '"', '\' and ']' are escaped with '\'. */
export function sdEscape(v: string): string {
  return v.replace(/["\\\]]/g, (c) => `\\${c}`);
}

const nilOr = (s: string, max: number): string => (s ? s.replace(/[^\x21-\x7e]/g, '_').slice(0, max) : '-');

/** The full RFC 5424 line: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG. */
export function formatRfc5424(m: SyslogMessage, o: { facility: number; hostname?: string; time?: Date; appName?: string; pid?: number }): string {
  const pri = o.facility * 8 + SEVERITY_NAMES.indexOf(m.severity);
  const sd = m.params.length ? `[${SD_ID}${m.params.map(([k, v]) => ` ${k}="${sdEscape(v)}"`).join('')}]` : '-';
  return `<${pri}>1 ${(o.time ?? new Date()).toISOString()} ${nilOr(o.hostname ?? os.hostname(), 255)} ${nilOr(o.appName ?? 'integ', 48)} ${o.pid ?? process.pid} ${nilOr(m.msgid, 32)} ${sd} ${m.text}`;
}

/** RFC 6587 octet counting: "LEN SP MSG". */
export function octetFrame(line: string): Buffer {
  const body = Buffer.from(line, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `), body]);
}

async function sendUdp(t: { host: string; port: number }, lines: string[]): Promise<void> {
  const sock = dgram.createSocket(net.isIPv6(t.host) ? 'udp6' : 'udp4');
  try {
    for (const l of lines) {
      await new Promise<void>((resolve, reject) => sock.send(Buffer.from(l, 'utf8'), t.port, t.host, (e) => (e ? reject(e) : resolve())));
    }
  } finally {
    sock.close();
  }
}

async function sendTcp(t: { host: string; port: number }, lines: string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const sock = net.connect({ host: t.host, port: t.port });
    sock.setTimeout(10_000, () => sock.destroy(new Error('timed out')));
    sock.once('error', reject);
    sock.once('connect', () => {
      sock.end(Buffer.concat(lines.map(octetFrame)));
    });
    sock.once('close', (hadError) => {
      if (!hadError) resolve();
    });
  });
}

function loggerArgs(m: SyslogMessage, path: string, facility: number): string[] {
  const fac = Object.entries(FACILITIES).find(([, v]) => v === facility)![0];
  const args = [
    '--socket',
    path,
    '--socket-errors=on',
    '--rfc5424=notq',
    '-t',
    'integ',
    `--id=${process.pid}`,
    '-p',
    `${fac}.${m.severity}`,
    '--msgid',
    m.msgid,
  ];
  if (m.params.length) {
    args.push('--sd-id', SD_ID);
    for (const [k, v] of m.params) args.push('--sd-param', `${k}="${sdEscape(v)}"`);
  }
  args.push('--', m.text);
  return args;
}

async function sendUnix(path: string, msgs: SyslogMessage[], facility: number): Promise<void> {
  for (const m of msgs) {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('logger', loggerArgs(m, path, facility), { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.once('error', (e) => reject(new Error(`cannot run logger(1): ${e.message}`)));
      child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(err.trim().split('\n')[0] || `logger exited ${code}`))));
    });
  }
}

/** Send messages; throws an Error that names the target when it cannot. */
export async function sendSyslog(target: string, msgs: SyslogMessage[], facility: number): Promise<void> {
  const t = parseSyslogTarget(target);
  try {
    if (t.kind === 'unix') await sendUnix(t.path, msgs, facility);
    else {
      const lines = msgs.map((m) => formatRfc5424(m, { facility }));
      await (t.kind === 'udp' ? sendUdp(t, lines) : sendTcp(t, lines));
    }
  } catch (e) {
    throw new Error(`syslog ${target}: ${(e as Error).message}`);
  }
}
