import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.ts';
import { parseOk, RULE } from './helpers.ts';

const at = (line: number, col: number) => ({ file: 'smtpd.conf', line, col });

describe('table', () => {
  it('reads a file table, with or without its backend', () => {
    const { tables } = parseOk('table aliases file:/etc/aliases\ntable users "/etc/mail/users"\ntable db db:/etc/mail/x.db\ntable pw getpwnam' + RULE);
    expect(tables.map((t) => [t.name, t.backend, t.path])).toEqual([
      ['aliases', 'file', '/etc/aliases'], ['users', 'file', '/etc/mail/users'],
      ['db', 'db', '/etc/mail/x.db'], ['pw', 'getpwnam', undefined],
    ]);
    expect(tables[0]!.loc).toEqual(at(1, 1));
  });

  it('reads inline lists and mappings', () => {
    const { tables } = parseOk('table d { example.org, example.net }\ntable m { a = "b c", d=e }\ntable s {x y}' + RULE);
    expect(tables[0]!.entries).toEqual({ shape: 'list', values: ['example.org', 'example.net'] });
    expect(tables[1]!.entries).toEqual({ shape: 'mapping', pairs: [{ key: 'a', value: 'b c' }, { key: 'd', value: 'e' }] });
    expect(tables[2]!.entries).toEqual({ shape: 'list', values: ['x', 'y'] });
  });
});

describe('pki and ca', () => {
  it('reads pki parameters, one or several per statement', () => {
    const { pkis, cas } = parseOk('pki mail cert "/c"\npki mail key "/k" dhe auto\nca clients cert "/ca"' + RULE);
    expect(pkis).toEqual([
      { kind: 'pki', name: 'mail', cert: '/c', certLoc: at(1, 15), loc: at(1, 1) },
      { kind: 'pki', name: 'mail', key: '/k', keyLoc: at(2, 14), dhe: 'auto', loc: at(2, 1) },
    ]);
    expect(cas).toEqual([{ kind: 'ca', name: 'clients', cert: '/ca', certLoc: at(3, 17), loc: at(3, 1) }]);
  });
});

describe('listen', () => {
  it('reads an interface with its options', () => {
    const [l] = parseOk('table c { u = p }\ntable s { u = u@x }\nlisten on eth0 inet6 port 587 tls-require verify auth <c> senders <s> masquerade tag SUB hostname mx.x mask-src no-dsn received-auth proxy-v2' + RULE).listeners;
    expect(l).toMatchObject({
      on: { kind: 'interface', name: 'eth0' }, family: 'inet6', port: 587,
      tls: { mode: 'tls-require', verify: true }, auth: { required: true, table: 'c' },
      senders: { table: 's', masquerade: true }, tag: 'SUB', hostname: 'mx.x',
      maskSrc: true, noDsn: true, receivedAuth: true, proxyV2: true,
    });
  });

  it('reads the socket, port names and smtps', () => {
    const [sock, smtps, sub] = parseOk('listen on socket mask-src tag LOCAL\nlisten on lo smtps auth-optional\nlisten on lo port submission' + RULE).listeners;
    expect(sock).toMatchObject({ on: { kind: 'socket' }, maskSrc: true, tag: 'LOCAL' });
    expect(smtps).toMatchObject({ tls: { mode: 'smtps', verify: false }, auth: { required: false } });
    expect(sub!.port).toBe(587);
  });

  it('reads a filter name or an inline chain', () => {
    const { listeners } = parseOk('filter a proc-exec "a"\nfilter b proc-exec "b"\nlisten on lo filter a\nlisten on lo port 2525 filter { a, b }' + RULE);
    expect(listeners.map((l) => l.filter)).toEqual(['a', ['a', 'b']]);
  });
});

describe('action', () => {
  it('reads each local method', () => {
    const { actions } = parseOk([
      'action "mb" mbox', 'action "md" maildir', 'action "mdp" maildir "~/Mail" junk', 'action "mdj" maildir junk',
      'action "mda" mda "/usr/bin/procmail -f -"', 'action "l" lmtp "/run/lmtp" rcpt-to', 'action "f" forward-only',
      'action "e" expand-only',
    ].join('\n') + RULE);
    expect(actions.map((a) => a.method)).toEqual([
      { kind: 'mbox' }, { kind: 'maildir', junk: false }, { kind: 'maildir', path: '~/Mail', junk: true },
      { kind: 'maildir', junk: true }, { kind: 'mda', command: '/usr/bin/procmail -f -' },
      { kind: 'lmtp', destination: '/run/lmtp', rcptTo: true }, { kind: 'forward-only' }, { kind: 'expand-only' },
    ]);
  });

  it('reads "maildir junk" as the junk flag, and a quoted "junk" as a folder, as OpenSMTPD 6.8 does', () => {
    const { actions } = parseOk('action "a" maildir junk\naction "b" maildir "junk"' + RULE);
    expect(actions.map((a) => a.method)).toEqual([{ kind: 'maildir', junk: true }, { kind: 'maildir', path: 'junk', junk: false }]);
  });

  it('reads local options, and allow-exec after forward-file, alias or virtual', () => {
    const [a, b] = parseOk('table al { a = b }\nmda wrapper w "/w %{mda}"\naction "a" maildir alias <al> allow-exec forward-file user vmail userbase <al> wrapper w ttl 2d\naction "b" mbox virtual <al> forward-file allow-exec' + RULE).actions;
    expect(a!.options).toEqual({
      alias: { table: 'al', allowExec: true }, forwardFile: { allowExec: false }, user: 'vmail', userbase: 'al',
      wrapper: 'w', ttl: { text: '2d', seconds: 172800 },
    });
    expect(b!.options).toEqual({ virtual: { table: 'al', allowExec: false }, forwardFile: { allowExec: true } });
  });

  it('reads relay options', () => {
    const relay = 'action "a" relay host smtp+tls://lbl@mx.example.com:587 auth <c> tls no-verify helo me.example.com mail-from "b@example.com" src <out> srs pki mail ttl 1h';
    const [a, b] = parseOk(`table c { lbl = "u:p" }\ntable out { 10.0.0.1 }\nsrs key "k"\npki mail cert "/c" key "/k"\n${relay}\naction "b" relay backup mx mx2.example.com` + RULE).actions;
    expect(a!.options).toEqual({
      host: { kind: 'value', value: 'smtp+tls://lbl@mx.example.com:587', loc: at(5, relay.indexOf('smtp+tls') + 1) },
      auth: 'c', tls: { noVerify: true }, helo: 'me.example.com', mailFrom: 'b@example.com',
      src: { kind: 'table', name: 'out', loc: at(5, relay.indexOf('<out>') + 1) }, srs: true, pki: 'mail', ttl: { text: '1h', seconds: 3600 },
    });
    expect(b!.options).toEqual({ backup: { mx: 'mx2.example.com' }, srs: false });
  });
});

describe('match', () => {
  it('reads criteria in order, with negation and regex', () => {
    const line = 'match !from src <r> for domain regex "\\.org$" tag T !tls auth action "x"';
    const col = (text: string) => line.indexOf(text) + 1;
    const [rule] = parseOk(`table r { 10.0.0.1 }\naction "x" mbox\n${line}`).rules;
    expect(rule!.criteria.map((c) => [c.negated ? '!' : '', c.kind, c.regex, c.target, c.loc.col])).toEqual([
      ['!', 'from src', false, { kind: 'table', name: 'r', loc: at(3, col('<r>')) }, col('!from')],
      ['', 'for domain', true, { kind: 'value', value: '\\.org$', loc: at(3, col('"')) }, col('for')],
      ['', 'tag', false, { kind: 'value', value: 'T', loc: at(3, col('T ')) }, col('tag')],
      ['!', 'tls', false, undefined, col('!tls')],
      ['', 'auth', false, undefined, col('auth')],
    ]);
    expect(rule!.decision).toEqual({ kind: 'action', name: 'x', loc: at(3, col('"x"')) });
  });

  it('reads every kind of criterion', () => {
    const { rules } = parseOk([
      'match from any for any reject', 'match from local for local reject', 'match from socket reject',
      'match from rdns reject', 'match from rdns example.com reject', 'match from auth for any reject',
      'match from auth regex "^bob" reject', 'match from mail-from "@example.com" reject',
      'match for rcpt-to "postmaster@example.com" reject', 'match helo mx.example.com reject',
      'match mail-from "a@b" rcpt-to "c@d" reject', 'match reject',
    ].join('\n'));
    expect(rules.map((r) => r.criteria.map((c) => c.kind).join(','))).toEqual([
      'from any,for any', 'from local,for local', 'from socket', 'from rdns', 'from rdns', 'from auth,for any',
      'from auth', 'from mail-from', 'for rcpt-to', 'helo', 'mail-from,rcpt-to', '',
    ]);
    expect(rules[4]!.criteria[0]!.target).toMatchObject({ value: 'example.com' });
    expect(rules.every((r) => r.decision.kind === 'reject')).toBe(true);
  });
});

describe('filters and procs', () => {
  it('reads the four kinds of filter and proc', () => {
    const { filters, procs } = parseOk([
      'proc "p" "/usr/libexec/filter" user _f group _f chroot "/var/empty"',
      'filter "a" phase connect match !rdns disconnect "550 no rDNS"',
      'filter "b" phase mail-from match mail-from regex <r> rewrite "x@y"',
      'filter "c" proc "p"',
      'filter "d" proc-exec "filter-dkimsign -d x" user _dkim',
      'filter "e" chain { "a", b c }',
    ].join('\n').replace('<r>', '"^spam"') + RULE);
    expect(procs[0]).toMatchObject({ name: 'p', command: '/usr/libexec/filter', process: { user: '_f', group: '_f', chroot: '/var/empty' } });
    expect(filters.map((f) => f.type)).toEqual(['builtin', 'builtin', 'proc', 'proc-exec', 'chain']);
    expect(filters[0]).toMatchObject({ phase: 'connect', condition: { kind: 'rdns', negated: true, regex: false }, decision: { kind: 'disconnect', message: '550 no rDNS' } });
    expect(filters[1]).toMatchObject({ phase: 'mail-from', condition: { kind: 'mail-from', regex: true }, decision: { kind: 'rewrite', value: 'x@y' } });
    expect(filters[3]).toMatchObject({ command: 'filter-dkimsign -d x', process: { user: '_dkim' } });
    expect(filters[4]).toMatchObject({ filters: ['a', 'b', 'c'] });
  });
});

describe('global options', () => {
  it('reads them all', () => {
    const { options } = parseOk([
      'admd example.org', 'bounce warn-interval 1h, 4h', 'mda limit max-session 10', 'mta max-deferred 50',
      'queue compression', 'queue encryption', 'queue encryption "k"', 'queue ttl 4d', 'scheduler limit max-inflight 5',
      'smtp ciphers "HIGH"', 'smtp limit max-mails 10 max-rcpt 20', 'smtp max-message-size 35M',
      'smtp sub-addr-delim "-"', 'srs key "s"', 'srs key backup "old"', 'srs ttl 5d',
    ].join('\n') + RULE);
    expect(options.map((o) => o.kind)).toEqual([
      'admd', 'bounce warn-interval', 'mda limit', 'mta max-deferred', 'queue compression', 'queue encryption',
      'queue encryption', 'queue ttl', 'scheduler limit', 'smtp ciphers', 'smtp limit', 'smtp max-message-size',
      'smtp sub-addr-delim', 'srs key', 'srs key', 'srs ttl',
    ]);
    expect(options[1]).toMatchObject({ delays: [{ seconds: 3600 }, { seconds: 14400 }] });
    expect(options[10]).toMatchObject({ limits: [{ name: 'max-mails', value: 10 }, { name: 'max-rcpt', value: 20 }] });
    expect(options[11]).toMatchObject({ bytes: 35 * 1024 * 1024 });
    expect(options[14]).toMatchObject({ backup: true, secret: 'old' });
  });
});

describe('include', () => {
  it('reads an included file in place, sharing macros and names', () => {
    const files: Record<string, string> = { '/etc/mail/tables.conf': 'table aliases file:/etc/aliases\nlan = "10.0.0.1"\n' };
    const { config, errors } = parseConfig('include "tables.conf"\nlisten on $lan\naction "a" mbox alias <aliases>\nmatch for local action "a"',
      { file: '/etc/mail/smtpd.conf', readFile: (p) => files[p] ?? (() => { throw Object.assign(new Error(), { code: 'ENOENT' }); })() });
    expect(errors.map(String)).toEqual([]);
    expect(config.statements.map((s) => s.kind)).toEqual(['include', 'table', 'macro', 'listen', 'action', 'match']);
    expect(config.tables[0]!.loc).toEqual({ file: '/etc/mail/tables.conf', line: 1, col: 1 });
  });
});
