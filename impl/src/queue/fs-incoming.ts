/**
 * A message being received by the fs backend: its content streams into
 * incoming/<msgid>; commit writes its envelopes into its bucket, makes
 * all of it durable, and hands it to group commit for the rename that
 * commits it.
 */
import { type FileHandle, open, rm } from 'node:fs/promises';
import type { IncomingMessage } from './backend.ts';
import { encodeEnvelope, type ValidateOptions } from './envelope-format.ts';
import type { SpoolLayout } from './fs-layout.ts';
import { formatMessageId, generateEnvelopeId } from './ids.ts';
import { type DirectoryHandles, type SpoolIo, writeFileDurably } from './spool-io.ts';
import type { Envelope, EnvelopeId, MessageId } from './types.ts';

/** What an incoming message needs from the backend that made it. */
export interface IncomingContext {
  readonly layout: SpoolLayout;
  readonly io: SpoolIo;
  /** The directories the queue fsyncs, kept open. */
  readonly dirs: DirectoryHandles;
  readonly validate: ValidateOptions;
  /** Commits a prepared message with the next group commit; resolves once that is durable. */
  publish(message: PreparedMessage): Promise<void>;
  /** The message id is free again (the message was aborted, or its commit failed). */
  release(msgid: MessageId): void;
}

/** A message whose content and envelope files are durable, waiting for its commit record. */
export interface PreparedMessage {
  id: MessageId;
  envelopes: EnvelopeId[];
}

/** Content is buffered up to this many bytes, then written with one system call. */
export const WRITE_BUFFER_BYTES = 64 * 1024;

type State = 'receiving' | 'committing' | 'committed' | 'aborted';

export class FsIncomingMessage implements IncomingMessage {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** The last write to the file; each write starts after the one before, so content stays in order. */
  private tail: Promise<void> = Promise.resolve();
  private state: State = 'receiving';

  private constructor(
    private readonly ctx: IncomingContext,
    readonly id: MessageId,
    private readonly path: string,
    private readonly file: FileHandle,
  ) {}

  /** Creates incoming/<msgid>; fails with EEXIST if that id is in use. */
  static async create(ctx: IncomingContext, id: MessageId): Promise<FsIncomingMessage> {
    const path = ctx.layout.incomingFile(id);
    return new FsIncomingMessage(ctx, id, path, await open(path, 'wx', 0o600));
  }

  // #region stream-content
  /**
   * Content is written as it arrives, never held whole in memory: to a
   * caller that awaits each write, as the SMTP engine does, a 50 MB
   * attachment costs at most WRITE_BUFFER_BYTES of buffer. Small
   * chunks (an SMTP engine hands over a line or a socket read at a time)
   * are gathered and written with one writev, so a 2 KiB message costs one
   * system call, not forty. The promise resolves at once while the buffer
   * has room, and otherwise when the buffer has been written: a sender
   * faster than the disk is slowed down instead of filling memory.
   * Nothing here is durable yet; that is commit's job.
   */
  write(chunk: Uint8Array): Promise<void> {
    if (this.state !== 'receiving') return Promise.reject(this.closedError('write'));
    this.chunks.push(Buffer.from(chunk)); // a copy: the caller may reuse its buffer
    this.buffered += chunk.byteLength;
    return this.buffered < WRITE_BUFFER_BYTES ? Promise.resolve() : this.drain();
  }

  /** Writes out what is buffered, after any write still in progress. */
  private drain(): Promise<void> {
    const chunks = this.chunks;
    this.chunks = [];
    this.buffered = 0;
    if (chunks.length > 0) this.tail = this.tail.then(() => writeAll(this.file, chunks));
    this.tail.catch(() => {}); // reported to whoever awaits it, and again at commit
    return this.tail;
  }
  // #endregion stream-content

  async commit(templates: Omit<Envelope, 'id' | 'messageId'>[]): Promise<Envelope[]> {
    if (this.state !== 'receiving') throw this.closedError('commit');
    if (templates.length === 0) throw new Error(`queue: message ${formatMessageId(this.id)}: no envelope to commit`);
    const envelopes = this.makeEnvelopes(templates); // throws for an invalid envelope; abort() still works
    this.state = 'committing';
    const prepared = { id: this.id, envelopes: envelopes.map(({ envelope }) => envelope.id) };
    try {
      await this.prepare(envelopes);
    } catch (err) {
      this.state = 'aborted';
      await this.file.close().catch(() => {});
      await Promise.all([this.path, ...prepared.envelopes.map((id) => this.ctx.layout.envelopeFile(id))]
        .map((path) => rm(path, { force: true })));
      this.ctx.release(this.id);
      throw err;
    }
    // From here on the backend cleans up if the commit fails (the files may be in queue/ by then).
    try {
      await this.ctx.publish(prepared);
    } catch (err) {
      this.state = 'aborted';
      throw err;
    }
    this.state = 'committed';
    return envelopes.map(({ envelope }) => envelope);
  }

  /** Gives each envelope its id and its exact file content; refuses one that would not pass validation. */
  private makeEnvelopes(templates: Omit<Envelope, 'id' | 'messageId'>[]): { envelope: Envelope; text: string }[] {
    const ids = new Set<EnvelopeId>();
    return templates.map((template) => {
      const id = generateEnvelopeId(this.id, (candidate) => ids.has(candidate));
      ids.add(id);
      const envelope: Envelope = { ...template, id, messageId: this.id };
      return { envelope, text: encodeEnvelope(envelope, this.ctx.validate) };
    });
  }

  // #region prepare-commit
  /**
   * The part of a commit that belongs to this message alone, done before
   * it joins a group commit: make durable everything but the commit
   * record. Three kinds of fsync, and why each:
   *
   * - the content file: its bytes must be on disk before the name that
   *   says "committed" (a rename can reach the disk before the data of the
   *   file it names, leaving a committed message empty after a power cut);
   * - each envelope file: the same, for the recipients;
   * - the bucket the envelope files were created in: fsync of a file does
   *   not make its name durable; its directory's fsync does. Without it a
   *   power cut could keep the commit record and lose an envelope.
   *
   * The fsyncs run at the same time, each on a thread of libuv's pool
   * (Node runs blocking file system calls off the event loop), as do those
   * of every other message being committed. The queue process starts with
   * a larger pool than libuv's default of 4 (QUEUE_THREADPOOL_SIZE), so
   * that a hundred sessions' fsyncs are not queued behind four threads.
   */
  private async prepare(envelopes: { envelope: Envelope; text: string }[]): Promise<void> {
    const { io, dirs, layout } = this.ctx;
    await settleAll([
      this.drain()
        .then(() => io.syncFile(this.file, this.path))
        .finally(() => this.file.close()),
      settleAll(envelopes.map(({ envelope, text }) => writeFileDurably(io, layout.envelopeFile(envelope.id), text)))
        .then(() => dirs.sync(layout.bucketDir(this.id))),
    ]);
  }
  // #endregion prepare-commit

  async abort(): Promise<void> {
    if (this.state === 'aborted') return;
    if (this.state !== 'receiving') throw this.closedError('abort');
    this.state = 'aborted';
    await this.tail.catch(() => {});
    await this.file.close().catch(() => {});
    await rm(this.path, { force: true });
    this.ctx.release(this.id);
  }

  /** The backend is closing: stop, and leave the file to the next start-up's purge. */
  async detach(): Promise<void> {
    if (this.state !== 'receiving') return;
    this.state = 'aborted';
    await this.tail.catch(() => {});
    await this.file.close().catch(() => {});
  }

  private closedError(what: string): Error {
    return new Error(`queue: message ${formatMessageId(this.id)}: ${what} after it was ${this.state}`);
  }
}

/** Writes every chunk, in order, at the file's current position, looping over short writes. */
async function writeAll(file: FileHandle, chunks: Buffer[]): Promise<void> {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const { bytesWritten } = await file.writev(chunks);
  if (bytesWritten < total) {
    let rest = Buffer.concat(chunks).subarray(bytesWritten);
    while (rest.length > 0) {
      const r = await file.write(rest);
      rest = rest.subarray(r.bytesWritten);
    }
  }
}

/** Like Promise.all, but waits for every promise before failing, so nothing is still writing when we clean up. */
async function settleAll(promises: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}
