/**
 * The parser's view of the tokens: one token of lookahead, and small
 * helpers that either return what the grammar expects or throw a
 * ConfigError that says what was expected instead.
 */
import type { SourceLocation, ValueOrTable } from './ast.ts';
import { ConfigError, suggest } from './errors.ts';
import type { Lexer, Token } from './lexer.ts';
import { RESERVED_WORDS } from './reserved.ts';

/**
 * Thrown when the rest of a statement must be skipped because its problem
 * has already been reported (by the lexer, for instance).
 */
export class SkipStatement extends Error {
  constructor() {
    super('statement skipped');
  }
}

/** How a token reads in an error message. */
export function describe(t: Token): string {
  switch (t.kind) {
    case 'newline': return 'the end of the line';
    case 'eof': return 'the end of the file';
    case 'string': return `"${t.text}" (quoted)`;
    default: return `"${t.text}"`;
  }
}

export class TokenStream {
  private lookahead: Token | undefined;

  constructor(
    readonly lexer: Lexer,
    /** Records a problem that does not stop the statement (a duplicate option, say). */
    readonly report: (error: ConfigError) => void,
  ) {}

  /** The next token, without consuming it. */
  peek(): Token {
    this.lookahead ??= this.lexer.next();
    if (this.lookahead.kind === 'error') throw new SkipStatement();
    return this.lookahead;
  }

  /** At the end of the file? (Unlike peek, never throws on a token the lexer rejected.) */
  atEof(): boolean {
    this.lookahead ??= this.lexer.next();
    return this.lookahead.kind === 'eof';
  }

  next(): Token {
    const t = this.peek();
    this.lookahead = undefined;
    return t;
  }

  /** At the end of the statement: a newline or the end of the file. */
  atEnd(): boolean {
    const t = this.peek();
    return t.kind === 'newline' || t.kind === 'eof';
  }

  /** Is the next token the unquoted keyword `word`? */
  at(word: string): boolean {
    const t = this.peek();
    return t.kind === 'word' && t.text === word;
  }

  /** Is the next token the punctuation `ch`? */
  atPunct(ch: string): boolean {
    const t = this.peek();
    return t.kind === 'punct' && t.text === ch;
  }

  /** Is the next token usable as a value: a string, a number, or a word that is not reserved? */
  atValue(): boolean {
    const t = this.peek();
    return t.kind === 'string' || t.kind === 'number' || (t.kind === 'word' && !RESERVED_WORDS.has(t.text));
  }

  /** Consumes the keyword `word` if it is next. */
  accept(word: string): Token | undefined {
    return this.at(word) ? this.next() : undefined;
  }

  /** Consumes the punctuation `ch` if it is next. */
  acceptPunct(ch: string): Token | undefined {
    return this.atPunct(ch) ? this.next() : undefined;
  }

  /** Consumes the keyword `word`, or fails saying what it was needed for. */
  expect(word: string, after: string): Token {
    const t = this.accept(word);
    if (t) return t;
    return this.fail(this.peek().loc, `expected "${word}" after ${after}, found ${describe(this.peek())}`);
  }

  expectPunct(ch: string, after: string): Token {
    const t = this.acceptPunct(ch);
    if (t) return t;
    return this.fail(this.peek().loc, `expected "${ch}" after ${after}, found ${describe(this.peek())}`);
  }

  /**
   * A name or a value: a word, a number, or a quoted string. An unquoted
   * reserved word is refused with a hint to quote it, as OpenSMTPD does.
   */
  expectValue(what: string): Token {
    const t = this.peek();
    if (t.kind === 'string' || t.kind === 'number') return this.next();
    if (t.kind === 'word') {
      if (RESERVED_WORDS.has(t.text)) {
        return this.fail(t.loc, `expected ${what}, found the keyword "${t.text}"`,
          `to use "${t.text}" as ${what}, write it in double quotes: "${t.text}"`);
      }
      return this.next();
    }
    return this.fail(t.loc, `expected ${what}, found ${describe(t)}`);
  }

  /** A whole number in [min, max]. */
  expectNumber(what: string, min: number, max: number): { value: number; loc: SourceLocation } {
    const t = this.expectValue(what);
    const value = /^[0-9]+$/.test(t.text) ? Number(t.text) : NaN;
    if (!(value >= min && value <= max)) {
      this.fail(t.loc, `invalid ${what}: "${t.text}"`, `${what} must be a number from ${min} to ${max}`);
    }
    return { value, loc: t.loc };
  }

  /** `<name>`: a reference to a table declared with `table name ...`. */
  expectTableRef(what: string): { name: string; loc: SourceLocation } {
    const open = this.peek();
    if (!(open.kind === 'punct' && open.text === '<')) {
      return this.fail(open.loc, `expected a table for ${what}, written <name>, found ${describe(open)}`);
    }
    this.next();
    const name = this.expectValue('a table name');
    this.expectPunct('>', `<${name.text}`);
    return { name: name.text, loc: open.loc };
  }

  /** Either `<table>` or a single value in its place, as in `from src 10.0.0.0/8`. */
  expectValueOrTable(what: string): ValueOrTable {
    if (this.atPunct('<')) return { kind: 'table', ...this.expectTableRef(what) };
    const value = this.expectValue(`${what} (a value or a <table>)`);
    return { kind: 'value', value: value.text, loc: value.loc };
  }

  /**
   * The statement must end here. If it does not, the next token is an
   * option the statement does not know: say so, with the closest known one.
   */
  expectEnd(statement: string, known: readonly string[] = []): void {
    if (this.atEnd()) return;
    const t = this.peek();
    if (t.kind === 'word' && known.length > 0) {
      this.fail(t.loc, `unknown option "${t.text}" for ${statement}`, suggest(t.text, known, 'known options'));
    }
    this.fail(t.loc, `unexpected ${describe(t)} at the end of ${statement}`);
  }

  /** Skips what is left of the statement, including its newline. */
  skipStatement(): void {
    for (;;) {
      const t = this.lookahead ?? this.lexer.next();
      this.lookahead = undefined;
      if (t.kind === 'newline') return;
      if (t.kind === 'eof') {
        this.lookahead = t;
        return;
      }
    }
  }

  /** Stops the statement with an error. */
  fail(loc: SourceLocation, message: string, hint?: string): never {
    throw new ConfigError(loc, message, hint);
  }
}
