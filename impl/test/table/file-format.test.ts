import { describe, expect, it } from 'vitest';
import { parseTableFile, splitKeyValue } from '../../src/table/file-format.ts';
import { logicalLines } from '../../src/table/line-reader.ts';
import { TableError } from '../../src/table/types.ts';

const lines = (text: string) => [...logicalLines(text)];

describe('logicalLines', () => {
  it('drops comments and blank lines, and numbers lines from 1', () => {
    expect(lines('# head\n\nfoo bar # tail\n   \nbaz\n')).toEqual([
      { line: 1, text: '', comment: 'head' },
      { line: 3, text: 'foo bar', comment: 'tail' },
      { line: 5, text: 'baz' },
    ]);
  });

  it('joins a line ending in a backslash to the next, numbered by its first line', () => {
    expect(lines('root: joe, \\\n  jim,\\\njack\nnext x\n')).toEqual([
      { line: 1, text: 'root: joe,   jim,jack' },
      { line: 4, text: 'next x' },
    ]);
  });

  it('ends a continued line at a blank or comment-only line', () => {
    expect(lines('a b \\\n\nc d\n')).toEqual([
      { line: 1, text: 'a b' },
      { line: 3, text: 'c d' },
    ]);
    expect(lines('a b,\\\n# c,\\\nd e\n').map((l) => l.text)).toEqual(['a b,', 'd e']);
  });

  it('keeps an escaped # and an escaped backslash', () => {
    expect(lines('label user:pa\\#ss\n')).toEqual([{ line: 1, text: 'label user:pa#ss' }]);
    expect(lines('key C:\\\\\nnext v\n').map((l) => l.text)).toEqual(['key C:\\\\', 'next v']);
  });

  it('accepts CRLF line ends and a last line without one', () => {
    expect(lines('a 1\r\nb 2').map((l) => l.text)).toEqual(['a 1', 'b 2']);
  });
});

describe('splitKeyValue', () => {
  it.each([
    ['joe 1000:100:/home/joe', 'joe', '1000:100:/home/joe'],
    ['root: admin, joe', 'root', 'admin, joe'],
    ['root:admin', 'root', 'admin'],
    ['root : admin', 'root', 'admin'],
    ['root\t\tadmin', 'root', 'admin'],
    ['foo::bar', 'foo', ':bar'],
    ['[::1] localhost', '[::1]', 'localhost'],
    ['[::1]:localhost', '[::1]', 'localhost'],
    ['example.org', 'example.org', ''],
    ['@ catchall@example.org', '@', 'catchall@example.org'],
  ])('%j -> %j, %j', (text, key, value) => {
    expect(splitKeyValue(text)).toEqual({ key, value });
  });
});

describe('parseTableFile', () => {
  it('reads a list when the first entry has no value', () => {
    const file = parseTableFile('# domains\nexample.org\n*.example.org\nfoo bar\n', '/t');
    expect(file.shape).toBe('list');
    expect(file.entries).toEqual([
      { key: 'example.org', line: 2 },
      { key: '*.example.org', line: 3 },
      { key: 'foo bar', line: 4 }, // in a list the whole line is the value
    ]);
  });

  it('reads a mapping when the first entry has one', () => {
    const file = parseTableFile('joe 1000:100:/home/joe\njack\t1000:100:/home/jack\n', '/t');
    expect(file.shape).toBe('mapping');
    expect(file.entries.map((e) => [e.key, e.value])).toEqual([
      ['joe', '1000:100:/home/joe'],
      ['jack', '1000:100:/home/jack'],
    ]);
  });

  it('reads a list of IPv6 addresses that says "# @list"', () => {
    const file = parseTableFile('# @list\n::1\nipv6:::2\n192.168.1.0/24\n', '/t');
    expect(file).toEqual({
      shape: 'list',
      entries: [
        { key: '::1', line: 2 },
        { key: 'ipv6:::2', line: 3 },
        { key: '192.168.1.0/24', line: 4 },
      ],
    });
  });

  it('points at an IPv6 key outside brackets', () => {
    expect(() => parseTableFile('::1 localhost\n', '/etc/names')).toThrow(
      /^\/etc\/names:1: missing key before ":1 localhost" \(an IPv6 address as a key goes in brackets/,
    );
  });

  it('names the file and line of a mapping entry without a value', () => {
    const parse = () => parseTableFile('joe 1000:100:/home/joe\n\n# x\njack\n', '/etc/users');
    expect(parse).toThrow(TableError);
    expect(parse).toThrow('/etc/users:4: "jack" has no value');
  });

  it('takes the shape it is told', () => {
    expect(parseTableFile('a b\n', '/t', 'list').entries).toEqual([{ key: 'a b', line: 1 }]);
    expect(() => parseTableFile('a\n', '/t', 'mapping')).toThrow('/t:1: "a" has no value');
  });

  it('reads an empty file as an empty mapping', () => {
    expect(parseTableFile('# nothing yet\n', '/t')).toEqual({ shape: 'mapping', entries: [] });
  });
});
