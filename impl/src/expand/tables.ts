/**
 * The tables expansion reads: the ones each local action names (alias,
 * virtual, userbase), opened once for the lookup process, and the
 * sub-address delimiter they are opened with.
 */
import { isRelay, type Config, type LocalAction } from '../config/index.ts';
import { openTable, tableSource, type Table, type TraceHook } from '../table/index.ts';
import { messageOf } from './failure.ts';

/** `smtp sub-addr-delim`, the last one given; `+` by default. */
export function subaddressDelimiter(config: Config): string {
  const delim = config.options.filter((o) => o.kind === 'smtp sub-addr-delim').at(-1);
  return delim?.kind === 'smtp sub-addr-delim' ? delim.delimiter : '+';
}

/**
 * Opens the tables the local actions name (alias, virtual, userbase),
 * each once, with the configuration's sub-address delimiter. A
 * `getpwnam` userbase is the system's accounts and is not opened.
 * Throws, naming the action, if one cannot be opened.
 */
export function openActionTables(config: Config, trace?: TraceHook): Map<string, Table> {
  const declared = new Map(config.tables.map((t) => [t.name, t]));
  const delimiter = subaddressDelimiter(config);
  const tables = new Map<string, Table>();
  for (const action of config.actions) {
    if (isRelay(action)) continue;
    for (const name of actionTables(action)) {
      const decl = declared.get(name);
      if (tables.has(name) || decl?.backend === 'getpwnam') continue;
      const at = `${action.loc.file}:${action.loc.line}: action "${action.name}"`;
      if (!decl) throw new Error(`${at}: no table named ${name}`);
      try {
        tables.set(name, openTable(name, tableSource(decl), { subaddressDelimiter: delimiter, ...(trace && { trace }) }));
      } catch (err) {
        for (const t of tables.values()) t.close();
        throw new Error(`${at}: ${messageOf(err)}`);
      }
    }
  }
  return tables;
}

/** The names of the tables a local action reads. */
export function actionTables(action: LocalAction): string[] {
  const o = action.options;
  return [o.alias?.table, o.virtual?.table, o.userbase].filter((n): n is string => n !== undefined);
}
