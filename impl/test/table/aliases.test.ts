import { describe, expect, it } from 'vitest';
import { parseAliasTarget, parseAliasValue, splitTargets } from '../../src/table/alias-targets.ts';
import { openTable } from '../../src/table/open.ts';
import { scratchDir, writeIn } from './helpers.ts';

describe('alias targets', () => {
  it.each([
    ['joe', { kind: 'username', user: 'joe' }],
    ['joe.bloggs-2+x', { kind: 'username', user: 'joe.bloggs-2+x' }],
    ['joe@example.org', { kind: 'address', user: 'joe', domain: 'example.org' }],
    ["o'brien@example.org", { kind: 'address', user: "o'brien", domain: 'example.org' }],
    ['/var/mail/archive', { kind: 'file', path: '/var/mail/archive' }],
    ['|/usr/local/bin/notify -q', { kind: 'command', command: '/usr/local/bin/notify -q' }],
    ['"|/usr/bin/vacation joe, jim"', { kind: 'command', command: '/usr/bin/vacation joe, jim' }],
    [':include:/etc/mail/staff', { kind: 'include', path: '/etc/mail/staff' }],
    ['include:/etc/mail/staff', { kind: 'include', path: '/etc/mail/staff' }],
    ['error:550 No such user', { kind: 'error', code: 550, message: 'No such user' }],
    [':error:421 Try later', { kind: 'error', code: 421, message: 'Try later' }],
  ])('%j is %j', (text, target) => {
    expect(parseAliasTarget(text)).toEqual(target);
  });

  it.each([
    'joe bloggs', // a space in a user name
    ':include:staff', // a relative include
    'error:250 fine', // not a 4xx or 5xx code
    'error:550', // no message
    '@example.org', // no user
    'joe@', // no domain
    'joe@exa_mple.org',
    '"|unterminated',
  ])('%j is not a target', (text) => {
    expect(parseAliasTarget(text)).toBeUndefined();
  });

  it('splits at commas outside quotes, dropping backslashes and empty items', () => {
    expect(splitTargets('a, b ,, "|x, y", \\,c')).toEqual(['a', 'b', '"|x, y"', ',c']);
    expect(splitTargets('"open')).toBeUndefined();
    expect(splitTargets('a\\')).toBeUndefined();
  });

  it('keeps each target once, in order', () => {
    expect(parseAliasValue('joe, jim, joe')).toEqual([
      { kind: 'username', user: 'joe' },
      { kind: 'username', user: 'jim' },
    ]);
    expect(() => parseAliasValue('joe, joe bloggs')).toThrow('"joe bloggs" is not a user');
  });
});

describe('an aliases file as a file table', () => {
  const dir = scratchDir();

  it('answers alias lookups with typed targets', () => {
    const path = writeIn(
      dir(),
      'aliases',
      [
        '# Well-known aliases',
        'MAILER-DAEMON: postmaster',
        'postmaster:    root',
        'root:          admin@example.org, /var/log/root.mbox  # keep a copy',
        'staff:         :include:/etc/mail/staff, \\',
        '               "|/usr/local/bin/log-staff --all, really"',
        'abuse:         error:550 Write to postmaster instead',
        '',
      ].join('\n'),
    );
    const table = openTable('aliases', { backend: 'file', path });
    expect(table.shape).toBe('mapping');
    expect(table.lookup('alias', 'mailer-daemon')).toEqual([{ kind: 'username', user: 'postmaster' }]);
    expect(table.lookup('alias', 'ROOT')).toEqual([
      { kind: 'address', user: 'admin', domain: 'example.org' },
      { kind: 'file', path: '/var/log/root.mbox' },
    ]);
    expect(table.lookup('alias', 'staff')).toEqual([
      { kind: 'include', path: '/etc/mail/staff' },
      { kind: 'command', command: '/usr/local/bin/log-staff --all, really' },
    ]);
    expect(table.lookup('alias', 'abuse')).toEqual([{ kind: 'error', code: 550, message: 'Write to postmaster instead' }]);
    expect(table.lookup('alias', 'nobody')).toBeUndefined();
  });

  it('reports a bad target when it is looked up, naming the table and key', () => {
    const path = writeIn(dir(), 'aliases', 'joe: joe bloggs\n');
    const table = openTable('aliases', { backend: 'file', path });
    expect(() => table.lookup('alias', 'joe')).toThrow('table aliases: bad alias entry for "joe": "joe bloggs" is not a user');
  });

  it('refuses a duplicate key, naming both lines', () => {
    const path = writeIn(dir(), 'aliases', 'root: joe\n\nROOT: jim\n');
    expect(() => openTable('aliases', { backend: 'file', path })).toThrow(`${path}:3: duplicate entry for "ROOT" (first on line 1)`);
  });
});
