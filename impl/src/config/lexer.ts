/**
 * The lexer of smtpd.conf(5): turns the text of a file into tokens.
 *
 * The rules, from the man page and from OpenSMTPD 6.8's behaviour:
 *
 * - A statement ends at the end of the line; a backslash as the very last
 *   character of a line joins it to the next one.
 * - `#` starts a comment that runs to the end of the line (a comment ending
 *   in a backslash therefore swallows the next line too).
 * - Words start with a letter, a digit, `_` or `:`; anything else (a path
 *   such as /etc/aliases, a pattern such as *.example.com) must be quoted.
 * - Strings are quoted with `"` or `'`. Macros are not expanded inside them.
 * - `$name` outside quotes is replaced by the macro's value, which is then
 *   read as tokens itself, so one macro can hold several words.
 *
 * The lexer never stops at an error: it reports it and carries on, so one
 * run can show the administrator every problem in the file.
 */
import type { SourceLocation } from './ast.ts';
import { ConfigError, closestWord } from './errors.ts';
import { MACRO_NAME_CHAR, MacroTable } from './macros.ts';

// #region token-type
/**
 * One token. `text` is the word, the string without its quotes, the
 * punctuation character, or "\n" for the end of a statement.
 *
 * `word` and `string` differ in one way that matters: only an unquoted word
 * can be a keyword. `"local"` is the name local; `local` is the keyword.
 * An `error` token stands where the lexer found something it has already
 * reported (an undefined macro, an unterminated string): the parser skips
 * the rest of that statement without a second message.
 */
export interface Token {
  kind: 'word' | 'string' | 'number' | 'punct' | 'newline' | 'eof' | 'error';
  text: string;
  loc: SourceLocation;
  /** The macro this token came from, when it was produced by `$name`. */
  macro?: string;
}

/** The punctuation smtpd.conf uses: table braces, table references, lists, negation. */
const PUNCTUATION = '{}<>,=!';
// #endregion token-type

/** A word starts with one of these; anything else must be quoted. */
const WORD_START = /[A-Za-z0-9_:]/;
/** Characters that end a word (besides white space). */
const WORD_END = '(){}<>!=#,';

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v';
}

function isWordChar(c: string): boolean {
  return c !== '' && c !== '\n' && !isSpace(c) && !WORD_END.includes(c);
}

export interface LexerOptions {
  /** The file name used in locations. */
  file: string;
  /** Macros to expand; the parser adds definitions to it as it reads them. */
  macros?: MacroTable;
  /** Where problems go; by default they are thrown. */
  report?: (error: ConfigError) => void;
}

export class Lexer {
  private pos = 0;
  private line = 1;
  private col = 1;
  /** Tokens already read from a macro's value, handed out before reading on. */
  private readonly pending: Token[] = [];
  readonly file: string;
  readonly macros: MacroTable;
  private readonly report: (error: ConfigError) => void;

  constructor(
    private readonly text: string,
    options: LexerOptions,
    /** Set while reading a macro's value: its tokens all point at the `$name` reference. */
    private readonly expansion?: { name: string; loc: SourceLocation },
  ) {
    this.file = options.file;
    this.macros = options.macros ?? new MacroTable();
    this.report = options.report ?? ((e) => { throw e; });
  }

  // #region next-token
  /** Reads the next token; at the end of the text, returns `eof` forever. */
  next(): Token {
    const queued = this.pending.shift();
    if (queued) return queued;
    for (;;) {
      const c = this.peek();
      const loc = this.here();
      if (c === '') return { kind: 'eof', text: '', loc };
      if (isSpace(c)) {
        this.advance();
      } else if (c === '#') {
        // A comment runs to the end of the line; the newline itself still ends the statement.
        while (this.peek() !== '\n' && this.peek() !== '') this.advance();
      } else if (c === '\n') {
        this.advance();
        return { kind: 'newline', text: '\n', loc };
      } else if (c === '"' || c === "'") {
        return this.readString(loc);
      } else if (c === '$') {
        const expanded = this.expandMacro(loc);
        if (expanded) return expanded;
      } else if (PUNCTUATION.includes(c)) {
        this.advance();
        return { kind: 'punct', text: c, loc };
      } else if (c === '\\') {
        this.strayBackslash(loc);
      } else if (WORD_START.test(c) || c.charCodeAt(0) > 127) { // letters of any script too
        return this.readWord(loc);
      } else if (isWordChar(c)) {
        // `/etc/aliases`, `*.example.com`: read it whole so the error names it, then go on.
        const word = this.readWord(loc);
        this.report(new ConfigError(loc, `"${word.text}" must be quoted`,
          `an argument that starts with "${c}" must be written in double quotes: "${word.text}"`));
        return word;
      } else {
        this.advance();
        this.report(new ConfigError(loc, `unexpected character "${c}"`));
        return { kind: 'error', text: c, loc };
      }
    }
  }
  // #endregion next-token

  /**
   * A word runs until white space or one of `(){}<>!=#,`, so `file:/etc/aliases`
   * and `smtp+tls://bob@smtp.example.com` are single words. A word made of
   * digits only is a number (a port, a limit).
   */
  private readWord(loc: SourceLocation): Token {
    let text = '';
    while (isWordChar(this.peek())) {
      if (this.peek() === '\\') {
        this.strayBackslash(this.here());
        continue;
      }
      text += this.advance();
    }
    return this.token(/^[0-9]+$/.test(text) ? 'number' : 'word', text, loc);
  }

  /**
   * A quoted string, with `"` or `'`. Inside it, `\` followed by the quote,
   * a space or a tab stands for that character, and `\` at the end of a line
   * continues the string on the next line; any other backslash is kept, so
   * regular expressions such as "\.example\.com$" need no doubling.
   */
  private readString(loc: SourceLocation): Token {
    const quote = this.advanceRaw();
    let text = '';
    for (;;) {
      const c = this.text[this.pos] ?? '';
      if (c === quote) {
        this.advanceRaw();
        return this.token('string', text, loc);
      }
      if (c === '' || c === '\n' || (c === '\r' && this.text[this.pos + 1] === '\n')) {
        // Stop at the end of the line, so one missing quote costs one error, not the rest of the file.
        this.report(new ConfigError(loc, 'unterminated quoted string',
          `close the string with ${quote} before the end of the line, or end the line with \\ to continue it`));
        return this.token('error', text, loc);
      }
      this.advanceRaw();
      if (c === '\\') {
        const escaped = this.text[this.pos] ?? '';
        if (escaped === quote || escaped === ' ' || escaped === '\t') {
          text += this.advanceRaw();
          continue;
        }
        if (this.atLineContinuation(this.pos - 1)) {
          this.skipLineContinuation();
          continue;
        }
      }
      text += c;
    }
  }

  // #region expand-macro
  /**
   * `$name` is replaced by the macro's value, read as tokens in its own right:
   * with `opts = "tls auth"`, `listen on lo $opts` reads as `listen on lo tls
   * auth`. The tokens point at the `$name` reference, which is where the
   * administrator should look. A macro's value is not expanded again.
   */
  private expandMacro(loc: SourceLocation): Token | undefined {
    this.advance(); // the $
    let name = '';
    while (MACRO_NAME_CHAR.test(this.peek())) name += this.advance();
    if (name === '') {
      this.report(new ConfigError(loc, '"$" must be followed by a macro name', 'write a literal $ inside double quotes'));
      return { kind: 'error', text: '$', loc };
    }
    if (this.expansion) {
      this.report(new ConfigError(loc, `$${name} inside the value of macro $${this.expansion.name} is not expanded`,
        'macro values are read once; give the macro the value itself'));
      return { kind: 'error', text: `$${name}`, loc };
    }
    const value = this.macros.get(name);
    if (value === undefined) {
      const close = closestWord(name, this.macros.names());
      this.report(new ConfigError(loc, `macro "${name}" is not defined`, close !== undefined
        ? `did you mean $${close}?`
        : `define it on an earlier line, as ${name} = "value", or on the command line with -D ${name}=value`));
      return { kind: 'error', text: `$${name}`, loc };
    }
    const inner = new Lexer(value, { file: this.file, macros: this.macros, report: this.report }, { name, loc });
    for (let t = inner.next(); t.kind !== 'eof'; t = inner.next()) this.pending.push(t);
    return this.pending.shift(); // undefined for an empty value: read on
  }
  // #endregion expand-macro

  /** A backslash that does not end a line: an error, with the likely cause. */
  private strayBackslash(loc: SourceLocation): void {
    this.advance();
    const rest = /^[ \t]+\r?\n/.test(this.text.slice(this.pos));
    this.report(new ConfigError(loc, 'a backslash outside quotes must be the last character of its line',
      rest ? 'remove the spaces after the \\ to continue the line'
        : 'quote the argument that contains the backslash'));
  }

  /** A token; inside a macro's value, located at the `$name` that produced it. */
  private token(kind: Token['kind'], text: string, loc: SourceLocation): Token {
    if (!this.expansion) return { kind, text, loc };
    return { kind, text, loc: this.expansion.loc, macro: this.expansion.name };
  }

  /** The location of the next character (or of the `$name`, inside a macro). */
  private here(): SourceLocation {
    return this.expansion?.loc ?? { file: this.file, line: this.line, col: this.col };
  }

  /** Is there a `\` at `at` followed by the end of the line? */
  private atLineContinuation(at: number): boolean {
    if (this.text[at] !== '\\') return false;
    const next = this.text[at + 1];
    return next === '\n' || (next === '\r' && this.text[at + 2] === '\n');
  }

  /** Steps over the line break after a continuation backslash (already consumed). */
  private skipLineContinuation(): void {
    if (this.text[this.pos] === '\r') this.pos++;
    this.pos++;
    this.line++;
    this.col = 1;
  }

  /** The next character, after joining continued lines; '' at the end. */
  private peek(): string {
    while (this.atLineContinuation(this.pos)) {
      this.pos++;
      this.skipLineContinuation();
    }
    return this.text[this.pos] ?? '';
  }

  /** Consumes the character `peek()` returned. */
  private advance(): string {
    this.peek();
    return this.advanceRaw();
  }

  /** Consumes one character as it is, keeping line and column up to date. */
  private advanceRaw(): string {
    const c = this.text[this.pos] ?? '';
    this.pos++;
    if (c === '\n') {
      this.line++;
      this.col = 1;
    } else {
      this.col++;
    }
    return c;
  }
}

/** Every token of a text up to `eof` (not included), and the problems found. */
export function tokenize(text: string, options: { file: string; macros?: Record<string, string> }): {
  tokens: Token[];
  errors: ConfigError[];
} {
  const errors: ConfigError[] = [];
  const lexer = new Lexer(text, { file: options.file, macros: new MacroTable(options.macros), report: (e) => errors.push(e) });
  const tokens: Token[] = [];
  for (let t = lexer.next(); t.kind !== 'eof'; t = lexer.next()) tokens.push(t);
  return { tokens, errors };
}
