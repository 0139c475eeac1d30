/**
 * The queued message is stored as it travelled: CRLF line ends, already
 * dot-unstuffed. Each agent wants it in another shape: Unix line ends for
 * a maildir, an mbox or a command, `>From ` quoting for an mbox, CRLF and
 * dot-stuffing for LMTP. One small line encoder does all of these over
 * Buffers, so that 8-bit content passes through untouched: no decoding to
 * strings, ever.
 */

export interface LineEncoderOptions {
  /** The line end to write: `\n` for files and commands, `\r\n` for LMTP. */
  eol: '\n' | '\r\n';
  /** mboxo quoting: a line starting with `From ` gets a `>` in front (see mbox.ts for why mboxo). */
  quoteFrom?: boolean;
  /** SMTP/LMTP transparency (RFC 5321 4.5.2): a line starting with `.` gets another `.`. */
  dotStuff?: boolean;
  /**
   * Give a last line that has no line end one. Files want it (the next
   * message in an mbox must start on its own line); a command gets the
   * bytes as they are, as OpenSMTPD's mda.c passes them.
   */
  terminateLastLine?: boolean;
  /** Called with each header line (without its line end) until the blank line that ends the header. */
  onHeaderLine?: (line: Buffer) => void;
}

const LF = 0x0a;
const CR = 0x0d;
const FROM_ = Buffer.from('From ');
const GT = Buffer.from('>');
const DOT = Buffer.from('.');

/**
 * A streaming line rewriter: push() chunks in any size, write what it
 * returns, then write what end() returns. A line is only rewritten once
 * its end has been seen, so a line split across chunks is handled whole.
 */
export class LineEncoder {
  private readonly eol: Buffer;
  private carry: Buffer[] = [];
  private inHeader = true;

  constructor(private readonly options: LineEncoderOptions) {
    this.eol = Buffer.from(options.eol);
  }

  push(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    let start = 0;
    for (let lf = chunk.indexOf(LF, start); lf !== -1; lf = chunk.indexOf(LF, start)) {
      let line = chunk.subarray(start, lf);
      if (this.carry.length > 0) {
        line = Buffer.concat([...this.carry, line]);
        this.carry = [];
      }
      this.line(line, true, out);
      start = lf + 1;
    }
    if (start < chunk.length) this.carry.push(chunk.subarray(start));
    return Buffer.concat(out);
  }

  end(): Buffer {
    if (this.carry.length === 0) return Buffer.alloc(0);
    const out: Buffer[] = [];
    this.line(Buffer.concat(this.carry), this.options.terminateLastLine ?? false, out);
    this.carry = [];
    return Buffer.concat(out);
  }

  // #region encode-line
  /** One line, `raw` without its LF; a CR before the LF belongs to the line end, not to the line. */
  private line(raw: Buffer, terminated: boolean, out: Buffer[]): void {
    const line = raw.length > 0 && raw[raw.length - 1] === CR ? raw.subarray(0, raw.length - 1) : raw;
    if (this.inHeader) {
      if (line.length === 0) this.inHeader = false;
      else this.options.onHeaderLine?.(line);
    }
    if (this.options.quoteFrom && startsWith(line, FROM_)) out.push(GT);
    if (this.options.dotStuff && line[0] === 0x2e) out.push(DOT);
    out.push(line);
    // A last line without a line end keeps even its CR, unless we are told to end it.
    if (terminated) out.push(this.eol);
    else if (line !== raw) out.push(raw.subarray(line.length));
  }
  // #endregion encode-line
}

function startsWith(line: Buffer, prefix: Buffer): boolean {
  return line.length >= prefix.length && line.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

/** Chunks of a stream as Buffers, whatever mode the stream is in. */
export async function* bufferChunks(source: AsyncIterable<unknown>): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    if (Buffer.isBuffer(chunk)) yield chunk;
    else if (chunk instanceof Uint8Array) yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    else yield Buffer.from(String(chunk), 'utf8');
  }
}

/** Runs a whole source through an encoder. */
export async function* encodeLines(source: AsyncIterable<unknown>, options: LineEncoderOptions): AsyncGenerator<Buffer> {
  const encoder = new LineEncoder(options);
  for await (const chunk of bufferChunks(source)) {
    const out = encoder.push(chunk);
    if (out.length > 0) yield out;
  }
  const last = encoder.end();
  if (last.length > 0) yield last;
}
