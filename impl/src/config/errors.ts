import type { SourceLocation } from './ast.ts';

/**
 * A problem in a configuration file, at a place the administrator can find:
 * file, line and column, what is wrong, and when we can tell, a hint on how
 * to fix it.
 */
export class ConfigError extends Error {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly hint: string | undefined;
  readonly severity: 'error' | 'warning' = 'error';

  constructor(loc: SourceLocation, message: string, hint?: string) {
    super(message);
    this.name = 'ConfigError';
    this.file = loc.file;
    this.line = loc.line;
    this.col = loc.col;
    this.hint = hint;
  }

  get loc(): SourceLocation {
    return { file: this.file, line: this.line, col: this.col };
  }

  /** `FILE:LINE:COL: message` (`FILE: message` for the file as a whole), and the hint on an indented second line. */
  override toString(): string {
    const where = this.line > 0 ? `${this.file}:${this.line}:${this.col}` : this.file;
    const first = `${where}: ${this.severity === 'warning' ? 'warning: ' : ''}${this.message}`;
    return this.hint === undefined ? first : `${first}\n    hint: ${this.hint}`;
  }
}

/**
 * Something the file means that the administrator may not expect, but
 * that is not wrong: printed like an error with "warning:" in front, and
 * the configuration is still used.
 */
export class ConfigWarning extends ConfigError {
  override readonly severity = 'warning';

  constructor(loc: SourceLocation, message: string, hint?: string) {
    super(loc, message, hint);
    this.name = 'ConfigWarning';
  }
}

/** Errors in the order the administrator will want to read them: by file, line, column. */
export function sortErrors<E extends ConfigError>(errors: E[]): E[] {
  return [...errors].sort(
    (a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col,
  );
}

/**
 * How many single-character edits turn `a` into `b`: insertions, deletions,
 * substitutions, and swaps of two neighbours, so that the common typo
 * `maildri` is one edit away from `maildir`, not two.
 */
export function editDistance(a: string, b: string): number {
  // d[i][j] is the distance between the first i letters of a and the first j of b.
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i, ...Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(
        d[i - 1]![j]! + 1, // delete a letter of a
        d[i]![j - 1]! + 1, // insert a letter of b
        d[i - 1]![j - 1]! + cost, // keep or substitute
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[i - 2]![j - 2]! + 1); // swap two neighbours
      }
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

// #region closest-word
/**
 * The candidate closest to `word`, if it is close enough to be what the
 * administrator meant: one edit for short words, up to a third of the
 * word's length (at most three) for longer ones. A wild guess is worse
 * than no guess, so anything further away gives `undefined`.
 */
export function closestWord(word: string, candidates: Iterable<string>): string | undefined {
  const allowed = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  let best: string | undefined;
  let bestDistance = allowed + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** The hint for an unknown word: the closest known one, else the whole list. */
export function suggest(word: string, known: readonly string[], what: string): string {
  const close = closestWord(word, known);
  if (close !== undefined) return `did you mean "${close}"?`;
  return `${what}: ${known.join(', ')}`;
}
// #endregion closest-word
