/**
 * The `fs` queue backend: the spool is a tree of files (see SpoolLayout),
 * and a message is committed by renaming its content from incoming/ into
 * queue/, with fsyncs placed so that the rename means "durable".
 */
import { access, open, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { IncomingMessage, QueueBackend } from './backend.ts';
import { encodeEnvelope, type ValidateOptions } from './envelope-format.ts';
import { FsIncomingMessage, type IncomingContext, type PreparedMessage } from './fs-incoming.ts';
import { initSpool, SpoolLayout } from './fs-layout.ts';
import { isCode, type QueueLog, quarantine, readEnvelopeFile, recoverSpool } from './fs-recover.ts';
import { GroupCommit, type GroupCommitStats } from './group-commit.ts';
import { formatEnvelopeId, formatMessageId, generateMessageId, messageIdOf } from './ids.ts';
import { DirectoryHandles, durableIo, type SpoolIo, writeFileDurably } from './spool-io.ts';
import type { Envelope, EnvelopeId, MessageId } from './types.ts';

export interface FsBackendOptions {
  /** The spool directory; created if missing. */
  spool: string;
  /** The durability system calls; tests watch them, the benchmark can turn fsync off. */
  io?: SpoolIo;
  validate?: ValidateOptions;
  log?: QueueLog;
}

/** Opens the spool: removes what was never committed, makes the buckets, counts what is queued. */
export async function openFsBackend(options: FsBackendOptions): Promise<FsQueueBackend> {
  const layout = new SpoolLayout(options.spool);
  const io = options.io ?? durableIo;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dirs = new DirectoryHandles(io);
  const committed = await initSpool(layout, dirs, log);
  return new FsQueueBackend(layout, io, dirs, committed, options.validate ?? {}, log);
}

export class FsQueueBackend implements QueueBackend, IncomingContext {
  readonly name = 'fs';
  /** Messages being received or committed: their ids are not handed out again. */
  private readonly receiving = new Map<MessageId, FsIncomingMessage | undefined>();
  private readonly committedSinceOpen = new Set<MessageId>();
  private readonly group = new GroupCommit<PreparedMessage>((batch) => this.publishBatch(batch));
  private tempSeq = 0;

  constructor(
    readonly layout: SpoolLayout,
    readonly io: SpoolIo,
    readonly dirs: DirectoryHandles,
    /** Each committed message, with the number of envelopes it still has (OpenSMTPD's evpcount). */
    private readonly committed: Map<MessageId, number>,
    readonly validate: ValidateOptions,
    private readonly log: QueueLog,
  ) {}

  /** How group commit has been batching, for the benchmark. */
  get stats(): GroupCommitStats {
    return this.group.stats;
  }

  async createMessage(): Promise<IncomingMessage> {
    for (;;) {
      const id = generateMessageId((c) => this.receiving.has(c) || this.committed.has(c));
      this.receiving.set(id, undefined);
      try {
        const message = await FsIncomingMessage.create(this, id);
        this.receiving.set(id, message);
        return message;
      } catch (err) {
        // EEXIST: a file we did not know of; keep the id marked as used and draw another.
        if (isCode(err, 'EEXIST')) continue;
        this.receiving.delete(id);
        throw err;
      }
    }
  }

  publish(message: PreparedMessage): Promise<void> {
    return this.group.submit(message);
  }

  release(msgid: MessageId): void {
    this.receiving.delete(msgid);
  }

  // #region publish-batch
  /**
   * The shared step of group commit, for a batch of messages whose content
   * and envelope files are durable (see prepare-commit).
   *
   * 1. Rename each incoming/<msgid> to queue/<xx>/<msgid>, all at once.
   *    This is the commit record: whoever finds that name (start-up, after
   *    a crash) finds content and envelopes that were durable before it
   *    existed, so there is no half-committed message to find.
   * 2. fsync every directory the renames changed: each bucket that received
   *    a message, once however many it received, and incoming/, once for
   *    the whole batch. The bucket's fsync makes the new name durable; that
   *    of incoming/ makes the old name's removal durable too, so that a
   *    power cut cannot leave a committed message also listed in the
   *    directory start-up empties.
   *
   * Only then does group commit resolve the batch's commits, and the SMTP
   * engine say 250. A crash before step 2 ends leaves each message of the
   * batch either uncommitted (purged at start-up; the client got no 250
   * and will send it again) or committed whole (then delivered, and maybe
   * sent again by the client: a duplicate at worst, never a loss).
   */
  private async publishBatch(batch: readonly PreparedMessage[]): Promise<(Error | undefined)[]> {
    const { io, dirs, layout } = this;
    const renamed = await Promise.allSettled(
      batch.map(({ id }) => io.rename(layout.incomingFile(id), layout.messageFile(id))),
    );
    const changed = new Set([layout.incoming]);
    batch.forEach(({ id }, i) => {
      if (renamed[i]?.status === 'fulfilled') changed.add(layout.bucketDir(id));
    });
    const failed = new Map<string, Error>();
    await Promise.all([...changed].map((dir) => dirs.sync(dir).catch((err: Error) => failed.set(dir, err))));

    return Promise.all(
      batch.map(async (message, i) => {
        const r = renamed[i];
        const failure = r?.status === 'rejected'
          ? (r.reason as Error)
          : (failed.get(layout.bucketDir(message.id)) ?? failed.get(layout.incoming));
        if (failure) return this.unpublish(message, failure);
        this.receiving.delete(message.id);
        this.committed.set(message.id, message.envelopes.length);
        this.committedSinceOpen.add(message.id);
        return undefined;
      }),
    );
  }
  // #endregion publish-batch

  /**
   * A commit failed in its last step: the client will be told to try
   * again later, so we remove what we cannot vouch for, wherever the
   * rename left it. If even that fails, the id stays in use.
   */
  private async unpublish(message: PreparedMessage, failure: Error): Promise<Error> {
    const { layout } = this;
    try {
      await rm(layout.messageFile(message.id), { force: true });
      await rm(layout.incomingFile(message.id), { force: true });
      await Promise.all(message.envelopes.map((id) => rm(layout.envelopeFile(id), { force: true })));
      this.release(message.id);
    } catch (err) {
      this.log(`warn: queue: message ${formatMessageId(message.id)}: cannot clean up a failed commit: ${String(err)}`);
    }
    return failure;
  }

  recover(): AsyncIterable<Envelope> {
    return recoverSpool({
      layout: this.layout,
      validate: this.validate,
      log: this.log,
      isRecoverable: (id) => this.committed.has(id) && !this.committedSinceOpen.has(id),
      dropEnvelope: (id) => this.dropCorrupt(id),
    });
  }

  async loadEnvelope(id: EnvelopeId): Promise<Envelope | undefined> {
    if (!this.committed.has(messageIdOf(id))) return undefined; // not committed: not there yet, for anyone
    const parsed = await readEnvelopeFile(this.layout.envelopeFile(id), id, this.validate);
    if (parsed === undefined) return undefined;
    if ('envelope' in parsed) return parsed.envelope;
    await quarantine(this.layout, this.log, id, parsed.error);
    await this.dropCorrupt(id);
    return undefined;
  }

  /** An envelope went to corrupt/: it no longer counts, and its content follows it if it was the last. */
  private async dropCorrupt(id: EnvelopeId): Promise<void> {
    const msgid = messageIdOf(id);
    if (this.countDown(msgid)) {
      await quarantine(this.layout, this.log, msgid, 'no valid envelope left');
      this.committed.delete(msgid);
    }
  }

  // #region update-envelope
  /**
   * Replaces an envelope (after a delivery attempt: attempts, lastTryAt,
   * lastError) so that a crash at any instant leaves the old version or
   * the new one, whole, never a mix or nothing:
   *
   * 1. write the new version under a temporary name, and fsync it;
   * 2. rename it over the old one: atomic, the name points to either file;
   * 3. fsync the bucket, which makes the replacement durable.
   *
   * The temporary file lives in temporary/ (same file system, so rename
   * works), where start-up deletes anything a crash left behind.
   */
  async updateEnvelope(envelope: Envelope): Promise<void> {
    const text = encodeEnvelope(envelope, this.validate);
    const target = this.layout.envelopeFile(envelope.id);
    const exists = this.committed.has(envelope.messageId) && (await access(target).then(() => true, () => false));
    if (!exists) throw new Error(`queue: no envelope ${formatEnvelopeId(envelope.id)} to update`);
    const temp = join(this.layout.temporary, `${formatEnvelopeId(envelope.id)}.${++this.tempSeq}`);
    try {
      await writeFileDurably(this.io, temp, text);
      await this.io.rename(temp, target);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    await this.dirs.sync(this.layout.bucketDir(envelope.messageId));
  }
  // #endregion update-envelope

  /**
   * Removes an envelope once delivered or bounced, and its message with
   * the last one. This is not fsync'd, on purpose: a crash that forgets a
   * delete brings the envelope back and the message is delivered twice,
   * which is the lesser harm (RFC 5321, section 6.1, forbids losing mail
   * and accepts that duplicates happen); an fsync here would slow every
   * delivery to guard against that.
   * The envelope goes before the content: an interrupted delete leaves
   * content without envelopes, which start-up removes.
   */
  async deleteEnvelope(id: EnvelopeId): Promise<void> {
    const msgid = messageIdOf(id);
    if (!this.committed.has(msgid)) return; // never touch the files of a commit in progress
    try {
      await unlink(this.layout.envelopeFile(id));
    } catch (err) {
      if (isCode(err, 'ENOENT')) return;
      throw err;
    }
    if (this.countDown(msgid)) {
      await rm(this.layout.messageFile(msgid), { force: true });
      this.committed.delete(msgid); // only now may the id be drawn again
    }
  }

  /** One envelope fewer for a message; true when that was its last. */
  private countDown(msgid: MessageId): boolean {
    const left = Math.max(0, (this.committed.get(msgid) ?? 0) - 1);
    this.committed.set(msgid, left);
    return left === 0;
  }

  async openMessage(id: MessageId): Promise<NodeJS.ReadableStream> {
    // Opening first makes a missing message fail here, not later on the stream.
    const file = await open(this.layout.messageFile(id), 'r');
    return file.createReadStream();
  }

  /**
   * Closes what the backend holds open: the directories, and the content
   * files of messages still being received, which are left in incoming/
   * for the next start-up to remove. Call it once no commit is in flight.
   */
  async close(): Promise<void> {
    await Promise.all([...this.receiving.values()].map((message) => message?.detach()));
    await this.dirs.close();
  }
}
