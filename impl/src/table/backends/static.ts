/**
 * The `static` backend: a table written in smtpd.conf itself,
 * `table name { a, b }` (a list) or `table name { k = v }` (a mapping).
 */
import { ALL_SERVICES, type TableBackend } from '../backend.ts';
import { EntryStore } from '../entry-store.ts';
import { TableError, type TableEntry } from '../types.ts';

export function openStaticBackend(entries: readonly TableEntry[], where?: string): TableBackend {
  const store = new EntryStore(shapeOfStatic(entries, where), entries, where);
  return {
    name: 'static',
    services: ALL_SERVICES,
    shape: store.shape,
    get: (key) => store.get(key),
    entries: () => store.entries,
    patterns: () => store.patterns(),
    reload: () => {}, // its source is the configuration, reloaded as a whole
    close: () => {},
  };
}

/**
 * All values, a list; all pairs, a mapping. smtpd.conf(5) asks for at
 * least one, and OpenSMTPD refuses to add a pair to a list or the reverse.
 */
function shapeOfStatic(entries: readonly TableEntry[], where?: string): 'list' | 'mapping' {
  const first = entries[0];
  if (!first) throw new TableError('a table needs at least one value', where);
  const shape = first.value === undefined ? 'list' : 'mapping';
  const odd = entries.find((e) => (e.value === undefined) !== (shape === 'list'));
  if (odd) {
    throw new TableError(
      `${JSON.stringify(odd.key)}: a table holds values or key = value pairs, not both`,
      where,
      odd.line,
    );
  }
  return shape;
}
