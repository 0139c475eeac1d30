/**
 * Streams one message into the queue: the Received: field first, then the
 * client's content as DotReader hands it over, checked on the way (size,
 * NUL characters, mail loops) and, on a submission listener, completed
 * with Date: and Message-ID: if the sender left them out.
 *
 * Nothing here holds a whole message. Content goes to the queue as it
 * arrives, one write per chunk read from the client, the Received: field
 * with the first. Only a submission listener holds the header section
 * back (it is small, and bounded by HOLD_MAX), because it cannot know
 * whether Date: is missing before the header section has ended.
 */
import type { IncomingMessage } from '../queue/backend.ts';
import { HeaderScan } from './headers.ts';

const CRLF = Buffer.from('\r\n');

/** Why a message will be refused at the end of DATA. */
export type MessageError = 'size' | 'nul' | 'loop' | 'io';

/** OpenSMTPD's MAX_HOPS_COUNT: this many Received: fields mean the message is going round in circles. */
export const MAX_HOPS = 100;
/** The most header bytes a submission listener holds back; past it, nothing is added. */
const HOLD_MAX = 256 * 1024;

export interface MessageWriterOptions {
  /** `smtp max-message-size`: the most octets of content accepted. */
  maxSize: number;
  /** Fields to add if missing (submission listeners); made when needed. */
  missingFields?: () => { date: string; messageId: string };
}

export class MessageWriter {
  /** Octets of the client's content so far, as stored (unstuffed, CRLF); the engine's own lines not counted. */
  size = 0;
  /** Set at the first problem; from then on nothing more is stored, but the client's content is still read to its end. */
  error: MessageError | undefined;
  private readonly scan = new HeaderScan();
  /** Content held back until the end of the header section is known, on a submission listener. */
  private held: Buffer[] | undefined;
  private heldLength = 0;
  /** The engine's lines (Received:), not yet written: they go with the first content. */
  private lead: Buffer | undefined;
  /** The start of a header line not yet known to be a field (see separated()). */
  private undecided: Buffer[] = [];
  private undecidedLength = 0;
  /** The scan has just found the body starting with no blank line before it. */
  private separatorDue = false;

  constructor(private readonly message: IncomingMessage, private readonly opts: MessageWriterOptions) {
    if (opts.missingFields) this.held = [];
  }

  /**
   * The engine's first line(s), before any content. They leave with the
   * first chunk of content rather than on their own: at `354` the client
   * has sent nothing yet, and a write of its own would wake the queue
   * once more per message for a hundred bytes.
   */
  begin(fields: string): void {
    this.lead = Buffer.from(fields, 'utf8');
  }

  // #region stream-content
  /**
   * Takes the next run of content. Each piece is counted and checked
   * before it is stored: once the message is over `max-message-size` or
   * has a NUL, it will be refused, so storing more would only fill the
   * disk. The client is not told until the final dot (SMTP has no way to
   * interrupt DATA), and must still send the rest, which the session reads
   * and drops. Of two problems, the one that comes first in the message
   * is the one reported, so that the reply does not depend on where TCP
   * cut it: the header scan reads a piece only up to its first NUL or its
   * first octet over the limit, and a loop found there comes first.
   */
  async content(pieces: Buffer[]): Promise<void> {
    const batch: Buffer[] = [];
    for (const piece of pieces) {
      if (this.error) return;
      const room = this.opts.maxSize - this.size;
      const nul = piece.indexOf(0);
      const clean = Math.min(nul < 0 ? piece.length : nul, room);
      this.size += piece.length;
      if (!this.scan.done) {
        this.scan.feed(clean < piece.length ? piece.subarray(0, clean) : piece);
        if (this.scan.received >= MAX_HOPS) this.error = 'loop';
        this.separatorDue = this.scan.unseparated;
      }
      if (!this.error && clean < piece.length) this.error = nul >= 0 && nul < room ? 'nul' : 'size';
      if (this.error) return;
      batch.push(...this.separated(piece, this.size - piece.length));
    }
    if (this.held) return this.hold(batch);
    await this.write(batch);
  }
  // #endregion stream-content

  /**
   * A piece of content, with the blank line the sender left out if the
   * header section ends in it without one (`at` is where the piece
   * starts in the content). The scan decides that the body starts at a
   * line that is not a field; readers do not all agree (Python's email
   * module starts the body there, Dovecot reads on to the next blank line
   * and takes what comes before it for header fields), so the stored
   * message says it the one way every reader understands. The start of a
   * header line is held back until the scan knows whether it is a field.
   */
  private separated(piece: Buffer, at: number): Buffer[] {
    if (this.undecided.length === 0 && this.scan.done && !this.separatorDue) return [piece];
    const from = at - this.undecidedLength;
    const data = this.undecided.length === 0 ? piece : Buffer.concat([...this.undecided, piece]);
    this.undecided = [];
    this.undecidedLength = 0;
    if (this.separatorDue) {
      this.separatorDue = false;
      const cut = this.scan.end - from;
      return [data.subarray(0, cut), CRLF, data.subarray(cut)];
    }
    const keep = this.scan.settled - from;
    if (keep < data.length) {
      this.undecided.push(data.subarray(keep));
      this.undecidedLength = data.length - keep;
    }
    return keep > 0 ? [data.subarray(0, keep)] : [];
  }

  /** The client's content has all arrived: stores what is still held back (the engine's lines alone, for an empty message). */
  async finish(): Promise<void> {
    if (this.undecided.length > 0 && !this.error) {
      const rest = this.undecided;
      this.undecided = [];
      if (this.held) await this.hold(rest);
      else await this.write(rest);
    }
    if (this.held && !this.error) await this.release(this.heldLength);
    if (this.lead) await this.write([]);
  }

  /** Drops the message from the queue (refused, or the client went away); never throws. */
  async abort(): Promise<void> {
    try {
      await this.message.abort();
    } catch {
      // The queue purges incomplete messages at start-up anyway.
    }
  }

  /**
   * On a submission listener (port 587 or the local socket, as OpenSMTPD
   * 6.8 decides), a message from a mail client may lack Date: and
   * Message-ID:, which RFC 5322 3.6 requires; the first MTA adds them,
   * at the end of the header section.
   */
  private async hold(batch: Buffer[]): Promise<void> {
    for (const piece of batch) {
      this.held!.push(piece);
      this.heldLength += piece.length;
    }
    if (this.scan.done) await this.release(this.scan.end);
    else if (this.heldLength > HOLD_MAX) await this.release(-1);
  }

  /** Writes the held content with the missing fields inserted at offset `at` (-1: none inserted). */
  private async release(at: number): Promise<void> {
    const held = Buffer.concat(this.held!);
    this.held = undefined;
    if (at < 0) return this.write([held]);
    const { date, messageId } = this.opts.missingFields!();
    let fields = '';
    if (!this.scan.hasDate) fields += `Date: ${date}\r\n`;
    if (!this.scan.hasMessageId) fields += `Message-ID: ${messageId}\r\n`;
    await this.write([held.subarray(0, at), Buffer.from(fields, 'utf8'), held.subarray(at)]);
  }

  private async write(pieces: Buffer[]): Promise<void> {
    if (this.lead) {
      pieces = [this.lead, ...pieces];
      this.lead = undefined;
    }
    const chunk = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
    if (chunk.length === 0 || this.error) return;
    try {
      await this.message.write(chunk);
    } catch {
      this.error = 'io';
    }
  }
}
