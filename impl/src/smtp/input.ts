/**
 * What the client has sent and the engine has not read yet, and how a
 * command line is cut out of it. The socket delivers chunks that end
 * anywhere: half a command, three pipelined commands, the end of a
 * message and the QUIT after it. The buffer keeps the unread bytes in one
 * Buffer and an offset, so that reading a line copies nothing.
 */
import { isUtf8 } from 'node:buffer';

const EMPTY = Buffer.alloc(0);
/** What takeLine() gives for a line past LINE_BUFFER_MAX. */
export const TOO_LONG = Symbol('line too long');
const LF = 0x0a;
const CR = 0x0d;

export class InputBuffer {
  /** The unread bytes are `buf[pos..]`. */
  buf: Buffer = EMPTY;
  pos = 0;

  /** Every byte ever pushed: a reader that waited can tell whether more came meanwhile. */
  received = 0;

  get length(): number {
    return this.buf.length - this.pos;
  }

  push(chunk: Buffer): void {
    this.received += chunk.length;
    if (this.pos >= this.buf.length) {
      this.buf = chunk;
    } else {
      this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
    }
    this.pos = 0;
  }

  /** Drops everything unread: what a client sent after a command that ends the session. */
  clear(): void {
    this.buf = EMPTY;
    this.pos = 0;
  }

  /**
   * The next complete line, without its line end; `undefined` when the
   * line has not arrived yet; `TOO_LONG` when it is longer than
   * LINE_BUFFER_MAX octets with its line end, or will be, its end not
   * having come within them. The limit is on the line, not on the chunk
   * it came in, so it holds however TCP split the bytes: a long line sent
   * in one write and the same line sent one byte at a time get the same
   * answer. Commands end with CRLF; a bare LF is taken as a line end too,
   * as OpenSMTPD's io_getline() takes it. (In a message the rule is
   * stricter: see dot-reader.ts.)
   */
  takeLine(): Buffer | typeof TOO_LONG | undefined {
    const lf = this.buf.indexOf(LF, this.pos);
    if (lf < 0) return this.length >= LINE_BUFFER_MAX ? TOO_LONG : undefined;
    if (lf + 1 - this.pos > LINE_BUFFER_MAX) return TOO_LONG;
    const end = lf > this.pos && this.buf[lf - 1] === CR ? lf - 1 : lf;
    const line = this.buf.subarray(this.pos, end);
    this.pos = lf + 1;
    return line;
  }
}

// #region line-limits
/**
 * How long a command line may be, CRLF included. RFC 5321 4.5.3.1.4 sets
 * 512 octets, and each extension that adds parameters adds room for them:
 * SIZE 26 (RFC 1870), DSN 100 on MAIL and 500 on RCPT (RFC 3461), AUTH=
 * 500 on MAIL, and 12288 for the AUTH command and its responses (RFC
 * 4954), SMTPUTF8 10 on MAIL (RFC 6531). A longer line gets `500 Line too
 * long` and the session goes on; only a line past LINE_BUFFER_MAX, which
 * the engine will not hold, ends the session. OpenSMTPD 6.8 allows 2,047
 * octets before the CRLF to every command, and past them answers `500
 * 5.0.0 Command line too long` and closes the session.
 */
export const COMMAND_LINE_MAX = 512;
const LINE_LIMITS: Readonly<Record<string, number>> = {
  MAIL: COMMAND_LINE_MAX + 26 + 100 + 500 + 10,
  RCPT: COMMAND_LINE_MAX + 500,
  AUTH: 12288,
};

/** The longest line the engine reads at all, line end included; past it, the session is closed. */
export const LINE_BUFFER_MAX = 12288;

export function lineLimit(verb: string): number {
  return LINE_LIMITS[verb] ?? COMMAND_LINE_MAX;
}
// #endregion line-limits

/**
 * A command line as text; `undefined` if it is not valid UTF-8. Commands
 * are ASCII (RFC 5321 4.1.1); 8-bit octets are allowed only as UTF-8, for
 * SMTPUTF8 addresses (RFC 6531). Plain ASCII, the common case, is decoded
 * without the UTF-8 check.
 */
export function decodeLine(line: Buffer): string | undefined {
  for (let i = 0; i < line.length; i++) {
    if (line[i]! >= 0x80) return isUtf8(line) ? line.toString('utf8') : undefined;
  }
  return line.toString('latin1');
}

/**
 * Capitals for ASCII letters only. Verbs, parameter names and keywords
 * are ASCII; String.prototype.toUpperCase() would also turn the Turkish
 * dotless ı into I and ß into SS, so `MAıL FROM` would pass for MAIL.
 */
export function asciiUpper(text: string): string {
  return text.replace(/[a-z]+/g, (letters) => letters.toUpperCase());
}
