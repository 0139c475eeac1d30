/**
 * The %{} format specifiers of smtpd.conf(5): every variable, every
 * modifier, the man page's own examples, the errors, and what an address
 * built to attack a shell turns into.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkFormat, expandFormat, FormatError, type FormatContext, type FormatValues } from '../../src/delivery/mda-format.ts';
import { tempDir } from './helpers.ts';

const values: FormatValues = {
  sender: { user: 'Alice', domain: 'Example.org' },
  rcpt: { user: 'User+Tag', domain: 'Example.org' },
  dest: { user: 'bob', domain: 'example.net' },
  user: { username: 'bob', directory: '/home/bob' },
};
const manPage: FormatValues = { ...values, rcpt: { user: 'user', domain: 'example.org' } };
const nullSender: FormatValues = { ...values, sender: null };
const questionMark: FormatValues = { ...values, rcpt: { user: 'user+t?g', domain: 'example.org' } };

type Row = [template: string, expected: string, values?: FormatValues, context?: FormatContext];

const rows: Row[] = [
  // Every variable.
  ['%{sender}', 'Alice@Example.org'],
  ['%{sender.user}', 'Alice'],
  ['%{sender.domain}', 'Example.org'],
  ['%{rcpt}', 'User+Tag@Example.org'],
  ['%{rcpt.user}', 'User+Tag'],
  ['%{rcpt.domain}', 'Example.org'],
  ['%{dest}', 'bob@example.net'],
  ['%{dest.user}', 'bob'],
  ['%{dest.domain}', 'example.net'],
  ['%{user.username}', 'bob'],
  ['%{user.directory}', '/home/bob'],
  ['%{mbox.from}', 'Alice@Example.org'],
  ['%{mda}', '/usr/bin/procmail -f x', { ...values, mda: '/usr/bin/procmail -f x' }],
  // The null sender.
  ['%{sender}', '', nullSender],
  ['%{sender.user}|%{sender.domain}', '|', nullSender],
  ['%{mbox.from}', 'MAILER-DAEMON', nullSender],
  ['%{sender[2:]}', '', nullSender],
  // smtpd.conf(5), with recipient domain example.org.
  ['%{rcpt.domain[0]}', 'e', manPage],
  ['%{rcpt.domain[1]}', 'x', manPage],
  ['%{rcpt.domain[8:]}', 'org', manPage],
  ['%{rcpt.domain[-3:]}', 'org', manPage],
  ['%{rcpt.domain[0:6]}', 'example', manPage],
  ['%{rcpt.domain[0:-4]}', 'example', manPage],
  // More ranges: an open begin, an end past the end, one character from the end.
  ['%{rcpt.domain[:2]}', 'exa', manPage],
  ['%{rcpt.domain[4:100]}', 'ple.org', manPage],
  ['%{rcpt.domain[-1]}', 'g', manPage],
  // smtpd.conf(5), with recipient User+Tag@Example.org.
  ['%{rcpt:lowercase}', 'user+tag@example.org'],
  ['%{rcpt:uppercase}', 'USER+TAG@EXAMPLE.ORG'],
  ['%{rcpt:strip}', 'User@Example.org'],
  ['%{rcpt:lowercase|strip}', 'user@example.org'],
  ['%{rcpt.user:strip}', 'User'],
  ['%{rcpt:strip}', 'User+Tag@Example.org', { ...values, subaddressDelimiter: '-' }],
  ['%{rcpt:strip}', 'User@Example.org', { ...values, rcpt: { user: 'User-Tag', domain: 'Example.org' }, subaddressDelimiter: '-' }],
  // A range and modifiers together, and names in any case.
  ['%{rcpt.domain[0:6]:uppercase}', 'EXAMPLE', manPage],
  ['%{RCPT.User:LowerCase}', 'user+tag'],
  // smtpd.conf(5), sanitizing: `?` becomes `:` unless raw.
  ['%{rcpt}', 'user+t:g@example.org', questionMark, 'path'],
  ['%{rcpt:raw}', 'user+t?g@example.org', questionMark, 'path'],
  // Text around tokens, %% and a lone %, the home directory.
  ['/var/vmail/%{dest.domain}/%{dest.user}', '/var/vmail/example.net/bob'],
  ['%%{rcpt} is 100%', '%{rcpt} is 100%'],
  ['~/Maildir', '/home/bob/Maildir'],
  ['~', '/home/bob'],
  ['/srv/~/x', '/srv/~/x'],
  // Paths: a value is one component at most.
  ['/var/vmail/%{rcpt.user}', '/var/vmail/a:..:..:etc', { ...values, rcpt: { user: 'a/../../etc', domain: 'x' } }, 'path'],
  ['/var/vmail/%{rcpt.user:raw}', '/var/vmail/a:..:..:etc', { ...values, rcpt: { user: 'a/../../etc', domain: 'x' } }, 'path'],
  ['/srv/../vmail/%{dest.user}', '/srv/../vmail/bob', values, 'path'],
];

describe('format specifiers', () => {
  it.each(rows)('%s -> %s', (template, expected, v = values, context = 'path') => {
    expect(expandFormat(template, v, context)).toBe(expected);
  });

  const errors: [template: string, kind: 'config' | 'value', message: RegExp, v?: FormatValues][] = [
    ['%{nope}', 'config', /unknown format variable %\{nope\} at column 1 of "%\{nope\}" \(known: sender, /],
    ['x%{rcpt:shout}', 'config', /unknown modifier "shout" in %\{rcpt:shout\} at column 2/],
    ['%{rcpt', 'config', /unterminated %\{ at column 1/],
    ['%{rcpt[]}', 'config', /bad range \[\]/],
    ['%{rcpt[a:1]}', 'config', /bad range \[a:1\]/],
    ['%{rcpt:}', 'config', /unknown modifier ""/],
    ['%{rcpt user}', 'config', /malformed format specifier/],
    ['%{mda}', 'config', /only available in an mda wrapper/],
    ['%{rcpt.domain[20:]}', 'value', /offset 20 is past the end of "example.org"/, manPage],
    ['%{rcpt.domain[5:2]}', 'value', /selects nothing/, manPage],
    ['%{rcpt.domain[-20]}', 'value', /outside/, manPage],
    ['/var/vmail/%{rcpt.user}/Maildir', 'value', /climbs out of its directory/, { ...values, rcpt: { user: '..', domain: 'x' } }],
  ];
  it.each(errors)('%s is an error (%s)', (template, kind, message, v = values) => {
    let error: unknown;
    try {
      expandFormat(template, v, 'path');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FormatError);
    expect((error as FormatError).kind).toBe(kind);
    expect((error as FormatError).message).toMatch(message);
  });

  it('checkFormat reports a template error before any mail arrives', () => {
    expect(checkFormat('~/Maildir/%{rcpt.user:lowercase}')).toBeUndefined();
    expect(checkFormat('%{recipient}')).toMatch(/unknown format variable/);
  });
});

describe('shell safety', () => {
  let cleanup = () => {};
  afterEach(() => cleanup());

  // Every one of these is a legal quoted local part for the SMTP parser.
  const hostile: FormatValues = {
    sender: { user: '"a;touch CANARY1;b"', domain: 'evil.example' },
    rcpt: { user: '"$(touch CANARY2)`touch CANARY3`|touch CANARY4&&x"', domain: 'example.org' },
    dest: { user: "x'\"\\ >CANARY5 <x (y) {z} [w] *?~#!^\t\n", domain: 'example.org' },
    user: { username: 'bob', directory: '/home/bob' },
  };

  it('leaves no shell metacharacter in a value, raw or not', () => {
    for (const template of ['%{sender}', '%{rcpt}', '%{dest}', '%{rcpt:raw}', '%{dest.user:raw|uppercase}', '%{sender[1:-2]}']) {
      expect(expandFormat(template, hostile, 'command')).toMatch(/^[A-Za-z0-9@.+\-_=,:/%]*$/);
    }
  });

  it('an address full of ;|$() and backticks reaches the program as plain words, and runs nothing', () => {
    const t = tempDir();
    cleanup = t.cleanup;
    const command = expandFormat("printf '[%s]\\n' %{sender} %{rcpt} %{dest} %{rcpt:raw} %{dest.user:raw}", hostile, 'command');
    const out = execFileSync('/bin/sh', ['-c', command], { cwd: t.dir, encoding: 'utf8' });
    const words = out.trimEnd().split('\n');
    expect(words).toHaveLength(5);
    for (const word of words) expect(word).toMatch(/^\[[A-Za-z0-9@.+\-_=,:/%]+\]$/);
    for (let i = 1; i <= 5; i++) expect(existsSync(join(t.dir, `CANARY${i}`))).toBe(false);
  });

  it('still gives a harmless address as it is', () => {
    const plain: FormatValues = { ...values, sender: { user: 'first.last+tag', domain: 'sub-domain.example.org' } };
    expect(expandFormat('/usr/bin/procmail -f %{sender} -a %{rcpt.user:strip}', plain, 'command'))
      .toBe('/usr/bin/procmail -f first.last+tag@sub-domain.example.org -a User');
  });
});
