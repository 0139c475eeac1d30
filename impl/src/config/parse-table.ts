/**
 * `table name [backend:]path` and `table name { ... }`.
 */
import type { TableDecl, TableEntries } from './ast.ts';
import { suggest } from './errors.ts';
import type { Token } from './lexer.ts';
import { describe, type TokenStream } from './token-stream.ts';

/**
 * Table backends. `file`, `db`, `static` and `getpwnam` are built into
 * OpenSMTPD 6.8; the others run a helper program (table-ldap, table-sqlite...).
 * `regex` (a file of regular expressions) is this project's addition.
 */
export const TABLE_BACKENDS = [
  'file', 'db', 'static', 'getpwnam', 'regex', 'proc',
  'ldap', 'mysql', 'passwd', 'postgres', 'redis', 'socketmap', 'sqlite',
] as const;

// #region parse-table
/**
 * After `table`: a name, then either where the table lives or its
 * contents between braces.
 *
 *     table aliases file:/etc/mail/aliases     backend "file", a path
 *     table aliases /etc/mail/aliases          the same: "file" is the default
 *     table domains { example.com, example.org }          a list
 *     table users { bob = bob@example.com }               a mapping
 */
export function parseTable(s: TokenStream, start: Token): TableDecl {
  const name = s.expectValue('a table name').text;
  if (s.acceptPunct('{')) {
    const entries = parseEntries(s, name);
    s.expectEnd(`table ${name}`);
    return { kind: 'table', name, backend: 'static', entries, loc: start.loc };
  }
  const where = s.expectValue(`where table ${name} is stored, such as file:/etc/mail/${name}`);
  s.expectEnd(`table ${name}`);

  // "/path" means "file:/path"; a backend alone ("getpwnam") takes no path.
  const colon = where.text.indexOf(':');
  const backend = where.text.startsWith('/') ? 'file' : colon < 0 ? where.text : where.text.slice(0, colon);
  const path = where.text.startsWith('/') ? where.text : colon < 0 ? undefined : where.text.slice(colon + 1);
  if (!(TABLE_BACKENDS as readonly string[]).includes(backend)) {
    s.fail(where.loc, `unknown table backend "${backend}"`, suggest(backend, TABLE_BACKENDS, 'known backends'));
  }
  if (path !== undefined && !path.startsWith('/')) {
    s.fail(where.loc, `the path of table ${name} must be absolute: "${path}"`, `write ${backend}:/full/path/to/${name}`);
  }
  return { kind: 'table', name, backend, ...(path !== undefined && { path, pathLoc: where.loc }), loc: start.loc };
}
// #endregion parse-table

/**
 * The inside of `{ ... }`: values or `key = value` pairs, separated by
 * commas or spaces. The first entry decides which; mixing is an error.
 * Like every statement, an inline table ends with its line.
 */
function parseEntries(s: TokenStream, table: string): TableEntries {
  const values: string[] = [];
  const pairs: { key: string; value: string }[] = [];
  const open = s.peek();
  if (open.kind === 'punct' && open.text === '}') {
    s.fail(open.loc, `table ${table} is empty`, 'an inline table needs at least one value');
  }
  let first = true;
  while (!s.acceptPunct('}')) {
    if (!first) s.acceptPunct(',');
    const t = s.peek();
    if (t.kind === 'newline' || t.kind === 'eof') {
      s.fail(t.loc, `table ${table} is missing its closing "}"`,
        'an inline table must end on the line it starts; end a line with \\ to continue it');
    }
    if (t.kind === 'punct') s.fail(t.loc, `expected a value in table ${table}, found ${describe(t)}`);
    const key = s.expectValue(`a value in table ${table}`);
    const isPair = s.acceptPunct('=') !== undefined;
    if (!first && isPair !== pairs.length > 0) {
      s.fail(key.loc, `table ${table} mixes plain values and key = value pairs`,
        'a table is either a list of values or a mapping of keys to values; declare two tables');
    }
    if (isPair) pairs.push({ key: key.text, value: s.expectValue(`the value for "${key.text}"`).text });
    else values.push(key.text);
    first = false;
  }
  return pairs.length > 0 ? { shape: 'mapping', pairs } : { shape: 'list', values };
}
