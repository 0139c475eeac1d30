/**
 * Network addresses for the `netaddr` service (`match from src <table>`):
 * reading `192.168.1.0/24`, `[2001:db8::]/32` or `ipv6:::1`, and testing
 * whether a client's address falls inside.
 */
import { isIPv6 } from 'node:net';
import { asciiLowercase } from './lowercase.ts';
import type { NetAddr } from './types.ts';

/**
 * Reads an address or network as OpenSMTPD's text_to_netaddr() (to.c) does:
 * an optional `ipv6:` prefix, then IPv4 in inet_net_pton(3) form, or IPv6
 * bare or in brackets, each with an optional `/bits`. Undefined if it is
 * neither.
 */
export function parseNetAddr(text: string): NetAddr | undefined {
  let s = stripPrefix(text, 'ipv6:');
  const v4 = parseInetNet4(s);
  if (v4) return v4;
  if (s.startsWith('[')) {
    if (!s.endsWith(']')) return undefined;
    s = stripPrefix(s.slice(1, -1), 'ipv6:');
  }
  return parseInetNet6(s);
}

function stripPrefix(s: string, prefix: string): string {
  return asciiLowercase(s.slice(0, prefix.length)) === prefix ? s.slice(prefix.length) : s;
}

/**
 * IPv4 as inet_net_pton(3) reads it: one to four decimal octets, then an
 * optional `/bits`. Without `/bits` the prefix length comes from the old
 * address classes, widened to cover every octet written: `10` is 10/8,
 * `192.168.1` is 192.168.1/24 — but `10.0.0.0` is a single host, /32.
 * (The hexadecimal form `0x0a` is not accepted here.)
 */
function parseInetNet4(s: string): NetAddr | undefined {
  const m = /^(\d+(?:\.\d+){0,3})(?:\/(\d+))?$/.exec(s);
  if (!m || m[1] === undefined) return undefined;
  const octets = m[1].split('.').map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  let bits: number;
  if (m[2] !== undefined) {
    bits = Number(m[2]);
    if (bits > 32) return undefined;
  } else {
    const first = octets[0] ?? 0;
    const classBits = first >= 240 ? 32 : first >= 224 ? 4 : first >= 192 ? 24 : first >= 128 ? 16 : 8;
    bits = Math.max(classBits, octets.length * 8);
  }
  const bytes = new Uint8Array(4);
  octets.forEach((o, i) => (bytes[i] = o));
  return { family: 4, bytes, bits };
}

/** IPv6 with an optional `/bits` (0 to 128); a scope (`%em0`) is not an address here. */
function parseInetNet6(s: string): NetAddr | undefined {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  let bits = 128;
  if (slash >= 0) {
    const b = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b) || Number(b) > 128) return undefined;
    bits = Number(b);
  }
  const bytes = ipv6Bytes(addr);
  return bytes && { family: 6, bytes, bits };
}

/** The 16 bytes of an IPv6 address, `::` and a dotted IPv4 tail included. */
export function ipv6Bytes(addr: string): Uint8Array | undefined {
  if (addr.includes('%') || !isIPv6(addr)) return undefined;
  let text = addr;
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (tail) {
    const [a, b, c, d] = tail.slice(1).map(Number) as [number, number, number, number];
    text = text.slice(0, tail.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const [head = '', rest] = text.split('::');
  const groupsOf = (part: string) => (part === '' ? [] : part.split(':'));
  const left = groupsOf(head);
  const right = rest === undefined ? [] : groupsOf(rest);
  const zeros: string[] = new Array<string>(8 - left.length - right.length).fill('0');
  const bytes = new Uint8Array(16);
  [...left, ...zeros, ...right].forEach((group, i) => {
    const n = parseInt(group, 16);
    bytes[2 * i] = n >> 8;
    bytes[2 * i + 1] = n & 0xff;
  });
  return bytes;
}

// #region cidr-match
/**
 * Is the client address `key` inside the table entry `entry`? As in
 * table_netaddr_match() (table.c): equal strings match outright (so an
 * entry `local` matches the key `local`, which is what the daemon passes
 * for mail submitted on the host); otherwise both are read as networks of
 * the same family, and the first `bits` bits of the entry's address —
 * its prefix length, not the key's — must equal the key's.
 */
export function netaddrMatch(key: string, entry: string): boolean {
  if (asciiLowercase(key) === asciiLowercase(entry)) return true;
  const addr = parseNetAddr(key);
  const net = parseNetAddr(entry);
  if (!addr || !net || addr.family !== net.family) return false;
  return prefixEqual(addr.bytes, net.bytes, net.bits);
}

/** Do `a` and `b` agree on their first `bits` bits? */
function prefixEqual(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  const whole = Math.floor(bits / 8);
  for (let i = 0; i < whole; i++) {
    if (a[i] !== b[i]) return false;
  }
  const rest = bits % 8;
  if (rest === 0) return true;
  const mask = (0xff00 >> rest) & 0xff; // rest=3 -> 0b11100000
  return (((a[whole] ?? 0) ^ (b[whole] ?? 0)) & mask) === 0;
}
// #endregion cidr-match
