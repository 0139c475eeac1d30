import { describe, expect, it, vi } from 'vitest';
import { openTable } from '../../src/table/open.ts';
import { TableError } from '../../src/table/types.ts';
import { scratchDir, writeIn } from './helpers.ts';

describe('regex tables', () => {
  const dir = scratchDir();

  it('matches keys against every pattern of a regex: file', () => {
    const path = writeIn(
      dir(),
      'spam-helos',
      [
        '# HELO names we do not believe',
        '^localhost$',
        '^\\[?[0-9.]+\\]?$            # a bare address',
        '(?i)^.*\\.dynamic\\.example\\.net$',
        '^mx[[:digit:]]+\\.example\\.org$',
        'a b: c',
        '',
      ].join('\n'),
    );
    const table = openTable('spam', { backend: 'regex', path });
    expect(table.shape).toBe('list');
    expect(table.match('regex', 'localhost')).toBe(true);
    expect(table.match('regex', 'LOCALHOST')).toBe(true);
    expect(table.match('regex', '[192.0.2.1]')).toBe(true);
    expect(table.match('regex', 'host-1.Dynamic.Example.NET')).toBe(true);
    expect(table.match('regex', 'mx12.example.org')).toBe(true);
    expect(table.match('regex', 'mxa.example.org')).toBe(false);
    expect(table.match('regex', 'xa b: cx')).toBe(true); // a whole line is one pattern
    expect(table.match('regex', 'mail.example.org')).toBe(false);
    expect(table.lookup('regex', 'localhost')).toBe('^localhost$');
  });

  it('reports an invalid pattern with file:line when the table is opened', () => {
    const path = writeIn(dir(), 'bad', '^ok$\n\n# next one is broken\n^(unclosed\n');
    const open = () => openTable('bad', { backend: 'regex', path });
    expect(open).toThrow(TableError);
    expect(open).toThrow(`${path}:4: invalid regular expression "^(unclosed": /^(unclosed/i: Unterminated group`);
    const badClass = writeIn(dir(), 'bad-class', '[[:vowel:]]\n');
    expect(() => openTable('bad', { backend: 'regex', path: badClass })).toThrow(`${badClass}:1: invalid regular expression`);
  });

  it('compiles each pattern once per open, not per lookup', () => {
    const path = writeIn(dir(), 'p', '^a\n^b\n^c\n');
    const table = openTable('p', { backend: 'regex', path });
    const compiled = vi.spyOn(globalThis, 'RegExp');
    for (let i = 0; i < 100; i++) table.match('regex', `key${i}`);
    expect(compiled).not.toHaveBeenCalled();
    table.reload();
    expect(compiled).toHaveBeenCalledTimes(3);
    compiled.mockRestore();
  });

  it('keeps the old patterns when a reload finds a bad one', () => {
    const path = writeIn(dir(), 'p', '^a\n');
    const table = openTable('p', { backend: 'regex', path });
    writeIn(dir(), 'p', '^a\n*b\n');
    expect(() => table.reload()).toThrow(`${path}:2: invalid regular expression "*b"`);
    expect(table.match('regex', 'abc')).toBe(true);
  });

  it('answers only regex lookups', () => {
    const path = writeIn(dir(), 'p', '^a\n');
    expect(() => openTable('p', { backend: 'regex', path }).match('domain', 'a')).toThrow('the regex backend cannot answer domain lookups');
  });

  it('serves regex lookups from static and file tables too, compiled on first use', () => {
    const table = openTable('helo', { backend: 'static', entries: [{ key: '^mx\\.' }, { key: '\\.example\\.org$' }] });
    expect(table.match('regex', 'MX.example.com')).toBe(true);
    expect(table.match('regex', 'www.example.org')).toBe(true);
    expect(table.match('regex', 'www.example.com')).toBe(false);

    const domains = openTable('d', { backend: 'file', path: writeIn(dir(), 'domains', 'example.org\n*.example.org\n') });
    expect(domains.match('domain', 'mx.example.org')).toBe(true);
    expect(() => domains.match('regex', 'mx.example.org')).toThrow(/domains:2: invalid regular expression "\*\.example\.org"/);
    const compiled = vi.spyOn(globalThis, 'RegExp');
    expect(() => domains.match('regex', 'mx.example.org')).toThrow(TableError); // the failure is remembered
    expect(compiled).not.toHaveBeenCalled();
    compiled.mockRestore();
  });
});
