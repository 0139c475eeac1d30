/**
 * The text format of table files (table(5), aliases(5)), shared by the
 * `file` backend, the `regex` backend and makemap. One format covers three
 * kinds of file:
 *
 *   a list                 a mapping               an aliases file
 *   example.org            joe    1000:100:/home   root: admin, /var/log/root.mbox
 *   *.example.org          jack   1000:100:/home   admin: joe, "|/usr/local/bin/notify"
 *
 * Lines are read by line-reader.ts (comments, continuations); this module
 * decides what a line is.
 */
import { logicalLines } from './line-reader.ts';
import { TableError, type TableEntry, type TableShape } from './types.ts';

/** The content of a table file. */
export interface TableFile {
  shape: TableShape;
  entries: TableEntry[];
}

/**
 * Splits a line into its key and the rest. The key ends at the first blank
 * or colon, so `joe 1000:100:/home`, `root: admin` and `root:admin` all
 * have the keys `joe` and `root`; the separator is blanks with at most one
 * colon among them. A key that starts with `[` runs to the matching `]`, so
 * IPv6 addresses, full of colons, can be keys: `[::1] localhost`. (That
 * rule is OpenSMTPD's since 2024; 6.8 read the `::1 localhost` of table(5)'s
 * own example as the key "" with the value ":1 localhost".)
 *
 * `value` is empty when the line has nothing after the key.
 */
export function splitKeyValue(text: string): { key: string; value: string } {
  let keyEnd: number;
  if (text.startsWith('[') && text.includes(']')) {
    keyEnd = text.indexOf(']') + 1;
  } else {
    const sep = /[ \t:]/.exec(text);
    keyEnd = sep ? sep.index : text.length;
  }
  const rest = text.slice(keyEnd);
  const separator = /^[ \t]*:?[ \t]*/.exec(rest)?.[0] ?? '';
  return { key: text.slice(0, keyEnd), value: rest.slice(separator.length) };
}

// #region list-or-mapping
/**
 * Reads a table file. Nothing in the file says whether it is a list or a
 * mapping, so — as OpenSMTPD's table_static_priv_load() decides — the first
 * entry does: if it has something after its key it is a mapping, otherwise
 * a list, and every later line is read the same way. In a list each line is
 * one whole value (a line `a b` is the value "a b"); in a mapping each line
 * must have a key and a value.
 *
 * A list whose first entry looks like a key and value (an IPv6 address
 * such as `::1` is "nothing, then `:1`") can say what it is with a comment
 * `# @list` before its first entry. makemap, which is told the shape with
 * `-t`, passes it as `shape`.
 */
export function parseTableFile(content: string, file: string, shape?: TableShape): TableFile {
  const entries: TableEntry[] = [];
  let decided = shape;
  for (const { line, text, comment } of logicalLines(content)) {
    if (text === '') {
      if (decided === undefined && comment === '@list') decided = 'list';
      continue;
    }
    const { key, value } = splitKeyValue(text);
    decided ??= value === '' ? 'list' : 'mapping';
    if (decided === 'list') {
      entries.push({ key: text, line });
      continue;
    }
    if (key === '') {
      throw new TableError(`missing key before ${JSON.stringify(value)}${hintForIPv6(text)}`, file, line);
    }
    if (value === '') throw new TableError(`${JSON.stringify(key)} has no value`, file, line);
    entries.push({ key, value, line });
  }
  // An empty file is an empty mapping, like an empty aliases file.
  return { shape: decided ?? 'mapping', entries };
}
// #endregion list-or-mapping

function hintForIPv6(text: string): string {
  return text.startsWith(':')
    ? ' (an IPv6 address as a key goes in brackets, [::1]; a list of addresses can start with "# @list")'
    : '';
}
