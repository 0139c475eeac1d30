/**
 * Asking the tables about one name: its alias or virtual entry, in the
 * order OpenSMTPD asks (aliases.c), and its account in the userbase. An
 * entry comes back with its origin, which says where it was found and
 * whether its targets may be files and commands; a table that cannot
 * answer is a Failure, temporary, like any fault that may pass.
 */
import { isRelay, type Config, type LocalAction } from '../config/index.ts';
import type { UserRecord } from '../delivery/types.ts';
import type { Logger } from '../log/index.ts';
import { TableError, type AliasTarget, type Table } from '../table/index.ts';
import { EXPANSION_TEMP, Failure, INVALID, messageOf, TEMPORARY } from './failure.ts';
import { actionTables, subaddressDelimiter } from './tables.ts';
import type { Origin } from './tree.ts';
import type { Getpwnam } from './userbase.ts';

/** An alias or virtual entry: its targets, and where they came from. */
export interface Found {
  targets: AliasTarget[];
  origin: Origin;
}

export class Lookups {
  private readonly delimiter: string;
  private readonly systemUserbases: Set<string>;

  /** Throws if an action names a table that `tables` does not hold: a lookup must never find one missing. */
  constructor(
    config: Config,
    private readonly tables: ReadonlyMap<string, Table>,
    private readonly getpwnam: Getpwnam,
    private readonly log: Logger,
  ) {
    this.delimiter = subaddressDelimiter(config);
    // `table users getpwnam` names the system's accounts, which are not a Table here.
    this.systemUserbases = new Set(config.tables.filter((t) => t.backend === 'getpwnam').map((t) => t.name));
    for (const action of config.actions) {
      if (isRelay(action)) continue;
      for (const name of actionTables(action)) {
        if (!tables.has(name) && !this.systemUserbases.has(name)) {
          throw new Error(`${action.loc.file}:${action.loc.line}: action "${action.name}": table ${name} is not open`);
        }
      }
    }
  }

  // #region lookup-order
  /**
   * aliases_get(): a tagged user (`bob+lists`) is looked up as it is,
   * then without its tag; an untagged one as it is.
   */
  alias(action: LocalAction, user: string): Found | undefined {
    const spec = action.options.alias as NonNullable<LocalAction['options']['alias']>;
    const cut = user.indexOf(this.delimiter);
    const keys = cut >= 0 ? [user, user.slice(0, cut)] : [user];
    return this.firstEntry('alias', spec, action, keys);
  }

  /**
   * aliases_virtual_get(), in its order: `user+tag@domain`, `user@domain`,
   * `user+tag`, `user`, then the catch-alls `@domain` and `@`. A user
   * that a virtual entry produced has no domain, and no catch-all.
   */
  virtual(action: LocalAction, user: string, domain: string): Found | undefined {
    const spec = action.options.virtual as NonNullable<LocalAction['options']['virtual']>;
    const cut = user.indexOf(this.delimiter);
    const base = cut >= 0 ? user.slice(0, cut) : user;
    const tagged = cut >= 0 ? user : undefined;
    const keys = domain === ''
      ? [tagged, base]
      : [tagged && `${tagged}@${domain}`, `${base}@${domain}`, tagged, base, `@${domain}`, '@'];
    return this.firstEntry('virtual', spec, action, keys.filter((k): k is string => k !== undefined));
  }
  // #endregion lookup-order

  /**
   * The user's account, or the failure: unknown is permanent, a userbase
   * that cannot answer temporary. `named`, the table line or file line
   * that named the user, starts the log line: in an alias of a thousand
   * members, `user jonh` alone does not say where to fix the typo.
   */
  async user(action: LocalAction, name: string, named?: string): Promise<UserRecord> {
    const base = action.options.userbase;
    const table = base === undefined || this.systemUserbases.has(base) ? undefined : this.tables.get(base);
    const where = table ? `userbase <${base}>` : 'the system accounts';
    const at = named === undefined ? '' : `${named}: `;
    let record: UserRecord | undefined;
    try {
      record = await this.getpwnam(name, table);
    } catch (err) {
      throw new Failure(TEMPORARY, `${at}user ${name}: ${where} could not answer: ${messageOf(err)}`);
    }
    if (!record) throw new Failure(INVALID, `${at}user ${name}: not in ${where}`);
    return record;
  }

  /** The first key with a non-empty entry; a table that cannot answer is a temporary failure. */
  private firstEntry(kind: 'alias' | 'virtual', spec: { table: string; allowExec: boolean }, action: LocalAction, keys: string[]): Found | undefined {
    const table = this.tables.get(spec.table) as Table;
    for (const key of keys) {
      let targets: AliasTarget[] | undefined;
      try {
        targets = table.lookup('alias', key);
      } catch (err) {
        if (!(err instanceof TableError)) throw err;
        throw new Failure(EXPANSION_TEMP, `table ${spec.table}, key ${key}: ${err.message}`);
      }
      if (!targets || targets.length === 0) continue;
      const where = `table ${spec.table}, key ${key}`;
      this.log.trace('expand', `expand: action "${action.name}": ${kind} ${where}`);
      return { targets, origin: { kind, where, allowExec: spec.allowExec, option: `${kind} <${spec.table}> allow-exec` } };
    }
    return undefined;
  }
}
