/**
 * Turns the text a backend found into the typed answer of a service, as
 * OpenSMTPD's table_parse_lookup() (table.c) does. A backend stores text;
 * only here does `1000:100:/home/joe` become a UserInfo.
 *
 * Each reader throws a plain Error saying what is wrong with the text; the
 * Table adds which table and key it came from.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { parseAliasValue, splitTargets } from './alias-targets.ts';
import { parseMailAddr } from './match-mailaddr.ts';
import { ipv6Bytes, parseNetAddr } from './match-netaddr.ts';
import type { Credentials, LookupResults, RelayHost, Service, SourceAddress, UserInfo } from './types.ts';

type Reader<S extends Service> = (value: string, key: string) => LookupResults[S];

const READERS: { [S in Service]: Reader<S> } = {
  alias: (value) => parseAliasValue(value),
  domain: (value) => value,
  credentials: parseCredentials,
  netaddr: (value) => parseNetAddr(value) ?? fail(`${JSON.stringify(value)} is not an address or network`),
  userinfo: parseUserInfo,
  source: (value) => parseSourceAddress(value),
  mailaddr: (value) => parseMailAddr(value),
  mailaddrmap: (value) =>
    (splitTargets(value) ?? fail(`unbalanced quote in ${JSON.stringify(value)}`)).map(parseMailAddr),
  relayhost: parseRelayHost,
  addrname: (value, key) => ({ ...parseSourceAddress(key), name: value }),
  string: (value) => value,
  regex: (value) => value,
};

/** The typed answer of `service` for the text `value` found under `key`. */
export function parseValue<S extends Service>(service: S, value: string, key: string): LookupResults[S] {
  const read: Reader<S> = READERS[service];
  return read(value, key);
}

function fail(message: string): never {
  throw new Error(message);
}

/**
 * `user:password` (a relay's credentials under a label), or a password
 * alone, whose user is then the key (a listener's users and their hashes).
 */
function parseCredentials(value: string, key: string): Credentials {
  if (value.length < 3) fail('credentials shorter than 3 characters');
  const colon = value.indexOf(':');
  if (colon < 0) return { user: key, password: value };
  if (colon === 0 || colon === value.length - 1) fail(`credentials ${JSON.stringify(value)} are not user:password`);
  return { user: value.slice(0, colon), password: value.slice(colon + 1) };
}

/** `uid:gid:home`; the user is the key (text_to_userinfo() in to.c). */
function parseUserInfo(value: string, key: string): UserInfo {
  const m = /^(\d+):(\d+):(.+)$/.exec(value);
  const [uid, gid, home] = [Number(m?.[1]), Number(m?.[2]), m?.[3]];
  if (home === undefined || uid > 0xffffffff || gid > 0xffffffff) {
    fail(`${JSON.stringify(value)} is not uid:gid:home`);
  }
  // A relative home would be taken relative to whichever process reads ~/.forward or delivers: nobody's.
  if (!home.startsWith('/')) fail(`home ${JSON.stringify(home)} is not an absolute path`);
  return { name: key, uid, gid, home };
}

/**
 * An address to send from: IPv4, or IPv6 with an optional `ipv6:` prefix
 * and `%scope` (parse_sockaddr() in table.c), also accepted in brackets.
 */
function parseSourceAddress(text: string): SourceAddress {
  if (isIPv4(text)) return { family: 4, address: text };
  let s = /^ipv6:/i.test(text) ? text.slice(5) : text;
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const [address = '', scope] = s.split('%', 2);
  if (!isIPv6(address) || ipv6Bytes(address) === undefined || scope === '') {
    fail(`${JSON.stringify(text)} is not an IPv4 or IPv6 address`);
  }
  return scope === undefined ? { family: 6, address } : { family: 6, address, scope };
}

/** The schemes of a relay URL; `smtp://` when none is written. */
const RELAY_SCHEMES: Record<RelayHost['scheme'], { tls: RelayHost['tls']; port: number }> = {
  smtp: { tls: 'opportunistic', port: 25 },
  'smtp+tls': { tls: 'starttls', port: 25 },
  'smtp+notls': { tls: 'none', port: 25 },
  lmtp: { tls: 'none', port: 0 }, // LMTP has no default port: one must be given
  smtps: { tls: 'smtps', port: 465 },
};

/**
 * A relay URL, `[scheme://][label@]host[:port]`, read as
 * text_to_relayhost() (to.c) reads it. A label names credentials, and is
 * refused on a scheme without TLS: the password would cross in clear.
 */
export function parseRelayHost(url: string): RelayHost {
  const m = /^(?:([a-z+]+):\/\/)?(?:([^@]*)@)?(\[[^\]]*\]|[A-Za-z0-9_.-]+)(?::(\d+))?$/i.exec(url);
  const schemeText = (m?.[1] ?? 'smtp').toLowerCase();
  if (!m || !Object.hasOwn(RELAY_SCHEMES, schemeText)) fail(`${JSON.stringify(url)} is not a relay URL`);
  const scheme = schemeText as RelayHost['scheme'];
  const { tls, port: defaultPort } = RELAY_SCHEMES[scheme];
  const host = m[3] ?? '';
  const port = m[4] === undefined ? defaultPort : Number(m[4]);
  if (!validRelayHostname(host)) fail(`${JSON.stringify(host)} is not a hostname or [address]`);
  if (port < 1 || port > 65535) fail(`${JSON.stringify(url)} needs a port from 1 to 65535`);

  const relay: RelayHost = { scheme, tls, host, port };
  const label = m[2];
  if (label) {
    if (tls !== 'starttls' && tls !== 'smtps') fail(`${JSON.stringify(url)}: credentials need smtp+tls:// or smtps://`);
    relay.authLabel = label;
  }
  return relay;
}

/** A hostname of letters, digits, `-` and `_` labels, or an address in brackets. */
function validRelayHostname(host: string): boolean {
  if (host.startsWith('[')) {
    const inner = host.slice(1, -1).replace(/^ipv6:/i, '');
    return isIPv4(inner) || isIPv6(inner);
  }
  return host.split('.').every((label) => /^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?$/.test(label));
}
