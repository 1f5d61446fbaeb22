import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  decodeHexIPv4,
  decodeHexIPv6Plain,
  decodeHexIPv6Words,
  formatIPv6,
  parseInetTable,
  parsePacketTable,
  parseUnixTable,
} from '../../src/evidence/collectors/net.js';
import { PROC } from './collect-helpers.js';

const recorded = (f: string): string => fs.readFileSync(path.join(PROC, 'net', f), 'utf8');

describe('address decoding', () => {
  it('reads IPv4 as a little-endian word', () => {
    expect(decodeHexIPv4('0100007F')).toBe('127.0.0.1');
    expect(decodeHexIPv4('0F02000A')).toBe('10.0.2.15');
    expect(decodeHexIPv4('00000000')).toBe('0.0.0.0');
    expect(() => decodeHexIPv4('123')).toThrow();
  });

  it('reads tcp6 addresses as four little-endian words', () => {
    expect(decodeHexIPv6Words('00000000000000000000000000000000')).toBe('::');
    expect(decodeHexIPv6Words('00000000000000000000000001000000')).toBe('::1');
    expect(decodeHexIPv6Words('B80D0120000000000000000001000000')).toBe('2001:db8::1');
    expect(decodeHexIPv6Words('0000000000000000FFFF00000100007F')).toBe('::ffff:127.0.0.1');
    expect(decodeHexIPv6Words('000080FE000000002E5A9CA1FF0000FE')).toBe('fe80::a19c:5a2e:fe00:ff');
    expect(decodeHexIPv6Words('B80D01200000A3852E8A000034737003')).toBe('2001:db8:85a3::8a2e:370:7334');
  });

  it('reads ipv6_route addresses in network order (not word-swapped)', () => {
    expect(decodeHexIPv6Plain('20010db8000000000000000000000001')).toBe('2001:db8::1');
    expect(decodeHexIPv6Plain('fe80000000000000a19c5a2efe0000ff')).toBe('fe80::a19c:5a2e:fe00:ff');
  });

  it('writes RFC 5952 text: the first of equally long zero runs is compressed, single zeros are not', () => {
    const b = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex, 'hex'));
    expect(formatIPv6(b('20010db8000000000001000000000001'))).toBe('2001:db8::1:0:0:1');
    expect(formatIPv6(b('20010db8000000010001000100010001'))).toBe('2001:db8:0:1:1:1:1:1');
    expect(formatIPv6(b('00000000000000000000000000000000'))).toBe('::');
    expect(formatIPv6(b('fe800000000000000000000000000000'))).toBe('fe80::');
  });
});

describe('parseInetTable on recorded /proc/net files', () => {
  it('decodes tcp: LISTEN, ESTABLISHED and TIME_WAIT with inode 0', () => {
    const { rows, bad } = parseInetTable(recorded('tcp'), 'tcp');
    expect(bad).toEqual([]);
    expect(rows).toHaveLength(4);
    expect(rows[0]).toMatchObject({ local: { addr: '127.0.0.1', port: 3306 }, remote: { addr: '0.0.0.0', port: 0 }, state: 'LISTEN', uid: 112, inode: 1001 });
    expect(rows[1]).toMatchObject({ local: { addr: '10.0.2.15', port: 22 }, remote: { addr: '10.0.2.2', port: 50000 }, state: 'ESTABLISHED', inode: 2004 });
    expect(rows[2]).toMatchObject({ state: 'TIME_WAIT', state_code: 6, inode: 0, remote: { addr: '10.0.2.3', port: 0xd431 } });
  });

  it('decodes tcp6 with IPv6 and IPv4-mapped addresses', () => {
    const { rows, bad } = parseInetTable(recorded('tcp6'), 'tcp6');
    expect(bad).toEqual([]);
    expect(rows.map((r) => [r.local.addr, r.local.port, r.state, r.inode])).toEqual([
      ['::', 22, 'LISTEN', 2002],
      ['::ffff:127.0.0.1', 8080, 'ESTABLISHED', 2010],
      ['2001:db8::1', 443, 'TIME_WAIT', 0],
      ['2001:db8::1:0:0:1', 80, 'LISTEN', 2011],
    ]);
    expect(rows[2]!.remote).toEqual({ addr: 'fe80::a19c:5a2e:fe00:ff', port: 0xc001 });
  });

  it('names UDP states as ss does and keeps the raw protocol number as port', () => {
    const udp = parseInetTable(recorded('udp'), 'udp').rows;
    expect(udp.map((r) => [r.local.port, r.state])).toEqual([
      [53, 'UNCONN'],
      [40000, 'ESTABLISHED'],
    ]);
    expect(udp[1]!.remote).toEqual({ addr: '8.8.8.8', port: 53 });
    expect(parseInetTable(recorded('raw'), 'raw').rows[0]).toMatchObject({ local: { port: 1 }, state: 'UNCONN', inode: 2020 });
    expect(parseInetTable(recorded('udp6'), 'udp6').rows).toEqual([]);
  });

  it('returns unparsable lines instead of dropping them', () => {
    const text = `${recorded('tcp')}   9: garbage line\n`;
    const { rows, bad } = parseInetTable(text, 'tcp');
    expect(rows).toHaveLength(4);
    expect(bad).toEqual(['   9: garbage line']);
  });
});

describe('unix and packet tables', () => {
  it('keeps paths with spaces, abstract names and unbound sockets', () => {
    const { rows, bad } = parseUnixTable(recorded('unix'));
    expect(bad).toEqual([]);
    expect(rows).toEqual([
      { inode: 3001, type: 'STREAM', state: 'UNCONNECTED', listening: true, path: '/run/my socket.sock', ref_count: 2 },
      { inode: 3002, type: 'DGRAM', state: 'UNCONNECTED', listening: false, path: '@abstract', ref_count: 2 },
      { inode: 3003, type: 'STREAM', state: 'CONNECTED', listening: false, path: null, ref_count: 3 },
    ]);
  });

  it('reads packet sockets (an ETH_P_ALL sniffer)', () => {
    expect(parsePacketTable(recorded('packet')).rows).toEqual([{ inode: 4001, type: 'RAW', protocol: '0x0003', ifindex: 2, running: true, uid: 0 }]);
  });
});
