import { describe, expect, it } from 'vitest';
import { openTable, tableSource } from '../../src/table/open.ts';
import type { LookupTrace } from '../../src/table/table.ts';
import { lookupTraceLine } from '../../src/table/trace-line.ts';
import type { TableEntry } from '../../src/table/types.ts';
import { scratchDir, writeIn } from './helpers.ts';

const list = (...keys: string[]): TableEntry[] => keys.map((key) => ({ key }));
const mapping = (pairs: Record<string, string>): TableEntry[] =>
  Object.entries(pairs).map(([key, value]) => ({ key, value }));
const staticTable = (entries: TableEntry[], options = {}) =>
  openTable('t', { backend: 'static', entries }, options);

describe('set-like services', () => {
  const domains = staticTable(list('example.org', '*.example.net'));
  it.each([
    ['example.org', true],
    ['EXAMPLE.ORG', true],
    ['mx.example.net', true],
    ['example.net', false],
    ['a.b.example.net', false],
  ])('domain %j: %s', (key, expected) => {
    expect(domains.match('domain', key)).toBe(expected);
  });

  it('matches client addresses against networks', () => {
    const trusted = staticTable(list('local', '10.0.0.0/8', '2001:db8::/32'));
    expect(trusted.match('netaddr', '10.20.30.40')).toBe(true);
    expect(trusted.match('netaddr', '[2001:db8::25]')).toBe(true);
    expect(trusted.match('netaddr', 'local')).toBe(true);
    expect(trusted.match('netaddr', '192.0.2.1')).toBe(false);
    expect(trusted.lookup('netaddr', '10.20.30.40')).toEqual({ family: 4, bytes: Uint8Array.from([10, 0, 0, 0]), bits: 8 });
  });

  it('matches addresses against user, @domain and user@domain entries', () => {
    const senders = staticTable(list('postmaster', '@example.org', 'joe@example.net'));
    expect(senders.match('mailaddr', 'postmaster@anywhere.test')).toBe(true);
    expect(senders.match('mailaddr', 'jim@example.org')).toBe(true);
    expect(senders.match('mailaddr', 'joe+x@example.net')).toBe(true);
    expect(senders.match('mailaddr', 'jim@example.net')).toBe(false);
    expect(senders.lookup('mailaddr', 'jim@example.org')).toEqual({ user: '', domain: 'example.org' });
  });

  it('compares strings exactly, without case', () => {
    const tags = staticTable(list('Outgoing'));
    expect(tags.match('string', 'outgoing')).toBe(true);
    expect(tags.match('string', 'outgoing2')).toBe(false);
    expect(tags.match('domain', 'OUTGOING')).toBe(true);
  });

  it('uses the configured sub-address delimiter', () => {
    const senders = staticTable(list('joe@example.org'), { subaddressDelimiter: '-' });
    expect(senders.match('mailaddr', 'joe-lists@example.org')).toBe(true);
    expect(senders.match('mailaddr', 'joe+lists@example.org')).toBe(false);
  });
});

describe('services that read values', () => {
  it('reads credentials: a hash under a user, or user:password under a label', () => {
    const users = staticTable(mapping({ Joe: '$2b$10$hIJ4QfMcp.90nJwKqGbKM.MybArjHOTpEtoTV.DgLYAiThuoYmTSe' }));
    expect(users.lookup('credentials', 'JOE')).toEqual({
      user: 'joe',
      password: '$2b$10$hIJ4QfMcp.90nJwKqGbKM.MybArjHOTpEtoTV.DgLYAiThuoYmTSe',
    });
    const secrets = staticTable(mapping({ isp: 'joe@example.org:s3cr:t', bad: ':xyz', short: 'ab' }));
    expect(secrets.lookup('credentials', 'isp')).toEqual({ user: 'joe@example.org', password: 's3cr:t' });
    expect(() => secrets.lookup('credentials', 'bad')).toThrow('are not user:password');
    expect(() => secrets.lookup('credentials', 'short')).toThrow('shorter than 3');
  });

  it('reads userinfo as uid:gid:home for the user looked up', () => {
    const users = staticTable(mapping({ joe: '1000:100:/home/virtual/joe', bad: '1000:/home/x', rel: '1000:100:home/joe' }));
    expect(users.lookup('userinfo', 'joe')).toEqual({ name: 'joe', uid: 1000, gid: 100, home: '/home/virtual/joe' });
    expect(() => users.lookup('userinfo', 'bad')).toThrow('"1000:/home/x" is not uid:gid:home');
    expect(() => users.lookup('userinfo', 'rel')).toThrow('home "home/joe" is not an absolute path');
  });

  it('reads relay URLs', () => {
    const relays = staticTable(
      mapping({
        'example.org': 'smtp+tls://isp@smtp.example.net:587',
        'example.com': 'mx.example.com',
        'example.net': 'smtps://[192.0.2.25]',
        lmtp: 'lmtp://127.0.0.1:2424',
        clear: 'smtp://isp@mx.example.net',
        'lmtp-noport': 'lmtp://localhost',
        odd: 'gopher://mx.example.org',
      }),
    );
    expect(relays.lookup('relayhost', 'example.org')).toEqual({
      scheme: 'smtp+tls', tls: 'starttls', host: 'smtp.example.net', port: 587, authLabel: 'isp',
    });
    expect(relays.lookup('relayhost', 'example.com')).toEqual({ scheme: 'smtp', tls: 'opportunistic', host: 'mx.example.com', port: 25 });
    expect(relays.lookup('relayhost', 'example.net')).toEqual({ scheme: 'smtps', tls: 'smtps', host: '[192.0.2.25]', port: 465 });
    expect(relays.lookup('relayhost', 'lmtp')).toMatchObject({ scheme: 'lmtp', tls: 'none', port: 2424 });
    expect(() => relays.lookup('relayhost', 'clear')).toThrow('credentials need smtp+tls:// or smtps://');
    expect(() => relays.lookup('relayhost', 'lmtp-noport')).toThrow('needs a port');
    expect(() => relays.lookup('relayhost', 'odd')).toThrow('is not a relay URL');
  });

  it('reads addrname: the key is the local address, the value its name', () => {
    const names = staticTable(mapping({ '127.0.0.1': 'localhost', '[::1]': 'localhost6' }));
    expect(names.lookup('addrname', '127.0.0.1')).toEqual({ family: 4, address: '127.0.0.1', name: 'localhost' });
    expect(names.lookup('addrname', '[::1]')).toEqual({ family: 6, address: '::1', name: 'localhost6' });
  });

  it('reads mailaddrmap: the addresses a user may send from', () => {
    const senders = staticTable(mapping({ joe: 'joe@example.org, @example.net, joe' }));
    expect(senders.lookup('mailaddrmap', 'joe')).toEqual([
      { user: 'joe', domain: 'example.org' },
      { user: '', domain: 'example.net' },
      { user: 'joe', domain: '' },
    ]);
  });

  it('reads the value of a domain mapping', () => {
    const map = staticTable(mapping({ 'example.org': 'primary' }));
    expect(map.lookup('domain', 'Example.Org')).toBe('primary');
    expect(map.lookup('domain', 'example.net')).toBeUndefined();
  });
});

describe('fetch', () => {
  it('hands out source addresses in turn, wrapping around', () => {
    const sources = staticTable(list('192.0.2.1', 'ipv6:2001:db8::1', 'fe80::1%em0'));
    const got = Array.from({ length: 4 }, () => sources.fetch('source'));
    expect(got).toEqual([
      { family: 4, address: '192.0.2.1' },
      { family: 6, address: '2001:db8::1' },
      { family: 6, address: 'fe80::1', scope: 'em0' },
      { family: 4, address: '192.0.2.1' },
    ]);
  });

  it('hands out relay hosts from a list', () => {
    const relays = staticTable(list('smtp://mx1.example.org', 'mx2.example.org:2525'));
    expect(relays.fetch('relayhost')).toMatchObject({ host: 'mx1.example.org', port: 25 });
    expect(relays.fetch('relayhost')).toMatchObject({ host: 'mx2.example.org', port: 2525 });
  });
});

describe('a table', () => {
  const dir = scratchDir();

  it('calls the trace hook for every lookup, match and fetch', () => {
    const traces: LookupTrace[] = [];
    const table = staticTable(list('example.org'), { trace: (t: LookupTrace) => traces.push(t) });
    table.match('domain', 'Example.org');
    table.lookup('domain', 'example.net');
    table.fetch('relayhost');
    expect(traces).toEqual([
      { table: 't', backend: 'static', operation: 'match', service: 'domain', key: 'Example.org', result: true },
      { table: 't', backend: 'static', operation: 'lookup', service: 'domain', key: 'example.net', result: undefined },
      {
        table: 't', backend: 'static', operation: 'fetch', service: 'relayhost',
        result: { scheme: 'smtp', tls: 'opportunistic', host: 'example.org', port: 25 },
      },
    ]);
  });

  it('traces errors as well as answers', () => {
    const traces: LookupTrace[] = [];
    const table = staticTable(mapping({ joe: 'nonsense' }), { trace: (t: LookupTrace) => traces.push(t) });
    expect(() => table.lookup('userinfo', 'joe')).toThrow();
    expect(traces[0]?.error?.message).toMatch(/bad userinfo entry for "joe"/);
  });

  it('words its traces as OpenSMTPD does (-T lookup), a password hash left out', () => {
    const lines: string[] = [];
    const trace = (t: LookupTrace) => lines.push(lookupTraceLine(t));
    const aliases = staticTable(mapping({ root: 'alice, |/usr/bin/vacation, :include:/etc/list' }), { trace });
    aliases.lookup('alias', 'root');
    aliases.lookup('alias', 'nobody');
    staticTable(list('example.org'), { trace }).match('domain', 'example.net');
    staticTable(list('192.0.2.1'), { trace }).fetch('source');
    staticTable(mapping({ joe: '$2b$10$abcdefghijklmnopqrstuv' }), { trace }).lookup('credentials', 'joe');
    expect(() => staticTable(mapping({ joe: 'nonsense' }), { trace }).lookup('userinfo', 'joe')).toThrow();
    expect(lines).toEqual([
      'lookup: lookup "root" as ALIAS in table static:t -> "alice, |/usr/bin/vacation, :include:/etc/list"',
      'lookup: lookup "nobody" as ALIAS in table static:t -> none',
      'lookup: match "example.net" as DOMAIN in table static:t -> false',
      'lookup: fetch SOURCE from table static:t -> "192.0.2.1"',
      'lookup: lookup "joe" as CREDENTIALS in table static:t -> "joe:********"',
      expect.stringMatching(/^lookup: lookup "joe" as USERINFO in table static:t -> error: table t: bad userinfo entry for "joe"/),
    ]);
  });

  it('refuses a static table that mixes values and pairs, or has none', () => {
    expect(() => staticTable([{ key: 'a' }, { key: 'b', value: 'c' }])).toThrow('a table holds values or key = value pairs, not both');
    expect(() => staticTable([])).toThrow('at least one value');
  });

  it('is opened from a declaration of smtpd.conf', () => {
    const loc = { file: '/etc/mail/smtpd.conf', line: 3, col: 1 };
    const decl = { kind: 'table', name: 'd', backend: 'static', entries: { shape: 'list', values: ['example.org'] }, loc } as const;
    expect(tableSource(decl)).toEqual({ backend: 'static', entries: [{ key: 'example.org', line: 3 }], file: loc.file });
    expect(tableSource({ kind: 'table', name: 'a', backend: 'db', path: '/etc/mail/aliases.db', loc })).toEqual({
      backend: 'db', path: '/etc/mail/aliases.db',
    });
    expect(() => tableSource({ kind: 'table', name: 'u', backend: 'ldap', path: '/etc/ldap.conf', loc })).toThrow(
      '/etc/mail/smtpd.conf:3: table u: the ldap backend is not available',
    );
  });

  it('keeps its old entries when a reload fails', () => {
    const path = writeIn(dir(), 'domains', 'example.org\n');
    const table = openTable('domains', { backend: 'file', path });
    writeIn(dir(), 'domains', 'example.org\nexample.net\n');
    table.reload();
    expect(table.match('domain', 'example.net')).toBe(true);
    writeIn(dir(), 'domains', 'example.com 1\nexample.net\n'); // now a mapping with a bad line
    expect(() => table.reload()).toThrow(`${path}:2: "example.net" has no value`);
    expect(table.match('domain', 'example.net')).toBe(true);
  });

  it('refuses a key of 1024 characters or more', () => {
    expect(() => staticTable(list('x')).match('string', 'x'.repeat(1024))).toThrow('lookup key too long');
  });
});
