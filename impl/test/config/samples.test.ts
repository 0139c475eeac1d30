import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';

const configs = join(import.meta.dirname, '..', 'configs');

describe('sample configurations', () => {
  const valid = readdirSync(configs).filter((f) => f.endsWith('.conf') && f !== 'invalid.conf');
  it.each(valid)('%s is valid', (name) => {
    // The samples name the files of a real server (/etc/ssl/...): check the text, not the disk.
    expect(loadConfig(join(configs, name), { checkFiles: false }).errors.map(String)).toEqual([]);
  });

  it('full.conf has one of everything', () => {
    const { config } = loadConfig(join(configs, 'full.conf'), { checkFiles: false });
    expect({
      tables: config.tables.length, listeners: config.listeners.length, actions: config.actions.length,
      rules: config.rules.length, filters: config.filters.length, procs: config.procs.length, options: config.options.length,
    }).toEqual({ tables: 6, listeners: 5, actions: 7, rules: 8, filters: 5, procs: 1, options: 13 });
  });
});
