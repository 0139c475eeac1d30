/**
 * A message being received by the fs backend: its content streams into
 * incoming/<msgid>; commit writes its envelopes into its bucket, makes
 * all of it durable, and hands it to group commit for the rename that
 * commits it.
 */
import { fstatSync, openSync, rmSync, writev } from 'node:fs';
import type { IncomingMessage } from './backend.ts';
import { encodeEnvelopeRecord, type ValidateOptions } from './envelope-format.ts';
import type { SpoolLayout } from './fs-layout.ts';
import { formatMessageId, generateEnvelopeId } from './ids.ts';
import { Descriptor, type DirectoryHandles, type FileIdentity, identityOf, type SpoolIo, writeAllSync, writeFileDurably } from './spool-io.ts';
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
  /** What the backend may keep in memory once the message is committed (see fs-backend.ts, the caches). */
  written: WrittenMessage;
}

/** The files of a message as this process wrote them. */
export interface WrittenMessage {
  /** Each envelope as its file reads back, and the identity of the file. */
  envelopes: { envelope: Envelope; file: FileIdentity }[];
  /** The identity of the content file, and the content itself when it was small enough to be written in one piece. */
  content: { file: FileIdentity; bytes?: Buffer };
}

/** Content is buffered up to this many bytes, then written with one system call. */
export const WRITE_BUFFER_BYTES = 64 * 1024;

type State = 'receiving' | 'committing' | 'committed' | 'aborted';

/** An envelope being committed: as the caller gets it, its file's text, and as that text reads back. */
interface PendingEnvelope {
  envelope: Envelope;
  text: string;
  stored: Envelope;
}

export class FsIncomingMessage implements IncomingMessage {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** The last write to the file; each write starts after the one before, so content stays in order. */
  private tail: Promise<void> = Promise.resolve();
  private state: State = 'receiving';

  /** Whether any content has been written to the file yet (content larger than the write buffer). */
  private spilled = false;
  private closed = false;

  private constructor(
    private readonly ctx: IncomingContext,
    readonly id: MessageId,
    private readonly path: string,
    private readonly file: Descriptor,
  ) {}

  /** Creates incoming/<msgid>; fails with EEXIST if that id is in use. */
  static async create(ctx: IncomingContext, id: MessageId): Promise<FsIncomingMessage> {
    const path = ctx.layout.incomingFile(id);
    return new FsIncomingMessage(ctx, id, path, new Descriptor(openSync(path, 'wx', 0o600)));
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
    if (chunks.length > 0) {
      this.spilled = true;
      this.tail = this.tail.then(() => writeAll(this.file.fd, chunks));
    }
    this.tail.catch(() => {}); // reported to whoever awaits it, and again at commit
    return this.tail;
  }
  // #endregion stream-content

  async commit(templates: Omit<Envelope, 'id' | 'messageId'>[]): Promise<Envelope[]> {
    if (this.state !== 'receiving') throw this.closedError('commit');
    if (templates.length === 0) throw new Error(`queue: message ${formatMessageId(this.id)}: no envelope to commit`);
    const envelopes = this.makeEnvelopes(templates); // throws for an invalid envelope; abort() still works
    this.state = 'committing';
    const ids = envelopes.map(({ envelope }) => envelope.id);
    let prepared: PreparedMessage;
    try {
      prepared = { id: this.id, envelopes: ids, written: await this.prepare(envelopes) };
    } catch (err) {
      this.state = 'aborted';
      this.close();
      for (const path of [this.path, ...ids.map((id) => this.ctx.layout.envelopeFile(id))]) rmSync(path, { force: true });
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
  private makeEnvelopes(templates: Omit<Envelope, 'id' | 'messageId'>[]): PendingEnvelope[] {
    const ids = new Set<EnvelopeId>();
    return templates.map((template) => {
      const id = generateEnvelopeId(this.id, (candidate) => ids.has(candidate));
      ids.add(id);
      const envelope: Envelope = { ...template, id, messageId: this.id };
      const { text, envelope: stored } = encodeEnvelopeRecord(envelope, this.ctx.validate);
      return { envelope, text, stored };
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
   * The writes before them are quick blocking calls (spool-io.ts says
   * why). The fsyncs, which wait for the disk, run at the same time, each
   * on a thread of libuv's pool, as do those of every other message being
   * committed. The queue process starts with a larger pool than libuv's
   * default of 4 (QUEUE_THREADPOOL_SIZE), so that a hundred sessions'
   * fsyncs are not queued behind four threads.
   *
   * The envelope files are written ENVELOPES_AT_ONCE at a time, not all
   * at once: each is open until its fsync ends, and more fsyncs than the
   * pool has threads only wait in its line, holding a descriptor each. A
   * message for a thousand recipients would otherwise need a thousand
   * descriptors at the same moment, and under a lower `ulimit -n` it
   * could never be committed: every try ends in EMFILE and a 421.
   *
   * What was written is returned: the envelopes, the identity of each
   * file and, for a small message, its content, which the backend keeps
   * in memory for the delivery that usually follows at once.
   */
  private async prepare(envelopes: PendingEnvelope[]): Promise<WrittenMessage> {
    const { io, dirs, layout } = this.ctx;
    let content: WrittenMessage['content'] | undefined;
    let files: FileIdentity[] = [];
    await settleAll([
      this.writeRest()
        .then(async (written) => {
          await io.syncFile(this.file, this.path);
          content = written;
        })
        .finally(() => this.close()),
      inTurns(envelopes, ENVELOPES_AT_ONCE, ({ envelope, text }) => writeFileDurably(io, layout.envelopeFile(envelope.id), text))
        .then(async (identities) => {
          await dirs.sync(layout.bucketDir(this.id));
          files = identities;
        }),
    ]);
    return { content: content!, envelopes: envelopes.map(({ stored }, i) => ({ envelope: stored, file: files[i]! })) };
  }
  // #endregion prepare-commit

  /**
   * The last of the content, written at commit. A message that fits in the
   * write buffer, as most do, is written here in one blocking writev (see
   * spool-io.ts on blocking calls), and its bytes are kept for the
   * backend's content cache; a larger one waits for its earlier writes.
   */
  private async writeRest(): Promise<WrittenMessage['content']> {
    if (this.spilled) {
      await this.drain();
      return { file: identityOf(fstatSync(this.file.fd)) };
    }
    const bytes = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    writeAllSync(this.file.fd, bytes);
    return { file: identityOf(fstatSync(this.file.fd)), bytes };
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.file.close();
    } catch {
      // nothing more to do with it
    }
  }

  async abort(): Promise<void> {
    if (this.state === 'aborted') return;
    if (this.state !== 'receiving') throw this.closedError('abort');
    this.state = 'aborted';
    await this.tail.catch(() => {});
    this.close();
    rmSync(this.path, { force: true });
    this.ctx.release(this.id);
  }

  /** The backend is closing: stop, and leave the file to the next start-up's purge. */
  async detach(): Promise<void> {
    if (this.state !== 'receiving') return;
    this.state = 'aborted';
    await this.tail.catch(() => {});
    this.close();
  }

  private closedError(what: string): Error {
    return new Error(`queue: message ${formatMessageId(this.id)}: ${what} after it was ${this.state}`);
  }
}

/**
 * Writes every chunk, in order, at the file's current position, looping
 * over short writes. On the pool, not blocking: these are the 64 KiB
 * pieces of a large message, written while the client is still sending.
 */
async function writeAll(fd: number, chunks: Buffer[]): Promise<void> {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const writevAsync = (parts: Buffer[]) =>
    new Promise<number>((resolve, reject) => writev(fd, parts, (err, n) => (err ? reject(err) : resolve(n))));
  let written = await writevAsync(chunks);
  if (written < total) {
    const all = Buffer.concat(chunks);
    while (written < total) written += await writevAsync([all.subarray(written)]);
  }
}

/** How many envelope files of one message are written, and open, at once: the queue's pool threads (QUEUE_THREADPOOL_SIZE). */
const ENVELOPES_AT_ONCE = 16;

/**
 * Runs `task` on each item, at most `width` at a time, and resolves with
 * the results in the items' order. After a failure no more tasks start,
 * and the first failure is thrown once the running ones have ended, so
 * that nothing is still writing when the caller cleans up.
 */
async function inTurns<T, R>(items: readonly T[], width: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  let failure: { reason: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && failure === undefined) {
      const i = next++;
      try {
        results[i] = await task(items[i]!);
      } catch (reason) {
        failure ??= { reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  if (failure) throw failure.reason;
  return results;
}

/** Like Promise.all, but waits for every promise before failing, so nothing is still writing when we clean up. */
async function settleAll<T>(promises: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}
