/**
 * A message being received by the `log` backend. Its content stays in
 * memory, where most messages fit, until commit copies it into the
 * COMMIT record; one that grows past SPILL_BYTES goes on to a file in
 * log/incoming/, so that a large message costs bounded memory, and commit
 * copies it from there, in chunks.
 */
import { closeSync, openSync, rmSync } from 'node:fs';
import type { IncomingMessage } from './backend.ts';
import { encodeEnvelopeRecord, type ValidateOptions } from './envelope-format.ts';
import { WRITE_BUFFER_BYTES } from './fs-incoming.ts';
import { formatMessageId, generateEnvelopeId } from './ids.ts';
import type { Content } from './log-append.ts';
import { pwritev, type LogLayout } from './log-segments.ts';
import type { Envelope, EnvelopeId, MessageId } from './types.ts';

/** Content is kept in memory up to this size; past it, it goes to log/incoming/<msgid>. */
export const SPILL_BYTES = 256 * 1024;

/** Content in more pieces than this is joined into one buffer at commit. */
const MAX_CHUNKS = 16;

/** What an incoming message needs from the backend that made it. */
export interface LogIncomingContext {
  readonly layout: LogLayout;
  readonly validate: ValidateOptions;
  /** Appends the message's COMMIT with the next group commit; resolves once it is durable. */
  commit(msgid: MessageId, envelopes: { id: EnvelopeId; text: string }[], content: Content): Promise<void>;
  /** The message id is free again (the message was aborted, or its commit failed). */
  release(msgid: MessageId): void;
}

/** The file a large message spills to, and the last write to it (each starts after the one before). */
interface Spill {
  fd: number;
  path: string;
  written: number;
  tail: Promise<void>;
}

type State = 'receiving' | 'committing' | 'committed' | 'aborted';

export class LogIncomingMessage implements IncomingMessage {
  private chunks: Buffer[] = [];
  /** Bytes in `chunks`. */
  private buffered = 0;
  private spill: Spill | undefined;
  private state: State = 'receiving';

  constructor(
    private readonly ctx: LogIncomingContext,
    readonly id: MessageId,
  ) {}

  /**
   * Buffers a chunk (a copy: the caller may reuse its buffer). Once the
   * message has spilled, what is buffered is written out every
   * WRITE_BUFFER_BYTES, on the pool, and the promise resolves when that
   * write is done: a sender faster than the disk is slowed down instead of
   * filling memory, as with the fs backend.
   */
  write(chunk: Uint8Array): Promise<void> {
    if (this.state !== 'receiving') return Promise.reject(this.closedError('write'));
    this.chunks.push(Buffer.from(chunk));
    this.buffered += chunk.byteLength;
    if (!this.spill && this.buffered <= SPILL_BYTES) return Promise.resolve();
    if (!this.spill) {
      const path = this.ctx.layout.incomingFile(this.id);
      this.spill = { fd: openSync(path, 'wx+', 0o600), path, written: 0, tail: Promise.resolve() };
    }
    return this.buffered >= WRITE_BUFFER_BYTES ? this.drain(this.spill) : Promise.resolve();
  }

  /** Writes out what is buffered, after any write still in progress. */
  private drain(spill: Spill): Promise<void> {
    const chunks = this.chunks;
    const at = spill.written;
    spill.written += this.buffered;
    this.chunks = [];
    this.buffered = 0;
    spill.tail = spill.tail.then(() => pwritev(spill.fd, chunks, at));
    spill.tail.catch(() => {}); // reported to whoever awaits it, and again at commit
    return spill.tail;
  }

  async commit(templates: Omit<Envelope, 'id' | 'messageId'>[]): Promise<Envelope[]> {
    const envelopes = this.envelopesFor(templates); // throws for an invalid envelope; abort() still works
    this.state = 'committing';
    try {
      const records = envelopes.map(({ envelope, text }) => ({ id: envelope.id, text }));
      await this.ctx.commit(this.id, records, await this.content());
    } catch (err) {
      this.state = 'aborted';
      this.ctx.release(this.id);
      throw err;
    } finally {
      this.chunks = [];
      this.removeSpill();
    }
    this.state = 'committed';
    return envelopes.map(({ envelope }) => envelope);
  }

  /** The content for the COMMIT: the chunks in memory, or the whole spill file once written out. */
  private async content(): Promise<Content> {
    if (!this.spill) {
      // Many small chunks (lines, socket reads) would cost writev more than one copy does.
      const chunks = this.chunks.length > MAX_CHUNKS ? [Buffer.concat(this.chunks, this.buffered)] : this.chunks;
      return { chunks, length: this.buffered };
    }
    await this.drain(this.spill);
    return { fd: this.spill.fd, position: 0, length: this.spill.written };
  }

  /**
   * What commit will write: each envelope with its id and its text. Refuses
   * a message that is not being received any more, one without envelopes,
   * and an envelope that would not pass validation when read back.
   */
  private envelopesFor(templates: Omit<Envelope, 'id' | 'messageId'>[]): { envelope: Envelope; text: string }[] {
    if (this.state !== 'receiving') throw this.closedError('commit');
    if (templates.length === 0) throw new Error(`queue: message ${formatMessageId(this.id)}: no envelope to commit`);
    const taken = new Set<EnvelopeId>();
    return templates.map((template) => {
      const id = generateEnvelopeId(this.id, (candidate) => taken.has(candidate));
      taken.add(id);
      const envelope: Envelope = { ...template, id, messageId: this.id };
      return { envelope, text: encodeEnvelopeRecord(envelope, this.ctx.validate).text };
    });
  }

  async abort(): Promise<void> {
    if (this.state === 'aborted') return;
    if (this.state !== 'receiving') throw this.closedError('abort');
    await this.detach();
    this.ctx.release(this.id);
  }

  /** Stops receiving and forgets the content: for abort(), and for the backend when it closes. */
  async detach(): Promise<void> {
    if (this.state !== 'receiving') return;
    this.state = 'aborted';
    this.chunks = [];
    await this.spill?.tail.catch(() => {});
    this.removeSpill();
  }

  private removeSpill(): void {
    const spill = this.spill;
    if (!spill) return;
    this.spill = undefined;
    try {
      closeSync(spill.fd);
    } catch {
      // closed already
    }
    rmSync(spill.path, { force: true });
  }

  private closedError(what: string): Error {
    return new Error(`queue: message ${formatMessageId(this.id)}: ${what} after it was ${this.state}`);
  }
}
