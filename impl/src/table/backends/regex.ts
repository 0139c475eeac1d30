/**
 * The `regex` backend: a file of regular expressions, one a line, with the
 * comments and continuations of any table file. Every pattern is compiled
 * when the table is opened or reloaded, so a bad one is reported then, with
 * its line, and never costs a lookup anything.
 */
import type { TableBackend } from '../backend.ts';
import { EntryStore } from '../entry-store.ts';
import { parseTableFile } from '../file-format.ts';
import { readTableText } from './file.ts';

export function openRegexBackend(path: string): TableBackend {
  let store = loadPatterns(path);
  return {
    name: 'regex',
    services: new Set(['regex']),
    shape: 'list',
    get: (key) => store.get(key),
    entries: () => store.entries,
    patterns: () => store.patterns(),
    reload: () => {
      store = loadPatterns(path); // on error, the old store stays
    },
    close: () => {},
  };
}

function loadPatterns(path: string): EntryStore {
  // Each line is one pattern, spaces and colons included: always a list.
  const { entries } = parseTableFile(readTableText(path), path, 'list');
  const store = new EntryStore('list', entries, path);
  store.patterns(); // compile now: throws on the first bad pattern
  return store;
}
