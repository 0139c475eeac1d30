import { describe, expect, it } from 'vitest';
import { netaddrMatch, parseNetAddr } from '../../src/table/match-netaddr.ts';

describe('netaddrMatch (netaddr service)', () => {
  it.each([
    // client address, table entry, matches?
    ['192.168.1.1', '192.168.1.1', true],
    ['192.168.1.2', '192.168.1.1', false],
    ['192.168.1.77', '192.168.1.0/24', true],
    ['192.168.2.1', '192.168.1.0/24', false],
    ['192.168.1.255', '192.168.1.0/24', true],
    ['10.1.2.3', '10.0.0.0/8', true],
    ['11.0.0.0', '10.0.0.0/8', false],
    ['10.0.0.5', '10.0.0.0', false], // four octets and no /bits: a single host
    ['10.200.0.5', '10', true], // one octet: class A, /8
    ['172.16.9.9', '172.16', true], // two octets: /16
    ['192.168.1.9', '192.168.1', true], // three octets: /24
    ['192.168.2.9', '192.168.1', false],
    ['1.2.3.4', '0.0.0.0/0', true],
    ['172.31.255.255', '172.16.0.0/12', true],
    ['172.32.0.0', '172.16.0.0/12', false],
    ['192.0.2.129', '192.0.2.128/25', true],
    ['192.0.2.127', '192.0.2.128/25', false],
    ['192.0.2.1', '192.0.2.1/32', true],
    ['192.0.2.1', '192.0.2.0/33', false], // not a network
    ['192.0.2.1', '192.0.2.256', false],
    ['[::1]', '::1', true],
    ['[::1]', 'ipv6:::1', true],
    ['[::1]', 'IPv6:::1', true],
    ['[::1]', '[::1]', true],
    ['[::2]', '::1', false],
    ['[2001:db8::1]', '2001:db8::/32', true],
    ['[2001:db9::1]', '2001:db8::/32', false],
    ['[2001:db8:ffff:ffff::1]', '2001:db8::/32', true],
    ['[fe80::1234]', 'fe80::/10', true],
    ['[febf::1]', 'fe80::/10', true],
    ['[fec0::1]', 'fe80::/10', false],
    ['[2001:db8::1]', '::/0', true],
    ['[2001:db8::1]', '2001:db8::1/128', true],
    ['[2001:db8::2]', '2001:db8::1/128', false],
    ['[2001:db8::1]', '2001:db8::/129', false],
    ['[::ffff:10.1.2.3]', '::ffff:10.0.0.0/104', true],
    ['10.1.2.3', '::ffff:10.0.0.0/104', false], // families differ
    ['[::1]', '0.0.0.0/0', false],
    ['local', 'local', true], // mail submitted on the host
    ['LOCAL', 'local', true],
    ['192.0.2.1', 'local', false],
    ['not-an-address', '0.0.0.0/0', false],
  ])('%j in %j: %s', (key, entry, expected) => {
    expect(netaddrMatch(key, entry)).toBe(expected);
  });

  it('reads networks into bytes and prefix lengths', () => {
    expect(parseNetAddr('192.168.1/24')).toEqual({ family: 4, bytes: Uint8Array.from([192, 168, 1, 0]), bits: 24 });
    expect(parseNetAddr('224.1')).toMatchObject({ family: 4, bits: 16 }); // class D is 4 bits, widened to the octets
    expect(parseNetAddr('[IPv6:2001:db8::]/48')).toBeUndefined(); // the /bits goes inside the brackets
    expect(parseNetAddr('[IPv6:2001:db8::/48]')).toMatchObject({ family: 6, bits: 48 });
    expect(parseNetAddr('fe80::1%em0')).toBeUndefined();
    expect(parseNetAddr('1.2.3.4/')).toBeUndefined();
    expect(parseNetAddr('1.2.3.4.5')).toBeUndefined();
  });
});
