/**
 * getpwnam without libc: /etc/passwd read and re-read when it changes,
 * and `userbase <table>` through the table's userinfo service.
 */
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.ts';
import { openUserbase, PasswdFile, parsePasswd, userbaseLookup } from '../../src/expand/index.ts';
import { openTable, TableError } from '../../src/table/index.ts';

describe('parsePasswd', () => {
  it('reads accounts, skipping comments, NIS entries and malformed lines; the first of two wins', () => {
    const users = parsePasswd([
      'root:x:0:0:root:/root:/bin/bash',
      '# a comment',
      '',
      '+@netgroup::::::',
      'broken:x:notanumber:0::/nowhere:/bin/sh',
      'short:x:1:1',
      'bob:x:1000:100:Bob,,,:/home/bob:',
      'bob:x:2000:200::/elsewhere:/bin/sh',
    ].join('\n'));
    expect([...users.keys()]).toEqual(['root', 'bob']);
    expect(users.get('root')).toEqual({ name: 'root', uid: 0, gid: 0, home: '/root', shell: '/bin/bash' });
    expect(users.get('bob')).toEqual({ name: 'bob', uid: 1000, gid: 100, home: '/home/bob' });
  });
});

describe('PasswdFile', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'saf-passwd-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('sees a user added after the first lookup, without a restart', () => {
    const path = join(dir, 'passwd');
    writeFileSync(path, 'bob:x:1000:100::/home/bob:/bin/sh\n');
    const passwd = new PasswdFile(path);
    expect(passwd.lookup('alice')).toBeUndefined();
    expect(passwd.lookup('bob')?.uid).toBe(1000);
    writeFileSync(path, 'bob:x:1000:100::/home/bob:/bin/sh\nalice:x:1001:100::/home/alice:/bin/sh\n');
    expect(passwd.lookup('alice')).toEqual({ name: 'alice', uid: 1001, gid: 100, home: '/home/alice', shell: '/bin/sh' });
  });

  it('sees a change of the same size, by its modification time', () => {
    const path = join(dir, 'passwd');
    writeFileSync(path, 'bob:x:1000:100::/home/bob:/bin/sh\n');
    utimesSync(path, 1_000_000, 1_000_000);
    const passwd = new PasswdFile(path);
    expect(passwd.lookup('bob')?.uid).toBe(1000);
    writeFileSync(path, 'bob:x:1001:100::/home/bob:/bin/sh\n');
    utimesSync(path, 2_000_000, 2_000_000);
    expect(passwd.lookup('bob')?.uid).toBe(1001);
  });

  it('reads the real /etc/passwd', () => {
    expect(new PasswdFile().lookup('root')).toMatchObject({ name: 'root', uid: 0 });
  });

  it('throws when the file cannot be read', () => {
    expect(() => new PasswdFile(join(dir, 'none')).lookup('bob')).toThrow(/ENOENT/);
  });
});

describe('userbase tables', () => {
  it('answers from the table\'s userinfo entries, without a shell', () => {
    const table = openTable('vusers', { backend: 'static', entries: [{ key: 'vbob', value: '5000:5000:/var/vmail/bob' }] });
    const getpwnam = userbaseLookup(new PasswdFile('/nonexistent'));
    expect(getpwnam('vbob', table)).toEqual({ name: 'vbob', uid: 5000, gid: 5000, home: '/var/vmail/bob' });
    expect(getpwnam('root', table)).toBeUndefined();
  });

  it('a malformed entry is a TableError, for the caller to turn into a temporary failure', () => {
    const table = openTable('vusers', { backend: 'static', entries: [{ key: 'vbob', value: 'oops' }] });
    expect(() => userbaseLookup()('vbob', table)).toThrow(TableError);
  });

  it('openUserbase: a declared table, `getpwnam`, or the system', () => {
    const { config, errors } = parseConfig([
      'table vusers { vbob = "5000:5000:/var/vmail/bob" }',
      'table pw getpwnam',
      'action "virtual" maildir userbase <vusers>',
      'action "system" maildir userbase <pw>',
      'match for local action "system"',
      '',
    ].join('\n'), { file: 'smtpd.conf' });
    expect(errors.map(String)).toEqual([]);
    const virtual = openUserbase(config, 'vusers');
    expect(virtual.get('vbob')?.home).toBe('/var/vmail/bob');
    expect(virtual.get('root')).toBeUndefined();
    virtual.close();
    expect(openUserbase(config, 'pw').get('root')?.uid).toBe(0);
    expect(openUserbase(config).get('root')?.uid).toBe(0);
    expect(() => openUserbase(config, 'nope')).toThrow('no table named nope');
  });
});
