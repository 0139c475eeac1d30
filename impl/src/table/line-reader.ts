/**
 * Splits the text of a table file into logical lines, the way makemap(8)
 * reads its input (fparseln(3) with FPARSELN_UNESCCOMM):
 *
 *   - `#` starts a comment that runs to the end of the physical line,
 *     unless escaped as `\#`, which stands for a literal `#`;
 *   - a line ending in `\` continues on the next line (the backslash and
 *     the line break are removed, nothing is put in their place);
 *   - a line that does not end in `\` ends the logical line, even when
 *     it is blank or only a comment;
 *   - leading and trailing blanks are dropped.
 *
 * Both the `file` backend and makemap use this reader, so that a file means
 * the same thing whether smtpd reads it or makemap compiles it. In
 * OpenSMTPD 6.8 it did not: the file backend (table_static.c) knew only
 * comments that start a line and no continuations, so `key value # note`
 * had the value "value # note" for smtpd and "value" for makemap. OpenSMTPD
 * later (2024) gave both the file backend's simpler reading; we give both
 * the one that table(5), aliases(5) and makemap(8) document.
 */

/** One logical line. */
export interface LogicalLine {
  /** 1-based number of the physical line it starts on. */
  line: number;
  /** The text, comments and continuations removed, trimmed; may be empty. */
  text: string;
  /** The text of a comment found on the line, without its `#`. */
  comment?: string;
}

/**
 * Yields every logical line that has text or a comment; blank lines are
 * skipped. A trailing `\r` (a file written on Windows) is dropped.
 */
export function* logicalLines(content: string): Generator<LogicalLine> {
  const physical = content.split('\n');
  if (physical.at(-1) === '') physical.pop();

  let pending: { line: number; text: string } | undefined;
  for (const [index, raw] of physical.entries()) {
    let text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    let comment: string | undefined;

    const hash = findUnescaped(text, '#');
    if (hash >= 0) {
      comment = text.slice(hash + 1);
      text = text.slice(0, hash);
    }
    const continues = text.endsWith('\\') && findUnescaped(text, '\\', text.length - 1) === text.length - 1;
    if (continues) text = text.slice(0, -1);

    const start = pending ?? { line: index + 1, text: '' };
    start.text += text;
    if (continues) {
      pending = start;
      continue;
    }
    pending = undefined;
    const done = finish(start);
    if (done.text !== '' || comment !== undefined) {
      yield comment === undefined ? done : { ...done, comment: comment.trim() };
    }
  }
  if (pending) yield finish(pending);
}

function finish(acc: { line: number; text: string }): LogicalLine {
  return { line: acc.line, text: acc.text.trim().replaceAll('\\#', '#') };
}

/**
 * Index of the first `char` at or after `from` that is not escaped, that is
 * not preceded by an odd number of backslashes; -1 if there is none.
 */
function findUnescaped(text: string, char: string, from = 0): number {
  for (let i = text.indexOf(char, Math.max(from, 0)); i >= 0; i = text.indexOf(char, i + 1)) {
    let backslashes = 0;
    for (let j = i - 1; j >= 0 && text[j] === '\\'; j--) backslashes++;
    if (backslashes % 2 === 0) return i;
  }
  return -1;
}
