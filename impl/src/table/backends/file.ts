/**
 * The `file` backend: a text file in the format of table(5) and aliases(5),
 * read whole when the table is opened and again on reload.
 */
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
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
    const e = err as NodeJS.ErrnoException;
    throw new TableError(`cannot read: ${e.message}${e.code === 'EACCES' ? readableBy(path) : ''}`, path);
  }
}

/**
 * What to do about a table file this process may not read. In the daemon
 * tables are read by the lookup process, which runs as the daemon's
 * user, not root: a file made readable by root only (as a credentials
 * table is, by habit) passes `smtpd -n`, run as root, and stops the
 * start here.
 */
function readableBy(path: string): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    return '';
  }
  return `; it is read by the user ${user}: let that user read it, as in \`chgrp ${user} ${path} && chmod 640 ${path}\``;
}

function loadFile(path: string): EntryStore {
  const { shape, entries } = parseTableFile(readTableText(path), path);
  return new EntryStore(shape, entries, path);
}
