/**
 * Where a table's entries live, and the small interface every backend
 * offers the Table in front of it.
 *
 * As in OpenSMTPD (struct table_backend, smtpd.h), the backend is chosen
 * by name from the declaration in smtpd.conf:
 *
 *   table vdomains { example.org, example.net }   static
 *   table aliases file:/etc/mail/aliases          file (also a bare /path)
 *   table users db:/etc/mail/users.db             db, made by makemap
 *   table spam regex:/etc/mail/spam-helos         regex, one pattern a line
 */
import type { CompiledPattern } from './match-regex.ts';
import { SERVICES, type Service, type TableEntry, type TableShape } from './types.ts';

export type BackendName = 'static' | 'file' | 'db' | 'regex';

/** What a table declaration gives its backend. */
export type TableSource =
  | { backend: 'static'; entries: readonly TableEntry[]; /** the smtpd.conf it is in, for errors */ file?: string }
  | { backend: 'file' | 'db' | 'regex'; path: string };

// #region table-backend
/**
 * A backend stores entries and finds them; it knows nothing of domains,
 * networks or addresses. The Table asks it for one key by exact match, or
 * walks its entries when a service compares keys in its own way (wildcard
 * domains, networks, addresses), and reads the text it gets back into the
 * service's type.
 */
export interface TableBackend {
  readonly name: BackendName;
  /** The services this backend can answer; others are refused when the table is used. */
  readonly services: ReadonlySet<Service>;
  readonly shape: TableShape;

  /** The value stored under `key`, which is lower-cased; for a list, the entry itself. */
  get(key: string): string | undefined;

  /** Every entry, in the order of the source. */
  entries(): Iterable<TableEntry>;

  /** The entries compiled as regular expressions; only for backends that provide `regex`. */
  patterns?(): readonly CompiledPattern[];

  /**
   * Reads the source again. If that fails, the backend keeps what it had
   * and throws, so a bad edit never empties a running table.
   */
  reload(): void;

  close(): void;
}
// #endregion table-backend

/** Every service: what the in-memory backends answer, as OpenSMTPD's static backend does. */
export const ALL_SERVICES: ReadonlySet<Service> = new Set(SERVICES);
