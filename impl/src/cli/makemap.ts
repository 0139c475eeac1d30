/**
 * makemap — build a `db:` table from a text file, or dump one (makemap(8)).
 *
 *   makemap [-U] [-d dbtype] [-o dbfile] [-t aliases|set] file
 *
 * Without -o the output is `file.db`. The source is read exactly as a
 * `file:` table is read (file-format.ts), except that its shape is not
 * guessed: it is a mapping unless `-t set` says it is a list, and with
 * `-t aliases` every value must be a list of aliases(5) targets.
 */
import { readFileSync, statSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parseAliasValue } from '../table/alias-targets.ts';
import { TableDb, type DbKind } from '../table/db-format.ts';
import { encodeTableDb, replaceFileAtomically, type FileAccess } from '../table/db-writer.ts';
import { indexEntries } from '../table/entry-store.ts';
import { parseTableFile } from '../table/file-format.ts';
import { TableError, type TableEntry } from '../table/types.ts';

const USAGE = 'usage: makemap [-U] [-d dbtype] [-o dbfile] [-t type] file';

/** Where makemap writes; tests pass their own. */
export interface Output {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processOutput: Output = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** Runs makemap with the arguments after the program name; returns the exit status. */
export function makemap(args: string[], out: Output = processOutput): number {
  let options: { dump: boolean; type: DbKind; output?: string; source: string };
  try {
    options = readOptions(args);
  } catch (err) {
    out.stderr(`makemap: ${(err as Error).message}\n${USAGE}\n`);
    return 1;
  }
  try {
    if (options.dump) {
      dump(options.source, out);
      return 0;
    }
    const output = options.output ?? `${options.source}.db`;
    const count = build(options.source, options.type, output);
    if (count === 0) out.stderr(`makemap: warning: empty map created: ${output}\n`);
    return 0;
  } catch (err) {
    const message = err instanceof TableError || isSystemError(err) ? err.message : String(err);
    out.stderr(`makemap: ${message}\n`);
    return 1;
  }
}

function readOptions(args: string[]): { dump: boolean; type: DbKind; output?: string; source: string } {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      dump: { type: 'boolean', short: 'U' },
      dbtype: { type: 'string', short: 'd' },
      output: { type: 'string', short: 'o' },
      type: { type: 'string', short: 't' },
    },
  });
  const [source, ...extra] = positionals;
  if (source === undefined || extra.length > 0) throw new Error('one source file expected');
  // -d chose between Berkeley DB's hash and btree; there is one format here.
  if (values.dbtype !== undefined && values.dbtype !== 'hash' && values.dbtype !== 'btree') {
    throw new Error(`unsupported DB type '${values.dbtype}'`);
  }
  const kinds: Record<string, DbKind> = { aliases: 'aliases', set: 'list' };
  const type = values.type === undefined ? 'mapping' : kinds[values.type];
  if (type === undefined) throw new Error(`unsupported type '${values.type}'`);
  if (source === '-' && values.output === undefined) throw new Error('reading standard input needs -o dbfile');
  return { dump: values.dump ?? false, type, source, ...(values.output !== undefined && { output: values.output }) };
}

/** Compiles `source` into a db at `output`; returns how many entries it holds. */
function build(source: string, kind: DbKind, output: string): number {
  const name = source === '-' ? '<stdin>' : source;
  const text = readFileSync(source === '-' ? 0 : source, 'utf8');
  const { entries } = parseTableFile(text, name, kind === 'list' ? 'list' : 'mapping');
  indexEntries(entries, name); // refuses duplicate keys, naming both lines
  if (kind === 'aliases') entries.forEach((entry) => checkAliases(entry, name));

  replaceFileAtomically(output, encodeTableDb(kind, entries), accessLike(source));
  return entries.length;
}

function checkAliases(entry: TableEntry, file: string): void {
  try {
    parseAliasValue(entry.value ?? '');
  } catch (err) {
    throw new TableError(`${entry.key}: ${(err as Error).message}`, file, entry.line);
  }
}

/**
 * The db gets the permissions of its source, and its owner when we may
 * give it (as root): a credentials file readable only by root must not
 * become a world-readable db.
 */
function accessLike(source: string): FileAccess {
  if (source === '-') return { mode: 0o600 };
  const stats = statSync(source);
  const access: FileAccess = { mode: stats.mode & 0o7777 };
  if (process.getuid?.() === 0) Object.assign(access, { uid: stats.uid, gid: stats.gid });
  return access;
}

/** -U: prints each entry as `key<TAB>value`, or `key` alone for a list, in file order. */
function dump(path: string, out: Output): void {
  const db = TableDb.open(path);
  try {
    for (const { key, value } of db.entries()) out.stdout(value === undefined ? `${key}\n` : `${key}\t${value}\n`);
  } finally {
    db.close();
  }
}

function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && 'code' in err;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = makemap(process.argv.slice(2));
}
