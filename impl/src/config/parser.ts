/**
 * The parser: reads statements one line at a time and builds a Config.
 *
 * It is a recursive-descent parser: one function per statement, each
 * reading the tokens its grammar expects. A statement with an error is
 * reported and skipped to the end of its line, and parsing goes on with
 * the next one, so a single run lists every problem in the file.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type Config, emptyConfig, type Statement } from './ast.ts';
import { checkConfig } from './check.ts';
import { checkFiles, diskAccess, type FileAccess } from './check-files.ts';
import { ConfigError, ConfigWarning, sortErrors, suggest } from './errors.ts';
import { Lexer, type Token } from './lexer.ts';
import { MacroTable } from './macros.ts';
import { parseAction } from './parse-action.ts';
import { parseFilter, parseProc } from './parse-filter.ts';
import { parseCa, parseGlobal, parseMda, parsePki } from './parse-global.ts';
import { parseListen } from './parse-listen.ts';
import { parseMatch } from './parse-match.ts';
import { parseTable } from './parse-table.ts';
import { RESERVED_WORDS, STATEMENT_KEYWORDS } from './reserved.ts';
import { SkipStatement, TokenStream } from './token-stream.ts';

export interface ParseOptions {
  /** The file name to show in locations. */
  file: string;
  /** Macros from the command line (`-D name=value`); they win over the file's definitions. */
  macros?: Record<string, string>;
  /** How `include` reads a file; by default, from the disk. */
  readFile?: (path: string) => string;
  /**
   * Also open the files the configuration names (table files, certificates,
   * keys), as `smtpd -n` does. Off by default, so that parsing a text never
   * touches the disk; `true` reads the real disk.
   */
  checkFiles?: boolean | FileAccess;
}

export interface ParseResult {
  config: Config;
  /** Every problem found, in file order; the config is usable only when this is empty. */
  errors: ConfigError[];
  /** What the file means that the administrator may not expect; the config is usable anyway. */
  warnings: ConfigWarning[];
}

/** What the parse of one file, and of the files it includes, shares. */
interface ParseState {
  config: Config;
  errors: ConfigError[];
  warnings: ConfigWarning[];
  macros: MacroTable;
  readFile: (path: string) => string;
  /** The files being read, outermost first, to refuse an include loop. */
  files: string[];
  /** The first word, and the first two words, of each statement that failed to parse. */
  broken: Set<string>;
}

/** Parses the text of a configuration file, then checks what it refers to. */
export function parseConfig(text: string, options: ParseOptions): ParseResult {
  const state: ParseState = {
    config: emptyConfig(),
    errors: [],
    warnings: [],
    macros: new MacroTable(options.macros),
    readFile: options.readFile ?? ((path) => readFileSync(path, 'utf8')),
    files: [resolve(options.file)],
    broken: new Set(),
  };
  parseFile(text, options.file, state);
  state.errors.push(...checkConfig(state.config, options.file, state.broken));
  if (options.checkFiles) {
    state.errors.push(...checkFiles(state.config, options.checkFiles === true ? diskAccess : options.checkFiles));
  }
  return { config: state.config, errors: sortErrors(state.errors), warnings: sortErrors(state.warnings) };
}

function parseFile(text: string, file: string, state: ParseState): void {
  const report = (e: ConfigError) => (e instanceof ConfigWarning ? state.warnings : state.errors).push(e);
  const s = new TokenStream(new Lexer(text, { file, macros: state.macros, report }), report);
  while (!s.atEof()) parseStatement(s, state);
}

// #region statement-dispatch
/** The parser of each statement, by its first word (`include` is read in place, below). */
const STATEMENTS: Record<Exclude<(typeof STATEMENT_KEYWORDS)[number], 'include'>, (s: TokenStream, start: Token) => Statement> = {
  action: parseAction, admd: parseGlobal, bounce: parseGlobal, ca: parseCa, filter: parseFilter,
  listen: parseListen, match: parseMatch, mda: parseMda, mta: parseGlobal, pki: parsePki, proc: parseProc,
  queue: parseGlobal, scheduler: parseGlobal, smtp: parseGlobal, srs: parseGlobal, table: parseTable,
};

/**
 * Reads one statement (or an empty line) and adds it to the config. The
 * first word says which statement it is; `name = value` defines a macro.
 * On an error, the rest of the line is skipped: the next line is a new start.
 */
function parseStatement(s: TokenStream, state: ParseState): void {
  let first: Token | undefined;
  let second: Token | undefined;
  try {
    first = s.next();
    if (first.kind === 'newline') return;
    second = s.peek();
    if (first.kind === 'word' && s.atPunct('=')) {
      add(state.config, defineMacro(s, first, state.macros));
    } else if (first.kind === 'word' && first.text === 'include') {
      include(s, first, state);
    } else if (first.kind === 'word' && Object.hasOwn(STATEMENTS, first.text)) {
      add(state.config, STATEMENTS[first.text as keyof typeof STATEMENTS](s, first));
    } else {
      throw new ConfigError(first.loc, `unknown statement "${first.text}"`,
        first.kind === 'word' ? suggest(first.text, STATEMENT_KEYWORDS, 'a statement starts with one of') : undefined);
    }
    s.expectEnd(`the ${first.text} statement`);
  } catch (e) {
    if (e instanceof ConfigError) state.errors.push(e);
    else if (!(e instanceof SkipStatement)) throw e;
    // Remember what failed (`match`, `action local`...), so that the checks
    // do not report it a second time as a missing rule or an unknown name.
    if (first) state.broken.add(first.text);
    if (first && (second?.kind === 'word' || second?.kind === 'string')) state.broken.add(`${first.text} ${second.text}`);
  }
  s.skipStatement();
}
// #endregion statement-dispatch

/** Adds a statement to the file-order list and to the list of its kind. */
function add(config: Config, st: Statement): void {
  config.statements.push(st);
  switch (st.kind) {
    case 'macro': config.macros.push(st); break;
    case 'table': config.tables.push(st); break;
    case 'pki': config.pkis.push(st); break;
    case 'ca': config.cas.push(st); break;
    case 'listen': config.listeners.push(st); break;
    case 'action': config.actions.push(st); break;
    case 'mda-wrapper': config.wrappers.push(st); break;
    case 'match': config.rules.push(st); break;
    case 'filter': config.filters.push(st); break;
    case 'proc': config.procs.push(st); break;
    case 'include': break;
    default: config.options.push(st);
  }
}

/**
 * `name = value`: defines a macro for the lines that follow. The value is
 * one word or one quoted string; quote it to hold several words.
 */
function defineMacro(s: TokenStream, name: Token, macros: MacroTable): Statement {
  if (RESERVED_WORDS.has(name.text)) {
    s.fail(name.loc, `"${name.text}" is a reserved word and cannot name a macro`, 'choose another name, such as my_' + name.text.replace(/-/g, '_'));
  }
  s.next(); // =
  const value = s.expectValue(`the value of macro ${name.text}, in double quotes`);
  s.expectEnd(`the definition of macro ${name.text}`);
  macros.define(name.text, value.text);
  return { kind: 'macro', name: name.text, value: value.text, loc: name.loc };
}

/** `include "file"`: the file's statements are read here, as if written in place. */
function include(s: TokenStream, start: Token, state: ParseState): void {
  const where = s.expectValue('the file to include, in double quotes');
  s.expectEnd('include');
  const path = resolve(dirname(start.loc.file), where.text);
  if (state.files.includes(path)) {
    s.fail(where.loc, `"${where.text}" is already being read: include loop`, `included from: ${state.files.join(' -> ')}`);
  }
  let text: string;
  try {
    text = state.readFile(path);
  } catch (e) {
    return s.fail(where.loc, `cannot read included file "${path}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  add(state.config, { kind: 'include', path, loc: start.loc });
  state.files.push(path);
  try {
    parseFile(text, path, state);
  } finally {
    state.files.pop();
  }
}
