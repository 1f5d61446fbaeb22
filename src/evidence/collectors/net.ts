/**
 * Parsers for the socket tables under /proc/net (and /proc/PID/net): tcp, tcp6, udp, udp6,
 * raw, raw6, unix, packet. Pure functions over the file text, so recorded samples in
 * fixtures/ test them.
 */

export type InetProto = 'tcp' | 'tcp6' | 'udp' | 'udp6' | 'raw' | 'raw6';
export const INET_PROTOS: readonly InetProto[] = ['tcp', 'tcp6', 'udp', 'udp6', 'raw', 'raw6'];
/** Every file of /proc/net the core bracket reads, in reading order. */
export const NET_FILES = ['tcp', 'tcp6', 'udp', 'udp6', 'raw', 'raw6', 'unix', 'packet'] as const;
export type NetFile = (typeof NET_FILES)[number];

/** include/net/tcp_states.h */
const TCP_STATES: Record<number, string> = {
  0x01: 'ESTABLISHED',
  0x02: 'SYN_SENT',
  0x03: 'SYN_RECV',
  0x04: 'FIN_WAIT1',
  0x05: 'FIN_WAIT2',
  0x06: 'TIME_WAIT',
  0x07: 'CLOSE',
  0x08: 'CLOSE_WAIT',
  0x09: 'LAST_ACK',
  0x0a: 'LISTEN',
  0x0b: 'CLOSING',
  0x0c: 'NEW_SYN_RECV',
};

/** State name as ss(8) would show it: UDP and raw sockets use only ESTABLISHED (connected) and CLOSE (UNCONN). */
export function stateName(proto: InetProto, code: number): string {
  if (!proto.startsWith('tcp')) {
    if (code === 0x07) return 'UNCONN';
    if (code === 0x01) return 'ESTABLISHED';
  }
  return TCP_STATES[code] ?? `UNKNOWN_${code.toString(16).toUpperCase().padStart(2, '0')}`;
}

export interface Endpoint {
  addr: string;
  /** for raw sockets the kernel prints the IP protocol number here */
  port: number;
}

export interface InetSocketRow {
  proto: InetProto;
  local: Endpoint;
  remote: Endpoint;
  state: string;
  state_code: number;
  tx_queue: number;
  rx_queue: number;
  uid: number;
  /** 0 for TIME_WAIT and request sockets: no file owns them */
  inode: number;
}

/** "0100007F" → "127.0.0.1": the kernel prints the 32-bit address as a host-order (little-endian) word. */
export function decodeHexIPv4(hex: string): string {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) throw new Error(`bad IPv4 hex "${hex}"`);
  const v = parseInt(hex, 16);
  return `${v & 0xff}.${(v >>> 8) & 0xff}.${(v >>> 16) & 0xff}.${(v >>> 24) & 0xff}`;
}

/**
 * tcp6/udp6/raw6 print the 16 address bytes as four 32-bit words, each in host order
 * (little-endian on x86_64 and arm64): reverse the bytes of every word.
 */
export function decodeHexIPv6Words(hex: string): string {
  if (!/^[0-9A-Fa-f]{32}$/.test(hex)) throw new Error(`bad IPv6 hex "${hex}"`);
  const bytes = new Uint8Array(16);
  for (let w = 0; w < 4; w++) {
    const v = parseInt(hex.slice(w * 8, w * 8 + 8), 16);
    bytes[w * 4] = v & 0xff;
    bytes[w * 4 + 1] = (v >>> 8) & 0xff;
    bytes[w * 4 + 2] = (v >>> 16) & 0xff;
    bytes[w * 4 + 3] = (v >>> 24) & 0xff;
  }
  return formatIPv6(bytes);
}

/** ipv6_route and if_inet6 print the address bytes in network order. */
export function decodeHexIPv6Plain(hex: string): string {
  if (!/^[0-9A-Fa-f]{32}$/.test(hex)) throw new Error(`bad IPv6 hex "${hex}"`);
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return formatIPv6(bytes);
}

/** RFC 5952 text form: lower case, longest run (≥ 2) of zero groups as "::", IPv4-mapped as ::ffff:a.b.c.d. */
export function formatIPv6(bytes: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(((bytes[i * 2] ?? 0) << 8) | (bytes[i * 2 + 1] ?? 0));
  const isMapped = g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff;
  if (isMapped) return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hexs = g.map((x) => x.toString(16));
  if (bestLen < 2) return hexs.join(':');
  const head = hexs.slice(0, bestStart).join(':');
  const tail = hexs.slice(bestStart + bestLen).join(':');
  return `${head}::${tail}`;
}

function decodeEndpoint(field: string, v6: boolean): Endpoint {
  const colon = field.lastIndexOf(':');
  if (colon < 0) throw new Error(`bad address "${field}"`);
  const hexAddr = field.slice(0, colon);
  const hexPort = field.slice(colon + 1);
  if (!/^[0-9A-Fa-f]{1,4}$/.test(hexPort)) throw new Error(`bad port "${hexPort}"`);
  return { addr: v6 ? decodeHexIPv6Words(hexAddr) : decodeHexIPv4(hexAddr), port: parseInt(hexPort, 16) };
}

/** Lines that could not be parsed are returned as they are, never dropped silently. */
export interface Parsed<T> {
  rows: T[];
  bad: string[];
}

/** /proc/net/{tcp,tcp6,udp,udp6,raw,raw6}: one header line, then "sl: local remote st tx:rx tr:when retrnsmt uid timeout inode …". */
export function parseInetTable(text: string, proto: InetProto): Parsed<InetSocketRow> {
  const rows: InetSocketRow[] = [];
  const bad: string[] = [];
  const v6 = proto.endsWith('6');
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const f = line.trim().split(/\s+/);
    try {
      if (f.length < 10 || !/^\d+:$/.test(f[0]!)) throw new Error('short line');
      const [tx, rx] = f[4]!.split(':');
      const stateCode = parseInt(f[3]!, 16);
      const uid = Number(f[7]);
      const inode = Number(f[9]);
      if (!Number.isFinite(stateCode) || !Number.isInteger(uid) || !Number.isInteger(inode)) throw new Error('bad numbers');
      rows.push({
        proto,
        local: decodeEndpoint(f[1]!, v6),
        remote: decodeEndpoint(f[2]!, v6),
        state: stateName(proto, stateCode),
        state_code: stateCode,
        tx_queue: parseInt(tx ?? '0', 16),
        rx_queue: parseInt(rx ?? '0', 16),
        uid,
        inode,
      });
    } catch {
      bad.push(line);
    }
  }
  return { rows, bad };
}

export interface UnixSocketRow {
  inode: number;
  type: string;
  state: string;
  /** __SO_ACCEPTCON: a listening stream/seqpacket socket */
  listening: boolean;
  /** null when unbound; abstract names start with "@" as the kernel prints them */
  path: string | null;
  ref_count: number;
}

const UNIX_TYPES: Record<number, string> = { 1: 'STREAM', 2: 'DGRAM', 5: 'SEQPACKET' };
const UNIX_STATES: Record<number, string> = { 0: 'FREE', 1: 'UNCONNECTED', 2: 'CONNECTING', 3: 'CONNECTED', 4: 'DISCONNECTING' };
const UNIX_RE = /^([0-9A-Fa-f]+): ([0-9A-Fa-f]+) ([0-9A-Fa-f]+) ([0-9A-Fa-f]+) ([0-9A-Fa-f]+) ([0-9A-Fa-f]+) +(\d+)(?: (.*))?$/;

/** /proc/net/unix: "Num RefCount Protocol Flags Type St Inode Path"; the path is the rest of the line and may hold spaces. */
export function parseUnixTable(text: string): Parsed<UnixSocketRow> {
  const rows: UnixSocketRow[] = [];
  const bad: string[] = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    const m = UNIX_RE.exec(line);
    if (!m) {
      bad.push(line);
      continue;
    }
    const type = parseInt(m[5]!, 16);
    const st = parseInt(m[6]!, 16);
    rows.push({
      inode: Number(m[7]),
      type: UNIX_TYPES[type] ?? `TYPE_${type}`,
      state: UNIX_STATES[st] ?? `STATE_${st}`,
      listening: (parseInt(m[4]!, 16) & 0x10000) !== 0,
      path: m[8] === undefined || m[8] === '' ? null : m[8],
      ref_count: parseInt(m[2]!, 16),
    });
  }
  return { rows, bad };
}

export interface PacketSocketRow {
  inode: number;
  /** SOCK_RAW (3) or SOCK_DGRAM (2) */
  type: string;
  /** ethertype, e.g. 0x0003 ETH_P_ALL: a sniffer */
  protocol: string;
  ifindex: number;
  running: boolean;
  uid: number;
}

/** /proc/net/packet: "sk RefCnt Type Proto Iface R Rmem User Inode". */
export function parsePacketTable(text: string): Parsed<PacketSocketRow> {
  const rows: PacketSocketRow[] = [];
  const bad: string[] = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const f = line.trim().split(/\s+/);
    if (f.length < 9 || !/^\d+$/.test(f[8]!)) {
      bad.push(line);
      continue;
    }
    const type = Number(f[2]);
    rows.push({
      inode: Number(f[8]),
      type: type === 3 ? 'RAW' : type === 2 ? 'DGRAM' : `TYPE_${type}`,
      protocol: `0x${f[3]!.toLowerCase().padStart(4, '0')}`,
      ifindex: Number(f[4]),
      running: f[5] === '1',
      uid: Number(f[7]),
    });
  }
  return { rows, bad };
}
