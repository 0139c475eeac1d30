/**
 * The `fs` queue backend: the spool is a tree of files (see SpoolLayout),
 * and a message is committed by renaming its content from incoming/ into
 * queue/, with fsyncs placed so that the rename means "durable".
 */
import { closeSync, createReadStream, existsSync, fstatSync, openSync, readSync, rmSync, unlink } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { IncomingMessage, QueueBackend } from './backend.ts';
import { encodeEnvelopeRecord, type ValidateOptions } from './envelope-format.ts';
import { FsIncomingMessage, type IncomingContext, type PreparedMessage, WRITE_BUFFER_BYTES, type WrittenMessage } from './fs-incoming.ts';
import { initSpool, SpoolLayout } from './fs-layout.ts';
import { isCode, type QueueLog, quarantine, readEnvelopeFile, recoverSpool } from './fs-recover.ts';
import { GroupCommit, type GroupCommitStats } from './group-commit.ts';
import { formatEnvelopeId, formatMessageId, generateMessageId, messageIdOf } from './ids.ts';
import { DirectoryHandles, durableIo, type FileIdentity, type SpoolIo, stillSame, writeFileDurably } from './spool-io.ts';
import type { Envelope, EnvelopeId, MessageId } from './types.ts';

export interface FsBackendOptions {
  /** The spool directory; created if missing. */
  spool: string;
  /** The durability system calls; tests watch them, the benchmark can turn fsync off. */
  io?: SpoolIo;
  validate?: ValidateOptions;
  log?: QueueLog;
  /** Sizes of the caches (see FsQueueBackend); 0 turns one off. */
  cache?: Partial<CacheSizes>;
}

/** How much the backend keeps in memory of what it committed. */
export interface CacheSizes {
  /** Envelopes remembered, at most (OpenSMTPD's envelope cache holds 1,024 by default). */
  envelopes: number;
  /** Bytes of message content remembered, at most, in messages of at most WRITE_BUFFER_BYTES each. */
  contentBytes: number;
}

export const DEFAULT_CACHE_SIZES: CacheSizes = { envelopes: 16_384, contentBytes: 32 * 1024 * 1024 };

/** Opens the spool: removes what was never committed, makes the buckets, counts what is queued. */
export async function openFsBackend(options: FsBackendOptions): Promise<FsQueueBackend> {
  const layout = new SpoolLayout(options.spool);
  const io = options.io ?? durableIo;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dirs = new DirectoryHandles(io);
  const committed = await initSpool(layout, dirs, log);
  const cache = { ...DEFAULT_CACHE_SIZES, ...options.cache };
  return new FsQueueBackend(layout, io, dirs, committed, options.validate ?? {}, log, cache);
}

/** Something the backend wrote and remembers, with the identity of its file when it wrote it. */
interface Remembered<T> {
  value: T;
  file: FileIdentity;
}

export class FsQueueBackend implements QueueBackend, IncomingContext {
  readonly name = 'fs';
  /** Messages being received or committed: their ids are not handed out again. */
  private readonly receiving = new Map<MessageId, FsIncomingMessage | undefined>();
  private readonly committedSinceOpen = new Set<MessageId>();
  private readonly group = new GroupCommit<PreparedMessage>((batch) => this.publishBatch(batch));
  private tempSeq = 0;
  /** The caches: see remember(). Map order is insertion order, so the first entry is the oldest. */
  private readonly envelopeCache = new Map<EnvelopeId, Remembered<Envelope>>();
  private readonly contentCache = new Map<MessageId, Remembered<Buffer>>();
  private contentCacheBytes = 0;
  /** Envelopes deleted whose file is still being unlinked: gone already, for every caller. */
  private readonly unlinking = new Set<EnvelopeId>();
  /** Messages whose content is still being unlinked: their ids are not drawn again until it is gone. */
  private readonly releasing = new Set<MessageId>();
  /** The unlinks in progress, which close() waits for. */
  private readonly pendingUnlinks = new Set<Promise<void>>();

  constructor(
    readonly layout: SpoolLayout,
    readonly io: SpoolIo,
    readonly dirs: DirectoryHandles,
    /** Each committed message, with the number of envelopes it still has (OpenSMTPD's evpcount). */
    private readonly committed: Map<MessageId, number>,
    readonly validate: ValidateOptions,
    private readonly log: QueueLog,
    private readonly cacheSizes: CacheSizes = DEFAULT_CACHE_SIZES,
  ) {}

  /** How group commit has been batching, for the benchmark. */
  get stats(): GroupCommitStats {
    return this.group.stats;
  }

  /** How often the caches answered (hits) or the disk had to (misses), for the benchmark and the tests. */
  readonly cacheStats = { envelopeHits: 0, envelopeMisses: 0, contentHits: 0, contentMisses: 0 };

  /** Message ids the backend holds anything about, in any of its sets: for the tests, which check it comes back to zero. */
  get messagesTracked(): number {
    return new Set([...this.receiving.keys(), ...this.committed.keys(), ...this.committedSinceOpen, ...this.releasing]).size;
  }

  async createMessage(): Promise<IncomingMessage> {
    for (;;) {
      const id = generateMessageId((c) => this.receiving.has(c) || this.committed.has(c) || this.releasing.has(c));
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
        this.remember(message.id, message.written);
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
      for (const path of [layout.messageFile(message.id), layout.incomingFile(message.id), ...message.envelopes.map((id) => layout.envelopeFile(id))]) {
        rmSync(path, { force: true });
      }
      this.release(message.id);
    } catch (err) {
      this.log(`warn: queue: message ${formatMessageId(message.id)}: cannot clean up a failed commit: ${String(err)}`);
    }
    return failure;
  }

  async *recover(): AsyncIterable<Envelope> {
    const envelopes = recoverSpool({
      layout: this.layout,
      validate: this.validate,
      log: this.log,
      isRecoverable: (id) => this.committed.has(id) && !this.committedSinceOpen.has(id),
      dropEnvelope: (id) => this.dropCorrupt(id),
    });
    for await (const envelope of envelopes) if (!this.unlinking.has(envelope.id)) yield envelope;
  }

  // #region caches
  /**
   * What the backend keeps of a message it has just committed: each
   * envelope, and the content of a small message (all of it was still in
   * the write buffer at commit). The scheduler usually asks for the
   * delivery a millisecond later, and reading back what the process has
   * just written would cost eight system calls per message, each a trip
   * to the pool (see spool-io.ts). OpenSMTPD keeps an envelope cache for
   * the same reason.
   *
   * Memory does not replace the disk as the truth. A remembered envelope
   * or content is used only while its file is still the one the queue
   * wrote: one stat(2) compares inode, size and modification time. A file
   * removed, replaced or edited by hand since is read from disk again, and
   * validated, as always; one removed is `gone`. Both caches are bounded
   * and forget their oldest entries first; a miss costs only the read.
   */
  private remember(msgid: MessageId, written: WrittenMessage): void {
    const { envelopes: maxEnvelopes, contentBytes: maxBytes } = this.cacheSizes;
    for (const { envelope, file } of written.envelopes) this.envelopeCache.set(envelope.id, { value: deepFreeze(envelope), file });
    while (this.envelopeCache.size > maxEnvelopes) this.envelopeCache.delete(this.envelopeCache.keys().next().value!);
    const { bytes, file } = written.content;
    if (bytes === undefined || bytes.length > WRITE_BUFFER_BYTES || bytes.length > maxBytes) return;
    this.contentCache.set(msgid, { value: bytes, file });
    this.contentCacheBytes += bytes.length;
    for (const [oldest, entry] of this.contentCache) {
      if (this.contentCacheBytes <= maxBytes) break;
      this.forgetContent(oldest, entry);
    }
  }

  /** The remembered envelope, if its file is still the one written; forgotten otherwise. */
  private recall(id: EnvelopeId): Envelope | undefined {
    const entry = this.envelopeCache.get(id);
    if (entry && stillSame(this.layout.envelopeFile(id), entry.file)) {
      this.cacheStats.envelopeHits++;
      return entry.value;
    }
    this.envelopeCache.delete(id);
    this.cacheStats.envelopeMisses++;
    return undefined;
  }

  private forgetContent(msgid: MessageId, entry = this.contentCache.get(msgid)): void {
    if (!entry) return;
    this.contentCache.delete(msgid);
    this.contentCacheBytes -= entry.value.length;
  }
  // #endregion caches

  async loadEnvelope(id: EnvelopeId): Promise<Envelope | undefined> {
    if (!this.committed.has(messageIdOf(id))) return undefined; // not committed: not there yet, for anyone
    if (this.unlinking.has(id)) return undefined; // deleted
    const remembered = this.recall(id);
    if (remembered) return remembered;
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
    this.envelopeCache.delete(id);
    if (this.countDown(msgid)) {
      this.forgetContent(msgid);
      await quarantine(this.layout, this.log, msgid, 'no valid envelope left');
      this.uncommit(msgid);
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
    const { text, envelope: stored } = encodeEnvelopeRecord(envelope, this.validate);
    const target = this.layout.envelopeFile(envelope.id);
    const exists = this.committed.has(envelope.messageId) && !this.unlinking.has(envelope.id) && existsSync(target);
    if (!exists) throw new Error(`queue: no envelope ${formatEnvelopeId(envelope.id)} to update`);
    const temp = join(this.layout.temporary, `${formatEnvelopeId(envelope.id)}.${++this.tempSeq}`);
    this.envelopeCache.delete(envelope.id);
    let file: FileIdentity;
    try {
      file = await writeFileDurably(this.io, temp, text);
      await this.io.rename(temp, target);
    } catch (err) {
      rmSync(temp, { force: true });
      throw err;
    }
    await this.dirs.sync(this.layout.bucketDir(envelope.messageId));
    if (this.cacheSizes.envelopes > 0) this.envelopeCache.set(envelope.id, { value: deepFreeze(stored), file });
  }
  // #endregion update-envelope

  /**
   * Removes an envelope once delivered or bounced, and its message with
   * the last one. This is not fsync'd, on purpose: a crash that forgets a
   * delete brings the envelope back and the message is delivered twice,
   * which is the lesser harm (RFC 5321, section 6.1, forbids losing mail
   * and accepts that duplicates happen); an fsync here would slow every
   * delivery to guard against that.
   *
   * For the same reason nobody waits for the unlinks: the envelope is
   * gone for every caller at once (the backend's own count says so), and
   * its files are unlinked in the background, on the pool. An unlink can
   * wait for the disk (here, ext4 discards the freed blocks before it
   * returns), and the queue's event loop has better things to do. Until
   * the content is unlinked its message id is not drawn again, and
   * close() waits for whatever is still being unlinked. An unlink that
   * fails is logged: the file comes back at the next start-up, a
   * duplicate at worst.
   *
   * The envelope goes before the content: an interrupted delete leaves
   * content without envelopes, which start-up removes.
   */
  async deleteEnvelope(id: EnvelopeId): Promise<void> {
    const msgid = messageIdOf(id);
    if (!this.committed.has(msgid)) return; // never touch the files of a commit in progress
    if (this.unlinking.has(id)) return; // deleted already
    const path = this.layout.envelopeFile(id);
    if (!existsSync(path)) return;
    this.unlinking.add(id);
    this.envelopeCache.delete(id);
    const last = this.countDown(msgid);
    if (last) {
      this.forgetContent(msgid);
      this.uncommit(msgid);
      this.releasing.add(msgid); // only once its content is unlinked may the id be drawn again
    }
    const done = this.unlinkQuietly(path)
      .then(async () => {
        this.unlinking.delete(id);
        if (last) await this.unlinkQuietly(this.layout.messageFile(msgid));
      })
      .finally(() => {
        if (last) this.releasing.delete(msgid);
        this.pendingUnlinks.delete(done);
      });
    this.pendingUnlinks.add(done);
  }

  /** unlink(2) on the pool; a file already gone is no error, any other failure is logged. */
  private unlinkQuietly(path: string): Promise<void> {
    return new Promise((resolve) => {
      unlink(path, (err) => {
        if (err && err.code !== 'ENOENT') this.log(`warn: queue: cannot remove ${path}: ${err.message}`);
        resolve();
      });
    });
  }

  /**
   * A message is no longer committed: its last envelope went. Both sets
   * forget it, committedSinceOpen too, although only recover() reads it:
   * kept there, every id committed since start-up would stay for good,
   * about 45 bytes of heap per message, until the Set's limit of 2^24
   * entries throws in the commit path after two days at 100 messages a
   * second (found by bench/src/soak.ts).
   */
  private uncommit(msgid: MessageId): void {
    this.committed.delete(msgid);
    this.committedSinceOpen.delete(msgid);
  }

  /** One envelope fewer for a message; true when that was its last. */
  private countDown(msgid: MessageId): boolean {
    const left = Math.max(0, (this.committed.get(msgid) ?? 0) - 1);
    this.committed.set(msgid, left);
    return left === 0;
  }

  /**
   * The content, from the cache while its file is unchanged; otherwise a
   * small message is read at once, and a large one streamed from disk.
   */
  async openMessage(id: MessageId): Promise<NodeJS.ReadableStream> {
    if (!this.committed.has(id)) throw new Error(`queue: no message ${formatMessageId(id)}`);
    const path = this.layout.messageFile(id);
    const cached = this.contentCache.get(id);
    if (cached) {
      if (stillSame(path, cached.file)) {
        this.cacheStats.contentHits++;
        return Readable.from([cached.value], { objectMode: false });
      }
      this.forgetContent(id, cached);
    }
    this.cacheStats.contentMisses++;
    // Opening first makes a missing message fail here, not later on the stream.
    const fd = openSync(path, 'r');
    let small: Buffer | undefined;
    try {
      small = readSmall(fd);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    if (small === undefined) return createReadStream(path, { fd });
    closeSync(fd);
    return Readable.from([small], { objectMode: false });
  }

  /**
   * Closes what the backend holds open: the directories, and the content
   * files of messages still being received, which are left in incoming/
   * for the next start-up to remove. Call it once no commit is in flight.
   */
  async close(): Promise<void> {
    await Promise.all([...this.receiving.values()].map((message) => message?.detach()));
    await Promise.all(this.pendingUnlinks);
    await this.dirs.close();
    this.envelopeCache.clear();
    this.contentCache.clear();
    this.contentCacheBytes = 0;
  }
}

/** The whole file, if it is no larger than the write buffer (read with blocking calls: see spool-io.ts). */
function readSmall(fd: number): Buffer | undefined {
  const size = fstatSync(fd).size;
  if (size > WRITE_BUFFER_BYTES) return undefined;
  const bytes = Buffer.allocUnsafe(size);
  let done = 0;
  while (done < size) {
    const n = readSync(fd, bytes, done, size - done, null);
    if (n === 0) break;
    done += n;
  }
  return bytes.subarray(0, done);
}

/** Freezes an object and every object in it: a remembered envelope is handed out, never changed through a reference. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}
