/**
 * What the engine needs to know about a message's header section while it
 * streams past: how many Received: fields it has (a mail loop leaves a
 * long trail of them), whether it has Date: and Message-ID: (a submission
 * listener adds them when missing), and where it ends, so that added
 * fields go just before the blank line.
 *
 * The scan reads the content as it will be stored (unstuffed, CRLF line
 * ends), a byte at a time in field names and with indexOf in values, and
 * stops looking at the first byte of the body. Chunks may end anywhere,
 * even inside a field name.
 */

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;

/** The longest field name kept for comparison; the names we look for are shorter. */
const NAME_MAX = 32;

export class HeaderScan {
  /** The number of Received: fields. */
  received = 0;
  hasDate = false;
  hasMessageId = false;
  /** The offset (in all bytes fed so far) where the header section ends; -1 while it goes on. */
  end = -1;
  /**
   * The section ended at a line that is not a field, with no blank line
   * before it: the body starts there, and the stored message needs the
   * blank line the sender left out (see MessageWriter).
   */
  unseparated = false;

  private offset = 0;
  private state: 'line-start' | 'name' | 'before-colon' | 'value' = 'line-start';
  private lineOffset = 0;
  private name = '';

  get done(): boolean {
    return this.end >= 0;
  }

  /**
   * The offset up to which the content fed so far is known to be header
   * fields (or, once done, up to which it is known where the section
   * ends): a line whose name is still being read may yet turn out not to
   * be a field.
   */
  get settled(): number {
    if (this.done) return this.offset;
    return this.state === 'name' || this.state === 'before-colon' ? this.lineOffset : this.offset;
  }

  /**
   * Feeds the next bytes of content. The section ends at the blank line
   * (RFC 5322 2.1), or at the start of a line that cannot be a header
   * field (no `name:`), which some senders write without a blank line
   * before their body; `end` then says where, and `unseparated` is set.
   */
  feed(chunk: Buffer): void {
    if (this.done) return;
    const base = this.offset;
    this.offset += chunk.length;
    let i = 0;
    while (i < chunk.length) {
      const c = chunk[i]!;
      if (this.state === 'line-start') {
        this.lineOffset = base + i;
        if (c === CR || c === LF) return this.finish(base + i, true);
        this.state = c === SP || c === HTAB ? 'value' : 'name';
        this.name = '';
        if (this.state === 'value') continue;
      }
      if (this.state === 'name') {
        if (c === COLON && this.name !== '') {
          this.field(this.name.toLowerCase());
          this.state = 'value';
        } else if (c > SP && c < 0x7f) {
          if (this.name.length < NAME_MAX) this.name += String.fromCharCode(c);
        } else if ((c === SP || c === HTAB) && this.name !== '') {
          this.state = 'before-colon';
        } else {
          return this.finish(this.lineOffset, false);
        }
        i++;
        continue;
      }
      // RFC 5322 4.5.3 (obsolete syntax, still sent): spaces between the name and the colon.
      if (this.state === 'before-colon') {
        if (c === COLON) {
          this.field(this.name.toLowerCase());
          this.state = 'value';
        } else if (c !== SP && c !== HTAB) {
          return this.finish(this.lineOffset, false);
        }
        i++;
        continue;
      }
      const lf = chunk.indexOf(LF, i);
      if (lf < 0) break;
      this.state = 'line-start';
      i = lf + 1;
    }
  }

  private field(name: string): void {
    if (name === 'received') this.received++;
    else if (name === 'date') this.hasDate = true;
    else if (name === 'message-id') this.hasMessageId = true;
  }

  private finish(at: number, blank: boolean): void {
    this.end = at;
    this.unseparated = !blank;
  }
}
