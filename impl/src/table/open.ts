/**
 * Opening a table from its declaration: the backend chosen by name, as
 * OpenSMTPD's table_create() chooses it.
 */
import type { TableDecl } from '../config/ast.ts';
import type { TableBackend, TableSource } from './backend.ts';
import { openDbBackend } from './backends/db.ts';
import { openFileBackend } from './backends/file.ts';
import { openRegexBackend } from './backends/regex.ts';
import { openStaticBackend } from './backends/static.ts';
import { Table, type TableOptions } from './table.ts';
import { TableError, type TableEntry } from './types.ts';

/** Opens a table; throws TableError, naming the file and line, if its source cannot be read. */
export function openTable(name: string, source: TableSource, options: TableOptions = {}): Table {
  return new Table(name, openBackend(source), options);
}

function openBackend(source: TableSource): TableBackend {
  switch (source.backend) {
    case 'static':
      return openStaticBackend(source.entries, source.file);
    case 'file':
      return openFileBackend(source.path);
    case 'db':
      return openDbBackend(source.path);
    case 'regex':
      return openRegexBackend(source.path);
  }
}

/**
 * What a `table` statement of smtpd.conf gives its backend. The parser has
 * already split `db:/path` into backend and path and checked that the path
 * is absolute; what it cannot know is whether the backend exists here.
 * OpenSMTPD runs any other name as an external program (`table-ldap`...);
 * we have none, so those are refused.
 */
export function tableSource(decl: TableDecl): TableSource {
  const { backend, path, entries, loc } = decl;
  if (backend === 'static' && entries) {
    const items: TableEntry[] =
      entries.shape === 'list'
        ? entries.values.map((key) => ({ key, line: loc.line }))
        : entries.pairs.map(({ key, value }) => ({ key, value, line: loc.line }));
    return { backend: 'static', entries: items, file: loc.file };
  }
  if ((backend === 'file' || backend === 'db' || backend === 'regex') && path !== undefined) {
    return { backend, path };
  }
  throw new TableError(`table ${decl.name}: the ${backend} backend is not available`, loc.file, loc.line);
}
