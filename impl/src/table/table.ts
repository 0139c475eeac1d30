/**
 * A table as the rest of the daemon sees it: a name, a backend, and three
 * questions — look up a key, match a key, fetch the next entry — each asked
 * through a service (types.ts) that fixes how keys compare and what the
 * answer is.
 *
 * Lookups are synchronous, as they are in OpenSMTPD, where even a table
 * served by an external process is asked and answered in one blocking
 * exchange (table_proc.c): the lookup process is the one place that waits
 * on tables, and no other process does.
 */
import type { BackendName, TableBackend } from './backend.ts';
import { asciiLowercase } from './lowercase.ts';
import { hostnameMatch } from './match-domain.ts';
import { mailaddrMatch } from './match-mailaddr.ts';
import { netaddrMatch } from './match-netaddr.ts';
import { parseValue } from './parse-value.ts';
import {
  TableError,
  type FetchService,
  type LookupResults,
  type Service,
  type SetService,
  type TableEntry,
  type TableShape,
} from './types.ts';

/** One lookup, as handed to a trace hook (`trace tables` in smtpd.conf). */
export interface LookupTrace {
  table: string;
  backend: BackendName;
  operation: 'lookup' | 'match' | 'fetch';
  service: Service;
  /** The key as the caller gave it; absent for a fetch. */
  key?: string;
  /** The typed answer, `true`/`false` for a match, undefined when nothing was found or on error. */
  result: unknown;
  error?: TableError;
}

export type TraceHook = (trace: LookupTrace) => void;

export interface TableOptions {
  /** Called after every lookup, match and fetch. */
  trace?: TraceHook;
  /** The sub-address delimiter for `mailaddr` matching (`smtp sub-addr-delim`); `+` by default. */
  subaddressDelimiter?: string;
}

/** How a service compares a key with an entry when it is not equality (keycmp[] in table_static.c). */
type KeyMatcher = (key: string, entry: string, delimiter: string) => boolean;

const KEY_MATCHERS: Partial<Record<Service, KeyMatcher>> = {
  domain: (key, entry) => hostnameMatch(key, entry),
  netaddr: (key, entry) => netaddrMatch(key, entry),
  mailaddr: (key, entry, delimiter) => mailaddrMatch(key, entry, delimiter),
};

/** Keys as long as this are refused, as OpenSMTPD's 1024-byte key buffer refuses them. */
const MAX_KEY_LENGTH = 1024;

export class Table {
  /** Where fetch() is in the entries; it wraps around at the end. */
  private cursor: Iterator<TableEntry> | undefined;

  constructor(
    readonly name: string,
    private readonly backend: TableBackend,
    private readonly options: TableOptions = {},
  ) {}

  get backendName(): BackendName {
    return this.backend.name;
  }

  get shape(): TableShape {
    return this.backend.shape;
  }

  /** Can this table answer `service`? The configuration checks this for each use of a table. */
  provides(service: Service): boolean {
    return this.backend.services.has(service);
  }

  /** The typed answer for `key`, or undefined if the table has no entry for it. Throws TableError. */
  lookup<S extends Service>(service: S, key: string): LookupResults[S] | undefined {
    return this.traced('lookup', service, key, () => {
      const value = this.find(service, key);
      return value === undefined ? undefined : this.read(service, value, asciiLowercase(key));
    });
  }

  /** Is `key` in the table, as `service` compares keys? Throws TableError. */
  match(service: SetService, key: string): boolean {
    return this.traced('match', service, key, () => this.find(service, key) !== undefined);
  }

  /**
   * The next entry, read as `service`; after the last, the first again.
   * This is how `relay src <table>` takes its addresses in turn.
   */
  fetch<S extends FetchService>(service: S): LookupResults[S] | undefined {
    return this.traced('fetch', service, undefined, () => {
      this.require(service);
      let next = this.cursor?.next();
      if (!next || next.done) {
        this.cursor = this.backend.entries()[Symbol.iterator]();
        next = this.cursor.next();
      }
      return next.done ? undefined : this.read(service, next.value.key, next.value.key);
    });
  }

  /** Reads the source again; on failure the table keeps its old entries and this throws. */
  reload(): void {
    this.backend.reload();
    this.cursor = undefined;
  }

  close(): void {
    this.backend.close();
  }

  // #region find-entry
  /**
   * The text stored for `key`, as `service` finds it. Keys are compared
   * lower-cased, as OpenSMTPD lower-cases both the entries it loads and
   * every key it is asked for. Then, by service:
   *
   *   regex                  the first entry whose pattern matches the key;
   *   domain, netaddr,       an entry equal to the key if there is one (a
   *   mailaddr               hash lookup), else the first entry, in source
   *                          order, that matches the key as the service says;
   *   all others             only an entry equal to the key.
   *
   * The second case is a scan of the whole table when the key is not
   * there, in OpenSMTPD's db backend as here: a wildcard cannot be hashed.
   */
  private find(service: Service, key: string): string | undefined {
    this.require(service);
    if (key.length >= MAX_KEY_LENGTH) throw new TableError(`table ${this.name}: lookup key too long`);
    const wanted = asciiLowercase(key);

    if (service === 'regex') {
      const hit = this.backend.patterns?.().find((p) => p.regex.test(wanted));
      return hit && (hit.entry.value ?? hit.entry.key);
    }

    const exact = this.backend.get(wanted);
    const matches = KEY_MATCHERS[service];
    if (exact !== undefined || matches === undefined) return exact;

    const delimiter = this.options.subaddressDelimiter ?? '+';
    for (const entry of this.backend.entries()) {
      if (matches(wanted, entry.key, delimiter)) return entry.value ?? entry.key;
    }
    return undefined;
  }
  // #endregion find-entry

  private require(service: Service): void {
    if (!this.provides(service) || (service === 'regex' && !this.backend.patterns)) {
      throw new TableError(`table ${this.name}: the ${this.backend.name} backend cannot answer ${service} lookups`);
    }
  }

  /** Reads found text as the service's type; a malformed entry is a TableError naming it. */
  private read<S extends Service>(service: S, value: string, key: string): LookupResults[S] {
    try {
      return parseValue(service, value, key);
    } catch (err) {
      throw new TableError(`table ${this.name}: bad ${service} entry for ${JSON.stringify(key)}: ${(err as Error).message}`);
    }
  }

  private traced<T>(operation: LookupTrace['operation'], service: Service, key: string | undefined, run: () => T): T {
    const hook = this.options.trace;
    if (!hook) return run();
    const base = { table: this.name, backend: this.backend.name, operation, service, ...(key !== undefined && { key }) };
    try {
      const result = run();
      hook({ ...base, result });
      return result;
    } catch (err) {
      if (err instanceof TableError) hook({ ...base, result: undefined, error: err });
      throw err;
    }
  }
}
