/**
 * Entries held in memory, for the backends that read their whole source
 * when the table is opened: `static`, `file` and `regex`.
 */
import { asciiLowercase } from './lowercase.ts';
import { compilePattern, type CompiledPattern } from './match-regex.ts';
import { TableError, type TableEntry, type TableShape } from './types.ts';

/**
 * Indexes entries by lower-cased key. Two entries with the same key are an
 * error naming both lines: OpenSMTPD's file backend silently kept the last
 * one while makemap refused the file, and an aliases file that means one
 * thing to smtpd and another to makemap helps nobody.
 */
export function indexEntries(entries: readonly TableEntry[], file?: string): Map<string, TableEntry> {
  const index = new Map<string, TableEntry>();
  for (const entry of entries) {
    const key = asciiLowercase(entry.key);
    const earlier = index.get(key);
    if (earlier) {
      const where = earlier.line === undefined ? '' : ` (first on line ${earlier.line})`;
      throw new TableError(`duplicate entry for ${JSON.stringify(entry.key)}${where}`, file, entry.line);
    }
    index.set(key, entry);
  }
  return index;
}

export class EntryStore {
  private readonly byKey: Map<string, TableEntry>;
  private compiled: CompiledPattern[] | TableError | undefined;

  constructor(
    readonly shape: TableShape,
    readonly entries: readonly TableEntry[],
    /** The file the entries came from, for error messages. */
    readonly file?: string,
  ) {
    this.byKey = indexEntries(entries, file);
  }

  /** The value under `key` (already lower-cased); in a list, the entry itself. */
  get(key: string): string | undefined {
    const entry = this.byKey.get(key);
    return entry && (entry.value ?? entry.key);
  }

  // #region compile-once
  /**
   * Every entry compiled as a regular expression — once per store, which
   * is once per open or reload, since a reload builds a new store. The
   * first `regex` lookup pays for the compilation and every later one
   * reuses it. OpenSMTPD's table_regex_match() (table.c) instead runs
   * regcomp() inside every lookup, for every entry tried; in the 6.8 that
   * OpenBSD 6.8 shipped it also never called regfree(), so memory grew with
   * every lookup until table.c 1.49 (December 2020, portable 6.8.0p1).
   *
   * A pattern that does not compile is an error naming its line, not an
   * entry that silently never matches.
   */
  patterns(): readonly CompiledPattern[] {
    if (this.compiled === undefined) {
      try {
        this.compiled = this.entries.map((entry) => compilePattern(entry, this.file));
      } catch (err) {
        this.compiled = err as TableError; // remembered too: a bad table is not recompiled per lookup
      }
    }
    if (this.compiled instanceof TableError) throw this.compiled;
    return this.compiled;
  }
  // #endregion compile-once
}
