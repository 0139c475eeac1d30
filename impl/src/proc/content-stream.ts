/**
 * A message's content between two processes, after the request that
 * announces it: chunk frames tagged with the request's `ref`, then one
 * empty chunk for the end. The queue sends a message this way to the
 * dispatcher, and the dispatcher to a delivery agent, so that neither
 * holds a whole message as one JSON string.
 */
import { Readable } from 'node:stream';
import type { Transport } from './transport.ts';

/** Content is cut into frames of at most this size. */
const CHUNK = 256 * 1024;

// #region content-window
/**
 * How much of one message the sender may have sent that the receiver has
 * not read yet. Without it the receiver took every chunk as it came, and
 * held what it could not pass on: the dispatcher, which holds a delivery
 * until it has a slot (7 for one user, 50 in all) and then goes at the
 * agent's pace, grew by the whole of every such message (three 50 MB
 * messages: 330 MB), and a burst of large mail for one user could run it
 * out of memory, and the whole daemon down with it. Now the receiver says
 * what it has read (a credit frame) once it has read half a window, and
 * the sender waits when a window is out: a message smaller than half a
 * window costs nothing more, and a large one costs the receiver one
 * window, however slowly it is read.
 */
export const CONTENT_WINDOW = 1024 * 1024;

/**
 * Sends a stream's bytes as chunks tagged `ref`, waiting when the socket
 * is full or a window is out, then the end marker. `until` is the other
 * side's answer: once it has come, nobody reads what is left, and the
 * sending stops there, with an abandon marker rather than the end
 * marker: a reader still at work must not take the part it got for the
 * whole message, and the receiver can forget the stream.
 */
export async function sendContent(
  transport: Transport, ref: number, content: NodeJS.ReadableStream, until?: Promise<unknown>,
): Promise<void> {
  const credits = transport.watchCredits(ref);
  const answered = until?.then(() => true, () => true);
  let sent = 0;
  try {
    for await (const piece of content as AsyncIterable<Buffer | string>) {
      const bytes = typeof piece === 'string' ? Buffer.from(piece) : piece;
      for (let offset = 0; offset < bytes.length; offset += CHUNK) {
        const part = bytes.subarray(offset, offset + CHUNK);
        if (sent + part.length > CONTENT_WINDOW) {
          const room = credits.reached(sent + part.length - CONTENT_WINDOW).then(() => false);
          if (await (answered ? Promise.race([room, answered]) : room)) {
            transport.sendAbandon(ref);
            return; // ends the loop, and closes `content`
          }
        }
        if (!transport.sendChunk(ref, part)) await transport.drained();
        sent += part.length;
      }
    }
    transport.sendChunk(ref, Buffer.alloc(0));
  } finally {
    credits.stop();
  }
}
// #endregion content-window

interface Entry {
  stream: Readable;
  taken: boolean;
  ended: boolean;
  /** Bytes given to the stream, and how many of them the sender has been told were read. */
  pushed: number;
  credited: number;
}

/**
 * The receiving side: one stream per ref. The request and its first
 * chunks may arrive in either order for the code that handles them (a
 * handler runs a moment after the frame is read), so whichever comes
 * first creates the stream. `credit` tells the sender what has been
 * read (see CONTENT_WINDOW); a stream destroyed by its reader reads
 * everything that still comes, so that its sender is not left waiting.
 */
export class ContentInbox {
  private readonly entries = new Map<number, Entry>();

  constructor(private readonly credit: (ref: number, bytes: number) => void = () => {}) {}

  /** The transport's chunk callback. */
  chunk(ref: number, bytes: Buffer): void {
    const entry = this.entry(ref);
    if (bytes.length > 0) {
      if (entry.stream.destroyed) return this.credit(ref, bytes.length);
      entry.pushed += bytes.length;
      entry.stream.push(bytes);
      return;
    }
    entry.ended = true;
    entry.stream.push(null);
    if (entry.taken) this.entries.delete(ref);
  }

  /** The content announced with `ref`, as a stream that ends with the end marker. */
  take(ref: number): Readable {
    const entry = this.entry(ref);
    entry.taken = true;
    if (entry.ended) this.entries.delete(ref);
    return entry.stream;
  }

  /** The sender stopped before the end: whoever reads the stream gets an error, not a message cut short. */
  abandon(ref: number): void {
    const entry = this.entries.get(ref);
    if (!entry) return;
    this.entries.delete(ref);
    failQuietly(entry, 'the sender abandoned this content');
  }

  /** How many streams are remembered: for the tests. */
  get size(): number {
    return this.entries.size;
  }

  /** The other side went away: every unfinished stream fails (one nobody took just goes: nobody would hear of it). */
  fail(reason: string): void {
    for (const entry of this.entries.values()) failQuietly(entry, reason);
    this.entries.clear();
  }

  private entry(ref: number): Entry {
    let entry = this.entries.get(ref);
    if (!entry) {
      const created: Entry = {
        // The stream asks for more (read()) once fewer than a quarter of a window wait in it.
        // read() runs before the stream hands out what the reader asked for: count once it has.
        stream: new Readable({ highWaterMark: CONTENT_WINDOW / 4, read: () => queueMicrotask(() => this.read(ref, created)) }),
        taken: false,
        ended: false,
        pushed: 0,
        credited: 0,
      };
      entry = created;
      this.entries.set(ref, entry);
    }
    return entry;
  }

  /**
   * The reader wants more: what it has read since the last credit goes
   * to the sender, once that is half a window. A sender that waits has
   * more than three quarters of a window out (a chunk is at most a
   * quarter), and the stream asks only when less than a quarter is
   * unread here, so a waiting sender always hears.
   */
  private read(ref: number, entry: Entry): void {
    const read = entry.pushed - entry.stream.readableLength;
    if (read - entry.credited < CONTENT_WINDOW / 2) return;
    this.credit(ref, read - entry.credited);
    entry.credited = read;
  }
}

/**
 * Ends a stream for good. A reader at work gets the error; one that is
 * done (a delivery that has answered) has no listener left, and an
 * 'error' event nobody hears would end the process: hence the empty one.
 */
function failQuietly(entry: Entry, reason: string): void {
  entry.stream.on('error', () => {});
  entry.stream.destroy(entry.taken ? new Error(reason) : undefined);
}
