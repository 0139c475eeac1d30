/**
 * A message's content between two processes, after the request that
 * announces it: chunk frames tagged with the request's `ref`, then one
 * empty chunk for the end. The queue sends a message this way to the
 * dispatcher, and the dispatcher to a delivery agent, so that neither
 * holds a whole message as one JSON string.
 */
import { PassThrough, type Readable } from 'node:stream';
import type { Transport } from './transport.ts';

/** Content is cut into frames of at most this size. */
const CHUNK = 256 * 1024;

/** Sends a stream's bytes as chunks tagged `ref`, waiting when the socket is full, then the end marker. */
export async function sendContent(transport: Transport, ref: number, content: NodeJS.ReadableStream): Promise<void> {
  for await (const piece of content as AsyncIterable<Buffer | string>) {
    const bytes = typeof piece === 'string' ? Buffer.from(piece) : piece;
    for (let offset = 0; offset < bytes.length; offset += CHUNK) {
      if (!transport.sendChunk(ref, bytes.subarray(offset, offset + CHUNK))) await transport.drained();
    }
  }
  transport.sendChunk(ref, Buffer.alloc(0));
}

/**
 * The receiving side: one stream per ref. The request and its first
 * chunks may arrive in either order for the code that handles them (a
 * handler runs a moment after the frame is read), so whichever comes
 * first creates the stream.
 */
export class ContentInbox {
  private readonly entries = new Map<number, { stream: PassThrough; taken: boolean; ended: boolean }>();

  /** The transport's chunk callback. */
  chunk(ref: number, bytes: Buffer): void {
    const entry = this.entry(ref);
    if (bytes.length > 0) return void entry.stream.write(bytes);
    entry.ended = true;
    entry.stream.end();
    if (entry.taken) this.entries.delete(ref);
  }

  /** The content announced with `ref`, as a stream that ends with the end marker. */
  take(ref: number): Readable {
    const entry = this.entry(ref);
    entry.taken = true;
    if (entry.ended) this.entries.delete(ref);
    return entry.stream;
  }

  /** The other side went away: every unfinished stream fails. */
  fail(reason: string): void {
    for (const { stream } of this.entries.values()) stream.destroy(new Error(reason));
    this.entries.clear();
  }

  private entry(ref: number) {
    let entry = this.entries.get(ref);
    if (!entry) {
      entry = { stream: new PassThrough(), taken: false, ended: false };
      this.entries.set(ref, entry);
    }
    return entry;
  }
}
