/**
 * The files of the `log` backend: where they are, the segments records
 * are appended to, and the few positional reads and writes the backend
 * makes on them.
 *
 *   log/00000001 ...   segments, named by a sequence number in hex
 *   log/incoming/      content of messages being received that outgrew memory
 *   corrupt/           damaged segments and refused envelopes, kept for a human
 *
 * Only the newest segment is written to; the others are only read, for
 * delivery, for compaction and at start-up. Segments are removed from
 * the oldest end only (see SegmentList.collect).
 */
import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, read, readdirSync, readSync, statSync, writev, writevSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { QueueLog } from './fs-recover.ts';
import { formatMessageId } from './ids.ts';
import type { DirectoryHandles, Syncable } from './spool-io.ts';
import type { MessageId } from './types.ts';

export class LogLayout {
  readonly log: string;
  readonly incoming: string;
  readonly corrupt: string;

  constructor(readonly root: string) {
    this.log = join(root, 'log');
    this.incoming = join(this.log, 'incoming');
    this.corrupt = join(root, 'corrupt');
  }

  segmentFile(seq: number): string {
    return join(this.log, segmentName(seq));
  }

  incomingFile(msgid: MessageId): string {
    return join(this.incoming, formatMessageId(msgid));
  }
}

/** A segment's name: its sequence number as 8 hex digits, so that names sort as numbers do. */
export function segmentName(seq: number): string {
  return seq.toString(16).padStart(8, '0');
}

export function parseSegmentName(name: string): number | undefined {
  return /^[0-9a-f]{8}$/.test(name) && name !== '00000000' ? Number.parseInt(name, 16) : undefined;
}

/**
 * One segment file, open for as long as the backend may read it. It
 * counts what still needs it (pins): each live message whose content is
 * in it, and each live envelope whose latest record is in it. Nothing
 * else keeps a segment: a record no live thing points to is dead, be it
 * a COMMIT of a message since deleted, an UPDATE since superseded or a
 * DELETE.
 */
export class Segment implements Syncable {
  pins = 0;
  /** About how many bytes of the pinning records: what compaction would copy. */
  liveBytes = 0;
  /** Records were written since the last fdatasync (a flush of deletes alone does not sync: see LogAppender). */
  unsynced = false;
  /** A write failed, or the damage found at start-up could not be cut off: records go to a new segment. */
  broken = false;
  /** Its file is no longer in log/ under its name: someone removed or moved it (SegmentList.findRemoved). */
  removed = false;
  /**
   * Bytes in the file: `size`, then the zeros written ahead of the records
   * (LogAppender). Only the last segment has any; the others are trimmed
   * to their records when they stop being the last.
   */
  allocated: number;
  private readers = 0;
  private retired = false;

  constructor(
    readonly seq: number,
    readonly path: string,
    readonly fd: number,
    /** Where the records end: where the next one goes. */
    public size: number,
    /** Its name is durable: log/ was fsync'd since the file was created. */
    public named: boolean,
  ) {
    this.allocated = size;
  }

  // #region blocking-fdatasync
  /**
   * fdatasync(2): the records' bytes and the file's size, not its times.
   * It blocks the queue's event loop, on purpose. On libuv's pool the call
   * itself costs the same, but handing it to a thread and hearing back
   * (a wake-up of that thread, then an eventfd write that wakes the loop)
   * costs the queue more than it saves: `ab.ts`, log queue, six rounds
   * each in alternation, pool against blocking: N=1 296 against 329 msg/s
   * (4.49 against 4.24 ms of CPU per message), N=4 698 against 750 (2.40
   * against 2.06), N=100 2,697 against 2,676 (0.59 against 0.56). Nothing
   * waits meanwhile that could go on: commits that arrive queue up in the
   * socket and join the next batch (see GroupCommit).
   */
  sync(): Promise<void> {
    try {
      fdatasyncSync(this.fd);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }
  // #endregion blocking-fdatasync

  /** A reader starts: the descriptor stays open until it is done, even if the segment is removed meanwhile. */
  acquire(): void {
    this.readers += 1;
  }

  release(): void {
    this.readers -= 1;
    if (this.retired && this.readers === 0) this.close();
  }

  /** The segment is gone from the log: close it once the last reader is done. */
  retire(): void {
    this.retired = true;
    if (this.readers === 0) this.close();
  }

  close(): void {
    this.retired = true;
    this.readers = 0;
    try {
      closeSync(this.fd);
    } catch {
      // closed already
    }
  }
}

/** Bytes read at a time when content is streamed (delivery, compaction, a spilled message at commit). */
export const CHUNK_BYTES = 256 * 1024;

/** Reads `length` bytes at `position`, blocking (a few KiB from the page cache: cheaper than the pool). */
export function preadSync(fd: number, position: number, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  for (let done = 0; done < length;) {
    const n = readSync(fd, bytes, done, length - done, position + done);
    if (n === 0) throw new Error(`unexpected end of file at ${position + done}`);
    done += n;
  }
  return bytes;
}

/** The bytes from `position` to `position + length`, in chunks read on the pool: bounded memory for any size. */
export async function* preadChunks(fd: number, position: number, length: number): AsyncGenerator<Buffer> {
  for (let done = 0; done < length;) {
    const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, length - done));
    const n = await new Promise<number>((resolve, reject) =>
      read(fd, chunk, 0, chunk.length, position + done, (err, bytes) => (err ? reject(err) : resolve(bytes))));
    if (n === 0) throw new Error(`unexpected end of file at ${position + done}`);
    done += n;
    yield chunk.subarray(0, n);
  }
}

/** Writes every buffer at `position`, in order, blocking; loops over short writes. Returns the bytes written. */
export function pwritevSync(fd: number, buffers: readonly Buffer[], position: number): number {
  let written = 0;
  for (let from = 0; from < buffers.length; from += IOV_MAX) {
    let parts = buffers.slice(from, from + IOV_MAX);
    for (let left = parts.reduce((n, b) => n + b.length, 0); left > 0;) {
      const n = writevSync(fd, parts, position + written);
      written += n;
      left -= n;
      if (left > 0) parts = skip(parts, n);
    }
  }
  return written;
}

/** Writes every buffer at `position`, in order, on the pool: for content too large to write while the event loop waits. */
export async function pwritev(fd: number, buffers: readonly Buffer[], position: number): Promise<void> {
  let parts = [...buffers];
  for (let left = parts.reduce((n, b) => n + b.length, 0), at = position; left > 0;) {
    const n = await new Promise<number>((resolve, reject) =>
      writev(fd, parts, at, (err, bytes) => (err ? reject(err) : resolve(bytes))));
    at += n;
    left -= n;
    if (left > 0) parts = skip(parts, n);
  }
}

/** writev(2) takes at most this many buffers per call. */
const IOV_MAX = 512;

/** The buffers after the first `n` bytes. */
function skip(buffers: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of buffers) {
    if (n >= b.length) n -= b.length;
    else {
      out.push(b.subarray(n));
      n = 0;
    }
  }
  return out;
}

/** Content this large or smaller is read at once, with a blocking call; larger content is streamed. */
const READ_AT_ONCE_BYTES = 64 * 1024;

/** A message's content in a segment, as a stream for delivery. */
export function contentStream(segment: Segment, position: number, length: number): NodeJS.ReadableStream {
  if (length <= READ_AT_ONCE_BYTES) return Readable.from([preadSync(segment.fd, position, length)], { objectMode: false });
  segment.acquire();
  const stream = Readable.from(preadChunks(segment.fd, position, length), { objectMode: false });
  stream.once('close', () => segment.release());
  return stream;
}

/**
 * The segments, oldest first; the last one is the one records are
 * appended to.
 */
export class SegmentList {
  private removing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly layout: LogLayout,
    private readonly dirs: DirectoryHandles,
    private readonly log: QueueLog,
    readonly all: Segment[],
  ) {}

  /** Opens every segment in log/ (creating the first one if there is none). */
  static open(layout: LogLayout, dirs: DirectoryHandles, log: QueueLog): SegmentList {
    const seqs: number[] = [];
    for (const name of readdirSync(layout.log)) {
      const seq = parseSegmentName(name);
      if (seq !== undefined) seqs.push(seq);
      else if (name !== 'incoming') log(`warn: queue: bogus file log/${name}, ignored`);
    }
    const all = seqs.sort((a, b) => a - b).map((seq) => {
      const path = layout.segmentFile(seq);
      const fd = openSync(path, 'r+');
      return new Segment(seq, path, fd, fstatSync(fd).size, true);
    });
    const list = new SegmentList(layout, dirs, log, all);
    if (all.length === 0) list.create(1);
    return list;
  }

  get current(): Segment {
    return this.all[this.all.length - 1]!;
  }

  // #region new-segment
  /**
   * The segment the next records go to: the current one, or a new one if
   * the current one has grown past `limit` bytes or is broken. Before the
   * new file is created, the old one is cut to its records (the zeros
   * written ahead of them go) and made durable whole: so every segment but
   * the last was durable whole, records only, before its successor
   * existed, and start-up can call a bad record in any but the last one
   * corruption, never a crash.
   */
  async writable(limit: number): Promise<Segment> {
    const old = this.current;
    if (old.size < limit && !old.broken) return old;
    if (old.broken && !old.removed && old.size === 0 && old.allocated === 0) {
      // Cut back to nothing after a failed first batch: no record in it to
      // distrust, so the next batch goes there, rather than a new empty
      // file for every failure while the disk is full.
      old.broken = false;
      return old;
    }
    if (!old.broken && (old.unsynced || old.allocated > old.size)) {
      if (old.allocated > old.size) ftruncateSync(old.fd, old.size);
      old.allocated = old.size;
      await old.sync();
      old.unsynced = false;
    }
    return this.create(old.seq + 1);
  }

  private create(seq: number): Segment {
    const path = this.layout.segmentFile(seq);
    const segment = new Segment(seq, path, openSync(path, 'wx+', 0o600), 0, false);
    this.all.push(segment);
    return segment;
  }

  /**
   * Makes a new segment's name durable: fsync of log/, once per segment,
   * before any record in it is reported durable (the file's own fdatasync
   * does not make its name durable).
   */
  async nameDurable(segment: Segment): Promise<void> {
    if (segment.named) return;
    await this.dirs.sync(this.layout.log);
    segment.named = true;
  }
  // #endregion new-segment

  // #region collect-oldest-first
  /**
   * Removes segments nothing needs any more, from the oldest end only, one
   * after the other, each unlink made durable (fsync of log/) before the
   * next. Why the order matters: a DELETE sits in a newer segment than the
   * COMMIT it cancels, so if a newer segment could go first, a crash could
   * bring back the COMMIT without its DELETE, and a delivered message
   * would be delivered again. The current segment is never removed.
   */
  collect(): void {
    for (let oldest = this.all[0]; oldest && oldest !== this.current && oldest.pins === 0; oldest = this.all[0]) {
      const segment = this.all.shift()!;
      this.removing = this.removing.then(() => this.remove(segment));
    }
  }

  private async remove(segment: Segment): Promise<void> {
    try {
      if (segment.removed) return; // its name is gone already, or is another file's now
      await unlink(segment.path);
      await this.dirs.sync(this.layout.log);
    } catch (err) {
      this.log(`warn: queue: cannot remove ${segment.path}: ${String(err)}`);
    } finally {
      segment.retire();
    }
  }
  // #endregion collect-oldest-first

  /**
   * The segments whose file has left log/ since the last look: removed,
   * or renamed, or replaced by another file under the same name. Looks at
   * the current segment only, or at all of them: an fstat(2) and a
   * stat(2) each. Each one found is marked `removed`, and the current one
   * `broken` too, so that the next records go to a new file.
   */
  findRemoved(all: boolean): Segment[] {
    const found: Segment[] = [];
    for (const segment of all ? this.all : [this.current]) {
      if (segment.removed) continue;
      let open: { dev: number; ino: number };
      try {
        open = fstatSync(segment.fd);
      } catch {
        continue; // closed meanwhile: retired
      }
      let named: { dev: number; ino: number } | undefined;
      try {
        named = statSync(segment.path, { throwIfNoEntry: false });
      } catch {
        named = undefined; // log/ itself is gone, or is not a directory any more
      }
      if (named && named.dev === open.dev && named.ino === open.ino) continue;
      segment.removed = true;
      if (segment === this.current) segment.broken = true;
      found.push(segment);
    }
    return found;
  }

  /** Waits for removals in progress, then closes every segment. */
  async close(): Promise<void> {
    await this.removing;
    for (const segment of this.all) segment.close();
  }
}
