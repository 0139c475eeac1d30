import { describe, expect, it } from 'vitest';
import { localTables, systemLocalNames } from '../../src/lookup/index.ts';
import { HOST } from './helpers.ts';

describe('the reserved tables', () => {
  it('are filled from the machine names, as config.c fills them', () => {
    const keys = Object.fromEntries(Object.entries(localTables(HOST)).map(([name, entries]) => [name, entries.map((e) => e.key)]));
    expect(keys).toEqual({
      '<anyhost>': ['local', '0.0.0.0/0', '::/0'],
      '<localhost>': ['local', '127.0.0.1', '[::1]', '192.0.2.25'],
      '<anydestination>': ['*'],
      '<localnames>': [
        'localhost', 'mx.example.org', '127.0.0.1', '[127.0.0.1]', '[::1]', '[ipv6:::1]', '192.0.2.25', '[192.0.2.25]',
      ],
    });
  });

  it('hold each name once, whatever its case', () => {
    const entries = localTables({ hostname: 'LOCALHOST', addresses: ['127.0.0.1', '127.0.0.1'] })['<localnames>'];
    expect(entries?.map((e) => e.key)).toEqual(['LOCALHOST', '127.0.0.1', '[127.0.0.1]']);
  });

  it('can be read from the system', () => {
    const names = systemLocalNames();
    expect(names.hostname).not.toBe('');
    expect(Array.isArray(names.addresses)).toBe(true);
  });
});
