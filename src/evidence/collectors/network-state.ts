/**
 * Step 4b, network state of integ's own network namespace: routes, IPv4 neighbours and
 * interfaces. Artifacts: routes, neighbours, interfaces.
 */
import fs from 'node:fs';
import type { ArtifactOutput, CollectContext, CollectError } from '../types.js';
import { errCode, readProcFile, toError } from './fsread.js';
import { decodeHexIPv4, decodeHexIPv6Plain } from './net.js';

const RTF: ReadonlyArray<[number, string]> = [
  [0x0001, 'UP'],
  [0x0002, 'GATEWAY'],
  [0x0004, 'HOST'],
  [0x0008, 'REINSTATE'],
  [0x0010, 'DYNAMIC'],
  [0x0020, 'MODIFIED'],
  [0x0200, 'REJECT'],
  [0x10000, 'DEFAULT'],
  [0x40000, 'ADDRCONF'],
  [0x80000, 'PREFIX_RT'],
  [0x1000000, 'CACHE'],
];

function routeFlags(v: number): string[] {
  return RTF.filter(([bit]) => (v & bit) !== 0).map(([, n]) => n);
}

function maskToPrefix(mask: string): number {
  // decodeHexIPv4 puts the bytes in network order; count the leading ones.
  let bits = 0;
  for (const octet of mask.split('.').map(Number)) {
    let o = octet;
    while (o & 0x80) {
      bits++;
      o = (o << 1) & 0xff;
    }
    if (octet !== 0xff) break;
  }
  return bits;
}

export interface Route {
  family: 'inet' | 'inet6';
  iface: string;
  destination: string;
  prefix_len: number;
  gateway: string | null;
  source?: string;
  metric: number;
  flags: string[];
  mtu?: number;
}

/** /proc/net/route: addresses as little-endian hex words, like the socket tables. */
export function parseRouteV4(text: string): Route[] {
  const out: Route[] = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/);
    if (f.length < 11) continue;
    const gw = decodeHexIPv4(f[2]!);
    out.push({
      family: 'inet',
      iface: f[0]!,
      destination: decodeHexIPv4(f[1]!),
      prefix_len: maskToPrefix(decodeHexIPv4(f[7]!)),
      gateway: gw === '0.0.0.0' ? null : gw,
      metric: Number(f[6]),
      flags: routeFlags(parseInt(f[3]!, 16)),
      mtu: Number(f[8]),
    });
  }
  return out;
}

/** /proc/net/ipv6_route: dst plen src plen nexthop metric refcnt use flags iface; addresses in network order. */
export function parseRouteV6(text: string): Route[] {
  const out: Route[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[0]!.length !== 32) continue;
    const nh = decodeHexIPv6Plain(f[4]!);
    out.push({
      family: 'inet6',
      iface: f[9]!,
      destination: decodeHexIPv6Plain(f[0]!),
      prefix_len: parseInt(f[1]!, 16),
      source: `${decodeHexIPv6Plain(f[2]!)}/${parseInt(f[3]!, 16)}`,
      gateway: nh === '::' ? null : nh,
      metric: parseInt(f[5]!, 16),
      flags: routeFlags(parseInt(f[8]!, 16)),
    });
  }
  return out;
}

export interface Neighbour {
  ip: string;
  hw_type: string;
  flags: string;
  state: string;
  mac: string;
  device: string;
}

/** /proc/net/arp: "IP address  HW type  Flags  HW address  Mask  Device". */
export function parseArp(text: string): Neighbour[] {
  const out: Neighbour[] = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/);
    if (f.length < 6) continue;
    const flags = parseInt(f[2]!, 16);
    out.push({
      ip: f[0]!,
      hw_type: f[1]!,
      flags: f[2]!,
      // ATF_COM 0x2 complete, ATF_PERM 0x4 static, ATF_PUBL 0x8 published (proxy)
      state: flags & 0x4 ? 'PERMANENT' : flags & 0x2 ? 'COMPLETE' : 'INCOMPLETE',
      mac: f[3]!,
      device: f[5]!,
    });
  }
  return out;
}

const DEV_FIELDS = [
  'rx_bytes',
  'rx_packets',
  'rx_errs',
  'rx_drop',
  'rx_fifo',
  'rx_frame',
  'rx_compressed',
  'rx_multicast',
  'tx_bytes',
  'tx_packets',
  'tx_errs',
  'tx_drop',
  'tx_fifo',
  'tx_colls',
  'tx_carrier',
  'tx_compressed',
] as const;

/** /proc/net/dev: two header lines, then "name: 16 counters" (the name cannot contain ':'). */
export function parseNetDev(text: string): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  const lines = text.split('\n');
  for (let i = 2; i < lines.length; i++) {
    const line = lines[i]!;
    const c = line.indexOf(':');
    if (c < 0) continue;
    const nums = line
      .slice(c + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    const rec: Record<string, number> = {};
    DEV_FIELDS.forEach((k, j) => (rec[k] = nums[j] ?? 0));
    out.set(line.slice(0, c).trim(), rec);
  }
  return out;
}

/** /proc/net/if_inet6: "addr ifindex prefixlen scope flags name". */
export function parseIfInet6(text: string): Array<{ iface: string; address: string; prefix_len: number; scope: string }> {
  const scopes: Record<number, string> = { 0x00: 'global', 0x10: 'host', 0x20: 'link', 0x40: 'site' };
  const out: Array<{ iface: string; address: string; prefix_len: number; scope: string }> = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || f[0]!.length !== 32) continue;
    const sc = parseInt(f[3]!, 16);
    out.push({ iface: f[5]!, address: decodeHexIPv6Plain(f[0]!), prefix_len: parseInt(f[2]!, 16), scope: scopes[sc] ?? `0x${sc.toString(16)}` });
  }
  return out;
}

export interface FibTrie {
  /** addresses of this host (the LOCAL leaves), in order of appearance, without duplicates */
  local: string[];
  /** networks reached directly (link-scope UNICAST leaves): address/prefix */
  links: Array<{ network: string; prefix_len: number }>;
}

/**
 * /proc/net/fib_trie: the kernel's IPv4 routing trie. Each leaf "|-- a.b.c.d" is followed by
 * lines "/len scope TYPE"; "/32 host LOCAL" marks an address assigned to this host. The
 * interface is not named there (that needs netlink): it is inferred from the routes.
 */
export function parseFibTrie(text: string): FibTrie {
  const local: string[] = [];
  const links: FibTrie['links'] = [];
  const seenLinks = new Set<string>();
  let leaf: string | null = null;
  for (const line of text.split('\n')) {
    const t = line.trim();
    const m = /^\|-- (\d+\.\d+\.\d+\.\d+)$/.exec(t);
    if (m) {
      leaf = m[1]!;
      continue;
    }
    const r = /^\/(\d+) (\S+) (\S+)/.exec(t);
    if (r && leaf !== null) {
      const len = Number(r[1]);
      if (r[3] === 'LOCAL' && len === 32 && !local.includes(leaf)) local.push(leaf);
      if (r[3] === 'UNICAST' && r[2] === 'link' && !seenLinks.has(`${leaf}/${len}`)) {
        seenLinks.add(`${leaf}/${len}`);
        links.push({ network: leaf, prefix_len: len });
      }
    } else if (!t.startsWith('/')) leaf = null;
  }
  return { local, links };
}

const ipv4ToInt = (a: string): number => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const inNet = (addr: string, net: string, len: number): boolean =>
  len === 0 || Math.floor(ipv4ToInt(addr) / 2 ** (32 - len)) === Math.floor(ipv4ToInt(net) / 2 ** (32 - len));

/** Each local IPv4 address with its prefix (from the link networks) and its interface (from the routes, lo for 127/8). */
export function ipv4Addresses(fib: FibTrie, routes: Route[]): Array<{ address: string; prefix_len: number | null; iface: string | null }> {
  return fib.local.map((address) => {
    const link = fib.links.filter((l) => inNet(address, l.network, l.prefix_len)).sort((a, b) => b.prefix_len - a.prefix_len)[0];
    const route = routes
      .filter((r) => r.family === 'inet' && r.gateway === null && inNet(address, r.destination, r.prefix_len))
      .sort((a, b) => b.prefix_len - a.prefix_len)[0];
    const iface = route?.iface ?? (address.startsWith('127.') ? 'lo' : null);
    return { address, prefix_len: link?.prefix_len ?? route?.prefix_len ?? (address.startsWith('127.') ? 8 : null), iface };
  });
}

function sysText(p: string): string | null {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return null;
  }
}

export async function collectNetworkState(ctx: CollectContext): Promise<ArtifactOutput> {
  const errors: CollectError[] = [];
  const raw: ArtifactOutput['raw'] = [];
  const P = ctx.procRoot;
  const read = (rel: string, artifact: string, optional = false): string | null => {
    const b = readProcFile(`${P}/${rel}`, errors, { optional, artifact });
    if (b === null) return null;
    raw.push({ file: `proc/${rel}`, data: b });
    return b.toString('utf8');
  };
  const parse = <T>(text: string | null, fn: (t: string) => T, file: string, artifact: string, empty: T): T => {
    if (text === null) return empty;
    try {
      return fn(text);
    } catch (err) {
      errors.push({ path: `${P}/${file}`, code: 'EPARSE', message: (err as Error).message, artifact });
      return empty;
    }
  };

  const r4 = read('net/route', 'routes');
  const r6 = read('net/ipv6_route', 'routes', true);
  const routes = [...parse(r4, parseRouteV4, 'net/route', 'routes', []), ...parse(r6, parseRouteV6, 'net/ipv6_route', 'routes', [])];

  const arp = read('net/arp', 'neighbours');
  const neighbours = parse(arp, parseArp, 'net/arp', 'neighbours', []);

  const devText = read('net/dev', 'interfaces');
  const counters = parse(devText, parseNetDev, 'net/dev', 'interfaces', new Map<string, Record<string, number>>());
  const inet6 = parse(read('net/if_inet6', 'interfaces', true), parseIfInet6, 'net/if_inet6', 'interfaces', []);
  const netDir = `${ctx.sysRoot}/class/net`;
  let sysIfaces: string[] = [];
  try {
    sysIfaces = fs.readdirSync(netDir);
  } catch (err) {
    if (errCode(err) !== 'ENOENT') errors.push(toError(err, netDir, 'interfaces'));
  }
  const fib = parse(read('net/fib_trie', 'interfaces', true), parseFibTrie, 'net/fib_trie', 'interfaces', { local: [], links: [] });
  const inet4 = ipv4Addresses(fib, routes);
  const names = [...new Set([...counters.keys(), ...sysIfaces])].sort();
  const interfaces = names.map((name) => {
    const d = `${netDir}/${name}`;
    const mtu = sysText(`${d}/mtu`);
    const ifindex = sysText(`${d}/ifindex`);
    return {
      name,
      ifindex: ifindex === null ? null : Number(ifindex),
      address: sysText(`${d}/address`),
      operstate: sysText(`${d}/operstate`),
      mtu: mtu === null ? null : Number(mtu),
      flags: sysText(`${d}/flags`),
      promiscuous: (() => {
        const f = sysText(`${d}/flags`);
        return f === null ? null : (parseInt(f, 16) & 0x100) !== 0; // IFF_PROMISC
      })(),
      in_proc_net_dev: counters.has(name),
      in_sys_class_net: sysIfaces.includes(name),
      ipv4: inet4.filter((a) => a.iface === name).map((a) => ({ address: a.address, prefix_len: a.prefix_len })),
      ipv6: inet6.filter((a) => a.iface === name).map((a) => ({ address: a.address, prefix_len: a.prefix_len, scope: a.scope })),
      counters: counters.get(name) ?? null,
    };
  });

  const nsNote = "integ's own network namespace only (other namespaces: see sockets.namespaces)";
  return {
    json: [
      { name: 'routes', data: { note: nsNote, routes }, method: 'read /proc/net/route (little-endian hex) and /proc/net/ipv6_route' },
      {
        name: 'neighbours',
        data: {
          note: nsNote,
          neighbours,
          ipv6_neighbours: null,
          notes: ['IPv6 neighbours (NDP cache) need netlink (ip -6 neigh): /proc has no readable table for them, so they are not collected'],
        },
        method: 'read /proc/net/arp',
      },
      {
        name: 'interfaces',
        data: {
          note: nsNote,
          interfaces,
          ipv4_unattributed: inet4.filter((a) => a.iface === null).map((a) => a.address),
          notes: [
            'IPv4 addresses come from /proc/net/fib_trie (LOCAL leaves); their interface is inferred from the directly connected routes (netlink would name it exactly): ipv4_unattributed lists those no route explains',
          ],
        },
        method:
          'read /proc/net/dev, /proc/net/fib_trie (IPv4 addresses), /proc/net/if_inet6 (IPv6 addresses); read /sys/class/net/*/{address,operstate,mtu,ifindex,flags}',
      },
    ],
    raw,
    errors,
  };
}
