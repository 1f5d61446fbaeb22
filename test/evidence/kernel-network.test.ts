import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collectKernel, decodeTaint, parseMountinfo, parseProcModules, unescapeOctal } from '../../src/evidence/collectors/kernel.js';
import { collectNetworkState, parseArp, parseNetDev, parseRouteV4, parseRouteV6 } from '../../src/evidence/collectors/network-state.js';
import { cleanupTmp, ctxFor, PROC, tmpDir } from './collect-helpers.js';

afterAll(cleanupTmp);

const fx = (rel: string): string => fs.readFileSync(path.join(PROC, rel), 'utf8');
const data = (out: { json: Array<{ name: string; data: unknown }> }, name: string): any => out.json.find((j) => j.name === name)!.data;

describe('kernel parsers', () => {
  it('parses /proc/modules with dependencies and taint letters', () => {
    expect(parseProcModules(fx('modules'))).toEqual([
      { name: 'nf_tables', size: 372736, refcount: 3, used_by: ['nft_chain_nat', 'nft_compat'], state: 'Live', taint: '' },
      { name: 'rootkitz', size: 16384, refcount: 0, used_by: [], state: 'Live', taint: 'OE' },
    ]);
  });

  it('decodes the taint mask bit by bit', () => {
    const t = decodeTaint(12288n);
    expect(t.flags.map((f) => f.letter)).toEqual(['O', 'E']);
    expect(t.unknown_bits).toEqual([]);
    expect(decodeTaint(0n).flags).toEqual([]);
    expect(decodeTaint((1n << 40n) | 1n)).toMatchObject({ flags: [expect.objectContaining({ letter: 'P' })], unknown_bits: [40] });
  });

  it('decodes octal escapes in mountinfo, including tab and backslash', () => {
    expect(unescapeOctal('/mnt/my\\040disk')).toBe('/mnt/my disk');
    const { mounts, bad } = parseMountinfo(fx('self/mountinfo'));
    expect(bad).toEqual([]);
    expect(mounts).toHaveLength(5);
    expect(mounts[3]).toMatchObject({
      mount_id: 61,
      parent_id: 22,
      dev: '8:17',
      mount_point: '/mnt/my disk',
      optional: ['shared:33', 'master:2'],
      fs_type: 'ext4',
      source: '/dev/sdb1',
    });
    expect(mounts[4]).toMatchObject({ mount_point: '/tmp/tab\tname', source: 'tmp\\fs', optional: [] });
  });
});

describe('collectKernel on the fake /proc and /sys', () => {
  it('flags a module listed in /proc/modules only and one in /sys/module only, ignoring built-ins', async () => {
    const out = await collectKernel(ctxFor());
    expect(out.errors).toEqual([]);
    const m = data(out, 'modules');
    expect(m.only_in_proc_modules).toEqual(['rootkitz']);
    expect(m.only_in_sys_module).toEqual(['hidden_mod']);
    expect(m.builtin_count).toBe(1); // printk: no initstate
    expect(m.modules.find((x: any) => x.name === 'nf_tables').sysfs).toMatchObject({ initstate: 'live', refcnt: '3' });
  });

  it('reports taint, mounts and ld.so.preload', async () => {
    const out = await collectKernel(ctxFor());
    expect(data(out, 'kernel')).toMatchObject({ tainted: true, taint: { value: '12288' }, sysctl: { kptr_restrict: '2' } });
    expect(data(out, 'mounts').count).toBe(5);
    const pre = data(out, 'ld_so_preload');
    expect(pre).toMatchObject({
      present: true,
      type: 'file',
      content: '/usr/lib/x86_64-linux-gnu/libprocesshider.so\n',
      entries: ['/usr/lib/x86_64-linux-gnu/libprocesshider.so'],
    });
    expect(pre.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(out.raw.map((r) => r.file)).toEqual(['proc/modules', 'proc/sys/kernel/tainted', 'proc/self/mountinfo', 'etc/ld.so.preload']);
  });

  it('records an absent ld.so.preload as absent, not as an error', async () => {
    const out = await collectKernel(ctxFor({ fsRoot: tmpDir('nopreload') }));
    expect(data(out, 'ld_so_preload')).toMatchObject({ present: false, content: null, entries: [] });
    expect(out.errors).toEqual([]);
  });

  it('says when the kernel has no loadable modules', async () => {
    const proc = tmpDir('nomods');
    fs.mkdirSync(path.join(proc, 'sys/kernel'), { recursive: true });
    fs.writeFileSync(path.join(proc, 'sys/kernel/tainted'), '0\n');
    const out = await collectKernel(ctxFor({ procRoot: proc, sysRoot: tmpDir('nosys') }));
    expect(data(out, 'modules')).toMatchObject({ supported: false, modules: [] });
    expect(data(out, 'kernel').tainted).toBe(false);
  });
});

describe('network state parsers', () => {
  it('decodes IPv4 routes (little-endian hex) with prefix length and flags', () => {
    expect(parseRouteV4(fx('net/route'))).toEqual([
      { family: 'inet', iface: 'eth0', destination: '0.0.0.0', prefix_len: 0, gateway: '10.0.2.2', metric: 100, flags: ['UP', 'GATEWAY'], mtu: 0 },
      { family: 'inet', iface: 'eth0', destination: '10.0.2.0', prefix_len: 24, gateway: null, metric: 100, flags: ['UP'], mtu: 0 },
    ]);
  });

  it('decodes IPv6 routes (network-order hex)', () => {
    const r = parseRouteV6(fx('net/ipv6_route'));
    expect(r.map((x) => [x.destination, x.prefix_len, x.gateway, x.iface])).toEqual([
      ['2001:db8::', 64, null, 'eth0'],
      ['::', 0, 'fe80::a19c:5a2e:fe00:ff', 'eth0'],
    ]);
  });

  it('reads neighbours and interface counters', () => {
    expect(parseArp(fx('net/arp')).map((n) => [n.ip, n.mac, n.state])).toEqual([
      ['10.0.2.2', '52:55:0a:00:02:02', 'COMPLETE'],
      ['10.0.2.9', '00:00:00:00:00:00', 'INCOMPLETE'],
    ]);
    const dev = parseNetDev(fx('net/dev'));
    // "eth0:12345678901" has no space after the colon
    expect(dev.get('eth0')).toMatchObject({ rx_bytes: 12345678901, rx_packets: 98765, rx_drop: 2, rx_multicast: 17, tx_bytes: 55555 });
    expect(dev.get('lo')!.tx_packets).toBe(29);
  });
});

describe('collectNetworkState', () => {
  it('joins /proc/net/dev with /sys/class/net and records the IPv6-neighbour gap', async () => {
    const out = await collectNetworkState(ctxFor());
    expect(out.errors).toEqual([]);
    const ifs = data(out, 'interfaces').interfaces;
    expect(ifs.map((i: any) => i.name)).toEqual(['eth0', 'lo']);
    expect(ifs[0]).toMatchObject({
      address: '02:42:ac:11:00:02',
      operstate: 'up',
      mtu: 1500,
      ifindex: 2,
      promiscuous: true,
      ipv6: [{ address: '2001:db8::1', prefix_len: 64, scope: 'global' }],
    });
    expect(ifs[1]).toMatchObject({ promiscuous: false, ipv6: [{ address: '::1', prefix_len: 128, scope: 'host' }] });
    expect(data(out, 'routes').routes).toHaveLength(4);
    expect(data(out, 'neighbours').notes.join(' ')).toMatch(/IPv6 neighbours/);
    expect(out.raw.map((r) => r.file)).toEqual(['proc/net/route', 'proc/net/ipv6_route', 'proc/net/arp', 'proc/net/dev', 'proc/net/if_inet6']);
  });
});
