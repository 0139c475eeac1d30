import { chmodSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makemap, type Output } from '../../src/cli/makemap.ts';
import { HEADER_SIZE, TableDb } from '../../src/table/db-format.ts';
import { encodeTableDb } from '../../src/table/db-writer.ts';
import { openTable } from '../../src/table/open.ts';
import { scratchDir, writeIn } from './helpers.ts';

/** Runs makemap, collecting what it prints. */
function run(...args: string[]): { status: number; stdout: string; stderr: string } {
  let stdout = '';
  let stderr = '';
  const out: Output = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) };
  const status = makemap(args, out);
  return { status, stdout, stderr };
}

describe('makemap and the db backend', () => {
  const dir = scratchDir();

  it('round-trips a mapping: write, look up, dump', () => {
    const source = writeIn(dir(), 'users', '# virtual users\nJoe  1000:100:/home/joe\njack:1000:100:/home/jack\n');
    expect(run(source)).toEqual({ status: 0, stdout: '', stderr: '' });

    const table = openTable('users', { backend: 'db', path: `${source}.db` });
    expect(table.shape).toBe('mapping');
    expect(table.lookup('userinfo', 'JOE')).toEqual({ name: 'joe', uid: 1000, gid: 100, home: '/home/joe' });
    expect(table.lookup('userinfo', 'jack')).toEqual({ name: 'jack', uid: 1000, gid: 100, home: '/home/jack' });
    expect(table.lookup('userinfo', 'jill')).toBeUndefined();
    table.close();

    expect(run('-U', `${source}.db`)).toEqual({
      status: 0,
      stdout: 'joe\t1000:100:/home/joe\njack\t1000:100:/home/jack\n',
      stderr: '',
    });
  });

  it('builds a set with -t set, and matches wildcards by scanning it', () => {
    const source = writeIn(dir(), 'domains', 'example.org\n*.example.net   # all hosts\n');
    const output = join(dir(), 'other.db');
    expect(run('-t', 'set', '-o', output, source).status).toBe(0);

    const table = openTable('domains', { backend: 'db', path: output });
    expect(table.shape).toBe('list');
    expect(table.match('domain', 'EXAMPLE.org')).toBe(true);
    expect(table.match('domain', 'mx.example.net')).toBe(true);
    expect(table.match('domain', 'example.net')).toBe(false);
    expect(table.lookup('domain', 'example.org')).toBe('example.org');
    expect(run('-U', output).stdout).toBe('example.org\n*.example.net\n');
  });

  it('checks aliases with -t aliases, naming the file and line', () => {
    const good = writeIn(dir(), 'aliases', 'root: joe, |/bin/cat, \\\n   /var/log/root\n');
    expect(run('-t', 'aliases', good).status).toBe(0);
    const table = openTable('aliases', { backend: 'db', path: `${good}.db` });
    expect(table.lookup('alias', 'root')).toEqual([
      { kind: 'username', user: 'joe' },
      { kind: 'command', command: '/bin/cat' },
      { kind: 'file', path: '/var/log/root' },
    ]);

    const bad = writeIn(dir(), 'bad-aliases', 'root: joe\n\nstaff: joe, :include:staff.txt\n');
    const result = run('-t', 'aliases', bad);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(`makemap: ${bad}:3: staff: ":include:staff.txt" is not a user, an address, a /file, a |command, :include:/file or error:code message\n`);
    expect(readdirSync(dir())).toEqual(['aliases', 'aliases.db', 'bad-aliases']); // nothing written
  });

  it('reports bad lines and duplicates with file:line', () => {
    const noValue = writeIn(dir(), 'map', 'a 1\nb\n');
    expect(run(noValue).stderr).toBe(`makemap: ${noValue}:2: "b" has no value\n`);
    const dup = writeIn(dir(), 'dup', 'a 1\nA 2\n');
    expect(run(dup).stderr).toBe(`makemap: ${dup}:2: duplicate entry for "A" (first on line 1)\n`);
  });

  it('explains its usage and its errors', () => {
    expect(run()).toMatchObject({ status: 1, stderr: expect.stringContaining('usage: makemap [-U]') });
    expect(run('-t', 'btree', 'x').stderr).toContain("unsupported type 'btree'");
    expect(run('-x', 'x').stderr).toContain("Unknown option '-x'");
    expect(run(join(dir(), 'missing')).stderr).toMatch(/^makemap: ENOENT: no such file or directory/);
    const notDb = writeIn(dir(), 'plain', 'not a db\n');
    expect(run('-U', notDb).stderr).toBe(`makemap: ${notDb}: not a table database made by makemap\n`);
  });

  it('warns about an empty map', () => {
    const source = writeIn(dir(), 'empty', '# nothing\n');
    expect(run('-t', 'set', source)).toEqual({ status: 0, stdout: '', stderr: `makemap: warning: empty map created: ${source}.db\n` });
    expect(openTable('e', { backend: 'db', path: `${source}.db` }).match('domain', 'x')).toBe(false);
  });

  it('gives the db the mode of its source', () => {
    const source = writeIn(dir(), 'secrets', 'isp joe:secret\n');
    chmodSync(source, 0o640);
    run(source);
    expect(statSync(`${source}.db`).mode & 0o777).toBe(0o640);
  });

  it('replaces the db atomically, and open tables notice', () => {
    const source = writeIn(dir(), 'relays', 'example.org smtp://mx1.example.net\n');
    run(source);
    const table = openTable('relays', { backend: 'db', path: `${source}.db` });
    const before = statSync(`${source}.db`).ino;
    expect(table.lookup('relayhost', 'example.org')).toMatchObject({ host: 'mx1.example.net' });

    writeFileSync(source, 'example.org smtp://mx2.example.net\nexample.com smtp://mx3.example.net\n');
    run(source);
    expect(statSync(`${source}.db`).ino).not.toBe(before); // a new file, renamed into place
    expect(table.lookup('relayhost', 'example.org')).toMatchObject({ host: 'mx2.example.net' });
    expect(table.lookup('relayhost', 'example.com')).toMatchObject({ host: 'mx3.example.net' });
    expect(readdirSync(dir())).toEqual(['relays', 'relays.db']); // no temporary file left
    table.close();
  });

  it('keeps reading the old file through its descriptor after a rename', () => {
    const path = join(dir(), 'd.db');
    writeFileSync(path, encodeTableDb('list', [{ key: 'example.org' }]));
    const db = TableDb.open(path);
    writeFileSync(join(dir(), 'new.db'), encodeTableDb('list', [{ key: 'example.net' }]));
    renameSync(join(dir(), 'new.db'), path);
    expect(db.get('example.org')).toBe('example.org'); // the old inode, still open
    expect(db.get('example.net')).toBeUndefined();
    db.close();
    expect(TableDb.open(path).get('example.net')).toBe('example.net');
  });

  it('finds every key of a large table, and no others', () => {
    const entries = Array.from({ length: 5000 }, (_, i) => ({ key: `user${i}`, value: `${1000 + i}:100:/home/user${i}` }));
    const path = join(dir(), 'big.db');
    writeFileSync(path, encodeTableDb('mapping', entries));
    const db = TableDb.open(path);
    expect(entries.every(({ key, value }) => db.get(key) === value)).toBe(true);
    expect(db.get('user5000')).toBeUndefined();
    expect(db.get('')).toBeUndefined();
    expect(db.count).toBe(5000);
    db.close();
  });

  it('refuses a truncated db', () => {
    const path = join(dir(), 't.db');
    writeFileSync(path, encodeTableDb('list', [{ key: 'example.org' }]).subarray(0, HEADER_SIZE + 4));
    expect(() => TableDb.open(path)).toThrow('database is truncated or corrupt');
  });

  // Found by impl/fuzz/disk.ts: a lookup allocated what the lengths said (up to 4 GiB), or failed with a RangeError.
  it('refuses a record whose lengths run past the end of the file, without reading them', () => {
    const path = join(dir(), 'long.db');
    const bytes = encodeTableDb('mapping', [{ key: 'bob', value: 'x' }]);
    bytes.writeUInt32LE(0xffff_ffff, HEADER_SIZE + 4); // the first record's value length
    writeFileSync(path, bytes);
    const db = TableDb.open(path);
    expect(() => db.get('bob')).toThrow('database is truncated or corrupt');
    expect(() => [...db.entries()]).toThrow('database is truncated or corrupt');
    db.close();
  });

  it('does not answer regex lookups', () => {
    const path = join(dir(), 'r.db');
    writeFileSync(path, encodeTableDb('list', [{ key: '^mx' }]));
    expect(() => openTable('r', { backend: 'db', path }).match('regex', 'mx1')).toThrow('the db backend cannot answer regex lookups');
  });
});
