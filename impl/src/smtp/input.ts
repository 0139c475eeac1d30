/**
 * What the client has sent and the engine has not read yet, and how a
 * command line is cut out of it. The socket delivers chunks that end
 * anywhere: half a command, three pipelined commands, the end of a
 * message and the QUIT after it. The buffer keeps the unread bytes in one
 * Buffer and an offset, so that reading a line copies nothing.
 */
import { isUtf8 } from 'node:buffer';

const EMPTY = Buffer.alloc(0);
const LF = 0x0a;
const CR = 0x0d;

export class InputBuffer {
  /** The unread bytes are `buf[pos..]`. */
  buf: Buffer = EMPTY;
  pos = 0;

  get length(): number {
    return this.buf.length - this.pos;
  }

  push(chunk: Buffer): void {
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
   * The next complete line, without its line end, or `undefined` when the
   * line has not arrived yet. Commands end with CRLF; a bare LF is taken
   * as a line end too, as OpenSMTPD's io_getline() takes it. (In a
   * message the rule is stricter: see dot-reader.ts.)
   */
  takeLine(): Buffer | undefined {
    const lf = this.buf.indexOf(LF, this.pos);
    if (lf < 0) return undefined;
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
 * long` and the session goes on; OpenSMTPD 6.8 allows 2048 octets to
 * every command and closes the session past them.
 */
export const COMMAND_LINE_MAX = 512;
const LINE_LIMITS: Readonly<Record<string, number>> = {
  MAIL: COMMAND_LINE_MAX + 26 + 100 + 500 + 10,
  RCPT: COMMAND_LINE_MAX + 500,
  AUTH: 12288,
};

/** The longest line the engine reads at all; past it, without a line end, the session is closed. */
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
