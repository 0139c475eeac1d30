/**
 * The `db` backend: a file made by makemap (format in db-format.ts), read
 * in place rather than loaded, and reopened when makemap replaces it.
 */
import { statSync, type Stats } from 'node:fs';
import { ALL_SERVICES, type TableBackend } from '../backend.ts';
import { shapeOf, TableDb } from '../db-format.ts';
import type { Service } from '../types.ts';

/**
 * Everything but `regex`: its entries would have to be compiled on each
 * reopen, and a `regex:` or `file:` table does that better.
 */
const DB_SERVICES: ReadonlySet<Service> = new Set([...ALL_SERVICES].filter((s) => s !== 'regex'));

export function openDbBackend(path: string): TableBackend {
  let db = TableDb.open(path);

  /**
   * Before each lookup, as OpenSMTPD's table_db_lookup() does, look whether
   * the file at `path` is still the one open. makemap renames a new file
   * into place, so a new inode (or size, or time) means a new table. The
   * old descriptor keeps reading the old file, which is why nothing breaks
   * in between. OpenSMTPD compares only the modification time, in seconds,
   * and misses a second makemap run within the same second.
   */
  const current = (): TableDb => {
    let now: Stats | undefined;
    try {
      now = statSync(path);
    } catch {
      return db; // gone for a moment: keep answering from the open file
    }
    if (!sameFile(now, db.stats)) {
      // A new file that cannot be read fails the lookup (a temporary
      // failure for the mail) rather than answering from a table the
      // administrator has replaced.
      const fresh = TableDb.open(path);
      db.close();
      db = fresh;
    }
    return db;
  };

  return {
    name: 'db',
    services: DB_SERVICES,
    get shape() {
      return shapeOf(db.kind);
    },
    get: (key) => current().get(key),
    entries: () => current().entries(),
    reload: () => {
      const fresh = TableDb.open(path);
      db.close();
      db = fresh;
    },
    close: () => db.close(),
  };
}

function sameFile(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}
