import { describe, expect, it } from 'vitest';
import { passwordState, redactShadow } from '../../src/evidence/collectors/persistence.js';
import { ipv4Addresses, parseFibTrie } from '../../src/evidence/collectors/network-state.js';

describe('shadow redaction', () => {
  it("keeps each account's state and scheme, never the hash", () => {
    const text = 'root:$6$salt$abcdef:20000:0:99999:7:::\nbin:*:20000::::::\nold:!$y$j9T$xyz:1::::::\nnopw::1::::::\n# comment: x\n';
    const r = redactShadow(text);
    expect(r).toBe('root:$6$<redacted>:20000:0:99999:7:::\nbin:*:20000::::::\nold:!$y$<redacted>:1::::::\nnopw::1::::::\n# comment: x\n');
    expect(r).not.toMatch(/abcdef|xyz/);
    expect(passwordState('$6$salt$abc')).toEqual({ password: 'hash', scheme: '$6$' });
    expect(passwordState('!!')).toEqual({ password: 'locked', scheme: null });
    expect(passwordState('')).toEqual({ password: 'empty', scheme: null });
    expect(passwordState('abDEsalt123')).toEqual({ password: 'hash', scheme: 'des' });
    expect(passwordState(undefined)).toEqual({ password: 'none', scheme: null });
  });
});

describe('IPv4 addresses from /proc/net/fib_trie', () => {
  const trie = `Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 192.0.2.0/24 2 0 2
        +-- 192.0.2.0/30 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
     |-- 198.51.100.9
        /32 host LOCAL
`;
  it('takes the LOCAL /32 leaves and attributes them through the connected routes', () => {
    const fib = parseFibTrie(trie);
    expect(fib.local).toEqual(['192.0.2.2', '127.0.0.1', '198.51.100.9']);
    const routes = [{ family: 'inet' as const, iface: 'eth0', destination: '192.0.2.0', prefix_len: 24, gateway: null, metric: 0, flags: ['UP'] }];
    expect(ipv4Addresses(fib, routes)).toEqual([
      { address: '192.0.2.2', prefix_len: 24, iface: 'eth0' },
      { address: '127.0.0.1', prefix_len: 8, iface: 'lo' },
      { address: '198.51.100.9', prefix_len: null, iface: null },
    ]);
  });
});
