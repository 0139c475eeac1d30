/**
 * The `file` backend: a text file in the format of table(5) and aliases(5),
 * read whole when the table is opened and again on reload.
 */
import { readFileSync } from 'node:fs';
import { ALL_SERVICES, type TableBackend } from '../backend.ts';
import { EntryStore } from '../entry-store.ts';
import { parseTableFile } from '../file-format.ts';
import { TableError } from '../types.ts';

export function openFileBackend(path: string): TableBackend {
  let store = loadFile(path);
  return {
    name: 'file',
    services: ALL_SERVICES,
    get shape() {
      return store.shape;
    },
    get: (key) => store.get(key),
    entries: () => store.entries,
    patterns: () => store.patterns(),
    reload: () => {
      store = loadFile(path); // on error, the old store stays
    },
    close: () => {},
  };
}

/** Reads and parses a table file; the error, if any, names the file and line. */
export function readTableText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new TableError(`cannot read: ${(err as NodeJS.ErrnoException).message}`, path);
  }
}

function loadFile(path: string): EntryStore {
  const { shape, entries } = parseTableFile(readTableText(path), path);
  return new EntryStore(shape, entries, path);
}
