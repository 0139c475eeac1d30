/**
 * Regular expressions for the `regex` service: `match helo regex <table>`,
 * `match rcpt-to regex <table>`, and the entries of a `regex:` table.
 *
 * smtpd.conf(5) entries are POSIX extended regular expressions (regcomp(3)
 * with REG_EXTENDED). JavaScript's syntax is a superset for everything a
 * mail rule needs — anchors, classes, alternation, repetition — except the
 * named classes inside brackets, `[[:digit:]]`, which are rewritten here.
 */
import { TableError, type TableEntry } from './types.ts';

/** A table entry compiled once, when its table is opened or reloaded. */
export interface CompiledPattern {
  entry: TableEntry;
  regex: RegExp;
}

/** What the POSIX bracket classes mean, as JavaScript class contents. */
const POSIX_CLASSES: Record<string, string> = {
  alpha: 'A-Za-z', digit: '0-9', alnum: '0-9A-Za-z', upper: 'A-Z', lower: 'a-z',
  space: ' \\t\\n\\r\\f\\v', blank: ' \\t', punct: '!-\\/:-@\\[-`{-~',
  print: ' -~', graph: '!-~', cntrl: '\\x00-\\x1f\\x7f', xdigit: '0-9A-Fa-f',
};

/**
 * Compiles one entry. A leading `(?i)`, which OpenSMTPD reads as "ignore
 * case", is accepted and dropped: every pattern here ignores case anyway,
 * because lookup keys are lower-cased before they reach a table (OpenSMTPD
 * lower-cases the patterns too, which turns `\S` into `\s`; the `i` flag
 * gets the same effect without rewriting the pattern).
 */
export function compilePattern(entry: TableEntry, file?: string): CompiledPattern {
  const body = entry.key.startsWith('(?i)') ? entry.key.slice(4) : entry.key;
  try {
    const regex = new RegExp(rewriteBracketClasses(body), 'i');
    return { entry, regex };
  } catch (err) {
    const why = err instanceof SyntaxError ? err.message.replace(/^Invalid regular expression: /, '') : String(err);
    throw new TableError(`invalid regular expression ${JSON.stringify(entry.key)}: ${why}`, file, entry.line);
  }
}

/** Rewrites `[:name:]` inside a bracket expression; leaves the rest alone. */
function rewriteBracketClasses(pattern: string): string {
  let out = '';
  let inBracket = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      out += pattern.slice(i, i + 2);
      i++;
    } else if (inBracket && c === '[' && pattern[i + 1] === ':') {
      const end = pattern.indexOf(':]', i + 2);
      const name = end < 0 ? undefined : pattern.slice(i + 2, end);
      const contents = name === undefined ? undefined : POSIX_CLASSES[name];
      if (contents === undefined || name === undefined) throw new SyntaxError(`unknown character class in ${pattern}`);
      out += contents;
      i = end + 1;
    } else {
      // "[]" and "[^]" at the start of a bracket hold a literal "]".
      if (c === '[' && !inBracket) {
        inBracket = true;
        out += c;
        if (pattern[i + 1] === '^') out += pattern[++i];
        if (pattern[i + 1] === ']') {
          out += '\\]';
          i++;
        }
        continue;
      }
      if (c === ']' && inBracket) inBracket = false;
      out += c;
    }
  }
  return out;
}
