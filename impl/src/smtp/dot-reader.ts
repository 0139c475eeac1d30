/**
 * The message as the client sends it after `354`: lines, with a leading
 * dot doubled ("dot-stuffed") so that no line of the message can be the
 * lone dot that ends it (RFC 5321 4.5.2).
 *
 * DotReader undoes the stuffing and finds the end, over chunks that may
 * end anywhere, without copying the message: it hands back views into the
 * chunk it was given, one per run of bytes that needs no change, so that
 * a message with no dotted lines and no bare LF comes out as one view per
 * chunk.
 */

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');

export interface DotReadResult {
  /** Where the caller's unread input now starts. */
  next: number;
  /** The end of the message was read (`next` is just after it). */
  end: boolean;
}

// #region end-of-data
/**
 * The message ends with CRLF "." CRLF, and with nothing else: the CRLF
 * that ends the DATA command counts as the first one, so that an empty
 * message is just ".\r\n".
 *
 * SMTP smuggling (2023) relies on servers that disagree about this. If a
 * server ended a message at LF "." LF, a sender could hide a second
 * message, with a forged sender, in the body of a first one, for a relay
 * that passes bare LFs through untouched. OpenSMTPD 6.8 was such a server:
 * io_getline() cut lines at every LF and dropped one CR before it, so
 * LF "." LF ended a message there.
 *
 * This reader follows 6.8 in treating a bare LF *inside* the message as a
 * line break, and stores it as CRLF, as the queue's content always is. But
 * a line counts as the final dot only if both the line end before it and
 * its own are CRLF. Any other lone dot (after a bare LF, before a bare LF
 * or a bare CR) is content, and is kept as a "." line: RFC 5321 removes a
 * leading dot only when "there are other characters on the line". A bare
 * CR is content too and is passed through untouched; it never ends a line.
 * So whatever trick the client tries, what was meant to end the message
 * either ends it here as well, or stays inside it, where a later relay
 * dot-stuffs it and sends it on as text.
 */
export class DotReader {
  /** Bare LFs seen (and written as CRLF), for the logs. */
  bareLf = 0;
  /** The next byte starts a line. */
  private lineStart = true;
  /** The line that starts next follows a CRLF (the DATA command's, for the first). */
  private afterCrlf = true;
  /** The last byte read, at the end of the previous chunk, was CR. */
  private lastCr = false;

  /**
   * Reads `buf` from `start`, appending content (unstuffed, CRLF line
   * ends) to `out`. It stops after the final dot, or at the end of `buf`,
   * or just before a line start whose first bytes (".", ".\r") cannot be
   * told apart from the end yet: those stay unread until more arrives.
   */
  read(buf: Buffer, start: number, out: Buffer[]): DotReadResult {
    let i = start;
    let run = start; // content from `run` to `i` is still to be appended
    while (i < buf.length) {
      if (this.lineStart) {
        if (buf[i] === DOT) {
          if (i + 2 >= buf.length && (i + 1 >= buf.length || buf[i + 1] === CR)) {
            push(out, buf, run, i);
            return { next: i, end: false };
          }
          const after = buf[i + 1];
          if (after === CR && buf[i + 2] === LF && this.afterCrlf) {
            push(out, buf, run, i);
            return { next: i + 3, end: true };
          }
          if (after !== CR && after !== LF) {
            push(out, buf, run, i); // drop the stuffed dot
            run = i + 1;
          }
        }
        this.lineStart = false;
      }
      const lf = buf.indexOf(LF, i);
      if (lf < 0) {
        this.lastCr = buf[buf.length - 1] === CR;
        i = buf.length;
        break;
      }
      const crlf = lf > start ? buf[lf - 1] === CR : this.lastCr;
      if (!crlf) {
        push(out, buf, run, lf);
        out.push(CRLF);
        run = lf + 1;
        this.bareLf++;
      }
      this.afterCrlf = crlf;
      this.lineStart = true;
      this.lastCr = false;
      i = lf + 1;
    }
    push(out, buf, run, i);
    return { next: i, end: false };
  }
}
// #endregion end-of-data

function push(out: Buffer[], buf: Buffer, from: number, to: number): void {
  if (to > from) out.push(buf.subarray(from, to));
}
