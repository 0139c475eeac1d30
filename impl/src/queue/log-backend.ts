/**
 * The `log` queue backend: the queue as a write-ahead log. Each commit,
 * update and delete is a record appended to one file (the current
 * segment), and what is queued is kept in memory (LogIndex), rebuilt from
 * the log at start-up. Where the fs backend creates two files per message
 * and fsyncs two files and three directories, a commit here is part of
 * one write and one fdatasync shared by every commit of its batch.
 */
import { mkdirSync, rmSync } from 'node:fs';
import type { IncomingMessage, QueueBackend } from './backend.ts';
import { encodeEnvelopeRecord, parseEnvelope, type ValidateOptions } from './envelope-format.ts';
import type { QueueLog } from './fs-recover.ts';
import { GroupCommit, type GroupCommitStats } from './group-commit.ts';
import { formatEnvelopeId, formatMessageId, generateMessageId } from './ids.ts';
import { type Content, LogAppender, type LogRecord, type Placement } from './log-append.ts';
import { LogIncomingMessage } from './log-incoming.ts';
import { LogIndex } from './log-index.ts';
import { recoverLog } from './log-recover.ts';
import { contentStream, LogLayout, type Segment, SegmentList } from './log-segments.ts';
import { DirectoryHandles, durableIo, type SpoolIo } from './spool-io.ts';
import type { Envelope, EnvelopeId, MessageId } from './types.ts';

export interface LogBackendOptions {
  /** The spool directory; log/ is created in it if missing. */
  spool: string;
  /** The durability system calls; tests watch them, the benchmark can turn fsync off. */
  io?: SpoolIo;
  validate?: ValidateOptions;
  log?: QueueLog;
  /** A segment is closed, and the next one begun, once it holds this many bytes. */
  segmentBytes?: number;
  /** Zeros written ahead of the records, in steps of this many bytes; 0 for none (see LogAppender). */
  preallocateBytes?: number;
  /** Compaction may run while the log has more segments than this (see LogQueueBackend.compact). */
  compactAbove?: number;
  /** Every segment, not only the current one, is checked for removal at most this often (see LogQueueBackend.rescue). */
  checkSegmentsEveryMs?: number;
}

export const DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024;
export const DEFAULT_PREALLOCATE_BYTES = 1024 * 1024;
export const DEFAULT_COMPACT_ABOVE = 4;

/** The oldest segment is compacted when at most this share of it is still live. */
const COMPACT_LIVE_SHARE = 0.25;
/** After a compaction failed, none is tried for this long: the failure is logged, not repeated in a loop. */
const COMPACT_PAUSE_MS = 60_000;
export const DEFAULT_CHECK_SEGMENTS_EVERY_MS = 1000;

/**
 * Opens the log: makes its directories (mode 0700), empties log/incoming/,
 * reads every segment back, and appends a DELETE for each envelope start-up
 * dropped.
 */
export async function openLogBackend(options: LogBackendOptions): Promise<LogQueueBackend> {
  const layout = new LogLayout(options.spool);
  const io = options.io ?? durableIo;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const validate = options.validate ?? {};
  const dirs = new DirectoryHandles(io);
  rmSync(layout.incoming, { recursive: true, force: true });
  for (const dir of [layout.root, layout.log, layout.incoming]) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const segments = SegmentList.open(layout, dirs, log);
  // log/ itself, and the name of every segment, must be durable before a
  // commit goes into one: a segment created just before a crash is there
  // for this process, but its name may not have reached the disk.
  await Promise.all([dirs.sync(layout.root), dirs.sync(layout.log)]);
  for (const segment of segments.all) segment.named = true;
  const index = new LogIndex();
  const dropped = recoverLog({ layout, segments: segments.all, index, validate, log });
  const appender = new LogAppender(
    segments, io, options.segmentBytes ?? DEFAULT_SEGMENT_BYTES, options.preallocateBytes ?? DEFAULT_PREALLOCATE_BYTES,
  );
  const backend = new LogQueueBackend(layout, dirs, segments, index, appender, validate, log, {
    compactAbove: options.compactAbove ?? DEFAULT_COMPACT_ABOVE,
    checkSegmentsEveryMs: options.checkSegmentsEveryMs ?? DEFAULT_CHECK_SEGMENTS_EVERY_MS,
  });
  for (const id of dropped) backend.queueDelete(id);
  backend.tidy();
  return backend;
}

/** What one caller hands to group commit: records, appended together and in order. */
interface Submission {
  records: LogRecord[];
}

export class LogQueueBackend implements QueueBackend {
  readonly name = 'log';
  /** Messages being received or committed: their ids are not handed out again. */
  private readonly receiving = new Map<MessageId, LogIncomingMessage>();
  /** Messages found at start-up: what recover() hands to the scheduler. */
  private readonly recovered: Set<MessageId>;
  private readonly group = new GroupCommit<Submission>((batch) => this.flush(batch));
  /** DELETE records not yet handed to group commit (see deleteEnvelope). */
  private pendingDeletes: LogRecord[] = [];
  private deleteTurn: NodeJS.Immediate | undefined;
  private compacting: Promise<void> | undefined;
  private compactPausedUntil = 0;
  private nextFullCheck = 0;
  private closed: Promise<void> | undefined;

  constructor(
    readonly layout: LogLayout,
    private readonly dirs: DirectoryHandles,
    private readonly segments: SegmentList,
    private readonly index: LogIndex,
    private readonly appender: LogAppender,
    readonly validate: ValidateOptions,
    private readonly log: QueueLog,
    private readonly limits: { compactAbove: number; checkSegmentsEveryMs: number },
  ) {
    this.recovered = new Set(index.messages.keys());
  }

  /** How group commit has been batching, for the benchmark. */
  get stats(): GroupCommitStats {
    return this.group.stats;
  }

  /** The segments' sequence numbers, oldest first, for the tests. */
  get segmentNumbers(): number[] {
    return this.segments.all.map((s) => s.seq);
  }

  async createMessage(): Promise<IncomingMessage> {
    // A message id is not drawn again while its message is live or being
    // received. One whose message was deleted may be: every DELETE of the
    // old message precedes the new COMMIT in the log, and start-up lets a
    // COMMIT replace whatever it finds under the same id.
    const id = generateMessageId((c) => this.receiving.has(c) || this.index.messages.has(c));
    const message = new LogIncomingMessage(this, id);
    this.receiving.set(id, message);
    return message;
  }

  /** Called by a LogIncomingMessage: its COMMIT, durable when this resolves, and in the index by then. */
  commit(msgid: MessageId, envelopes: { id: EnvelopeId; text: string }[], content: Content): Promise<void> {
    return this.submit([{
      type: 'commit',
      msgid,
      envelopes,
      content,
      landed: (p) => {
        this.index.commit(msgid, { segment: p.segment, offset: p.contentOffset, length: content.length }, envelopes);
        this.receiving.delete(msgid);
        this.recovered.delete(msgid); // a new message under the id of one recovered and since deleted
      },
    }]);
  }

  release(msgid: MessageId): void {
    this.receiving.delete(msgid);
  }

  async *recover(): AsyncIterable<Envelope> {
    for (const msgid of [...this.recovered]) {
      const envelopes = [...(this.index.messages.get(msgid)?.envelopes.keys() ?? [])];
      for (const id of envelopes) {
        const envelope = await this.loadEnvelope(id); // undefined if deleted while the caller was busy
        if (envelope) yield envelope;
      }
    }
  }

  /** From memory: the index holds each envelope's latest text, parsed afresh so that no caller shares an object. */
  async loadEnvelope(id: EnvelopeId): Promise<Envelope | undefined> {
    const entry = this.index.envelope(id);
    if (!entry) return undefined;
    const parsed = parseEnvelope(entry.text, this.validate);
    if ('error' in parsed) throw new Error(`queue: envelope ${formatEnvelopeId(id)} is invalid: ${parsed.error}`);
    return parsed.envelope;
  }

  /**
   * Appends an UPDATE and resolves once it is durable. The index takes the
   * new text at once, before the write: a compaction that copies the
   * envelope after this call must copy the new text, since its record
   * will follow this one in the log.
   */
  async updateEnvelope(envelope: Envelope): Promise<void> {
    const { text } = encodeEnvelopeRecord(envelope, this.validate);
    const entry = this.index.envelope(envelope.id);
    if (!entry) throw new Error(`queue: no envelope ${formatEnvelopeId(envelope.id)} to update`);
    entry.text = text;
    const { id } = envelope;
    await this.submit([{ type: 'update', id, text, landed: (p) => this.index.moved(id, p.segment) }]);
  }

  // #region delete-envelope
  /**
   * Removes an envelope, and its message with the last one. Nobody waits
   * for the disk, as with the fs backend: the envelope is gone from the
   * index at once, for every caller, and its DELETE record goes out with
   * the next flush, ahead of whatever is submitted after this call. A
   * crash before that flush reaches the disk brings the envelope back,
   * and the message is delivered twice: the lesser harm (RFC 5321, 6.1).
   * If nothing else is submitted during this turn of the event loop, the
   * deletes of the turn are flushed together at its end, written but not
   * fdatasync'd (see LogAppender.append).
   */
  async deleteEnvelope(id: EnvelopeId): Promise<void> {
    if (!this.index.delete(id)) return;
    this.queueDelete(id);
    this.tidy();
  }

  /** Queues a DELETE record, to go out with the next flush, or at the end of this turn. */
  queueDelete(id: EnvelopeId): void {
    this.pendingDeletes.push({ type: 'delete', id });
    this.deleteTurn ??= setImmediate(() => {
      this.deleteTurn = undefined;
      if (this.pendingDeletes.length > 0) this.submit([]).catch(() => {}); // a failed write of deletes: duplicates at worst
    });
  }
  // #endregion delete-envelope

  async openMessage(id: MessageId): Promise<NodeJS.ReadableStream> {
    const message = this.index.messages.get(id);
    if (!message) throw new Error(`queue: no message ${formatMessageId(id)}`);
    const { segment, offset, length } = message.content;
    return contentStream(segment, offset, length);
  }

  /** Hands records to group commit, after the deletes queued before them. */
  private submit(records: LogRecord[]): Promise<void> {
    const deletes = this.pendingDeletes;
    this.pendingDeletes = [];
    return this.group.submit({ records: deletes.length > 0 ? [...deletes, ...records] : records });
  }

  /**
   * One flush of group commit: every submission's records, appended in
   * order. If it fails, nothing of it is in the log (LogAppender.append
   * cuts it off), and the DELETEs it carried go back to wait for the next
   * flush: their envelopes are gone from the index already, and lost
   * DELETEs would bring them back at the next start-up, to be delivered
   * again (with a full disk, every delivery since it filled).
   */
  private async flush(batch: readonly Submission[]): Promise<(Error | undefined)[]> {
    const records = batch.flatMap((s) => s.records);
    try {
      await this.appender.append(records);
      await this.rescue();
      return batch.map(() => undefined);
    } catch (err) {
      this.pendingDeletes = [...records.filter((r) => r.type === 'delete'), ...this.pendingDeletes];
      return batch.map(() => (err instanceof Error ? err : new Error(String(err))));
    } finally {
      this.tidy();
    }
  }

  /** Removes the segments nothing needs any more, and starts a compaction if one is due. */
  tidy(): void {
    this.segments.collect();
    if (!this.compacting && !this.closed && Date.now() >= this.compactPausedUntil) this.compact();
  }

  // #region compaction
  /**
   * Compaction. A segment can go only once nothing live is left in it and
   * every older segment has gone (SegmentList.collect), so one message
   * deferred for days would keep every segment written since. When the log
   * holds more than `compactAbove` segments and the oldest one is mostly
   * dead (at most a quarter of it still live), each message whose content
   * is in it is copied forward: a new COMMIT, at the end of the log, with
   * the same message id and envelope ids, its envelopes' current text and
   * its content. Once that COMMIT is durable the index points at the copy,
   * the old segment holds nothing live, and it goes. At start-up, the copy
   * replaces the original, since it comes later in the log.
   */
  private compact(): void {
    const oldest = this.segments.all[0];
    if (this.segments.all.length <= this.limits.compactAbove || !oldest || oldest === this.segments.current) return;
    if (oldest.pins === 0 || oldest.liveBytes > oldest.size * COMPACT_LIVE_SHARE) return;
    const msgids = this.index.contentIn(oldest);
    if (msgids.length === 0) return;
    this.compacting = this.copyForward(msgids)
      .catch((err) => {
        this.log(`warn: queue: cannot compact log segment ${oldest.seq}: ${String(err)}`);
        this.compactPausedUntil = Date.now() + COMPACT_PAUSE_MS;
      })
      .finally(() => {
        this.compacting = undefined;
        this.tidy();
      });
  }
  // #endregion compaction

  /** Appends a new COMMIT for each message: its content, its envelopes' current text, the same ids. */
  private async copyForward(msgids: MessageId[]): Promise<void> {
    await this.withSources(msgids, (records) => this.submit(records));
  }

  /**
   * The COMMITs that copy these messages forward, handed to `write` while
   * the segments their content is read from are held open.
   */
  private async withSources(msgids: MessageId[], write: (records: LogRecord[]) => Promise<unknown>): Promise<void> {
    const records: LogRecord[] = [];
    const sources = new Set<Segment>();
    for (const msgid of msgids) {
      const message = this.index.messages.get(msgid);
      if (!message) continue;
      const envelopes = [...message.envelopes].map(([id, { text }]) => ({ id, text }));
      const { segment, offset, length } = message.content;
      sources.add(segment);
      records.push({
        type: 'commit',
        msgid,
        envelopes,
        content: { fd: segment.fd, position: offset, length },
        landed: (p: Placement) => {
          this.index.movedContent(msgid, { segment: p.segment, offset: p.contentOffset, length });
          for (const { id } of envelopes) this.index.moved(id, p.segment);
        },
      });
    }
    for (const segment of sources) segment.acquire();
    try {
      await write(records);
    } finally {
      for (const segment of sources) segment.release();
    }
  }

  // #region removed-segment
  /**
   * A segment removed from under the daemon: an `rm` in the spool, a
   * cleanup script. This process still has the file open, so whatever is
   * in it can still be read here, and nothing looks wrong; but the next
   * start-up will not find it, and if it was the current segment, every
   * commit after the removal would be answered `250` and written to a
   * file nobody will ever read again. So after each flush the current
   * segment is checked (an fstat and a stat), and every segment once a
   * second. When one has gone, the next records go to a new file, and
   * every live message with a record in that segment or an older one is
   * copied forward, before the flush's callers hear that their records
   * are durable. The older segments must be emptied too: the removed file
   * may have held the DELETEs of messages committed before it, and
   * without them start-up would bring those messages back. Once nothing
   * live is left in them, the segments go (SegmentList.collect).
   *
   * If the copy fails (the disk is full, or log/ itself is gone), it is
   * tried again after the next flush; until it succeeds, a crash loses
   * the messages in the removed file, and the log says so.
   */
  private async rescue(): Promise<void> {
    const now = Date.now();
    const all = now >= this.nextFullCheck;
    if (all) this.nextFullCheck = now + this.limits.checkSegmentsEveryMs;
    for (const segment of this.segments.findRemoved(all)) {
      this.log(`warn: queue: log segment ${segment.path} was removed while in use: copying what is live in it to a new segment`);
    }
    const upTo = Math.max(0, ...this.segments.all.filter((s) => s.removed && s.pins > 0).map((s) => s.seq));
    if (upTo === 0) return;
    const msgids = [...this.index.messages]
      .filter(([, m]) => m.content.segment.seq <= upTo || [...m.envelopes.values()].some((e) => e.segment.seq <= upTo))
      .map(([msgid]) => msgid);
    try {
      await this.withSources(msgids, (records) => this.appender.append(records));
      this.log(`info: queue: ${messages(msgids.length)} copied out of the removed log segment${upTo > 1 ? ' and those before it' : ''}`);
    } catch (err) {
      this.log(`warn: queue: cannot copy ${messages(msgids.length)} out of a removed log segment, will try again: ${String(err)}`);
    }
  }
  // #endregion removed-segment

  /**
   * Stops: forgets the messages still being received, waits for a
   * compaction in progress, flushes the deletes not yet written and
   * fdatasyncs the current segment, then closes every descriptor.
   */
  close(): Promise<void> {
    this.closed ??= this.shutDown();
    return this.closed;
  }

  private async shutDown(): Promise<void> {
    await Promise.all([...this.receiving.values()].map((message) => message.detach()));
    this.receiving.clear();
    await this.compacting;
    if (this.deleteTurn) clearImmediate(this.deleteTurn);
    await this.submit([{ type: 'sync' }]);
    await this.segments.close();
    await this.dirs.close();
  }
}

const messages = (n: number) => `${n} message${n === 1 ? '' : 's'}`;
