/**
 * Reading the log back at start-up: every segment, oldest first, every
 * record checked (length, checksum, shape) and replayed into the index,
 * so that the index ends as it was when the process stopped, minus what
 * was never made durable.
 */
import { copyFileSync, constants, existsSync, fdatasyncSync, ftruncateSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnvelope, type ValidateOptions } from './envelope-format.ts';
import type { QueueLog } from './fs-recover.ts';
import { formatEnvelopeId, messageIdOf } from './ids.ts';
import {
  COMMIT, COMMIT_FIXED_BYTES, commitHeadLength, continueCrc, decodeCommitHead, decodeDelete, decodeHeader, decodeUpdate, DELETE,
  HEADER_BYTES, isRecordType, MAX_UPDATE_BYTES, recordCrc, type RecordType, type StoredEnvelope, UPDATE,
} from './log-format.ts';
import type { LogIndex } from './log-index.ts';
import { type LogLayout, preadSync, type Segment, segmentName } from './log-segments.ts';
import type { EnvelopeId, MessageId } from './types.ts';

export interface RecoverLogContext {
  readonly layout: LogLayout;
  /** Every segment, oldest first. */
  readonly segments: readonly Segment[];
  readonly index: LogIndex;
  readonly validate: ValidateOptions;
  readonly log: QueueLog;
}

/** A record as read back, with what replaying it needs. */
type Scanned =
  | { type: typeof COMMIT; msgid: MessageId; envelopes: StoredEnvelope[]; contentOffset: number; contentLength: number }
  | { type: typeof UPDATE; envelope: StoredEnvelope }
  | { type: typeof DELETE; id: EnvelopeId };

/**
 * Where reading a segment stopped, and why. `zeros` when the file holds
 * nothing but zeros from there on (the space written ahead of the
 * records); `tail` when nothing but zeros follows the record that failed.
 */
interface BadRecord {
  offset: number;
  reason: string;
  zeros: boolean;
  tail: boolean;
}

// #region recover-log
/**
 * Replays the log into `ctx.index`, and returns the envelopes it dropped:
 * the backend appends a DELETE for each, so that they stay dropped and the
 * next start-up does not report them again.
 *
 * Where the records of the last segment end, zeros follow: the space
 * the appender writes ahead of them (see Gather.write). Reading stops
 * there, quietly; the next record goes there.
 *
 * What a bad record means depends on where it is:
 *
 * - at the end of the last segment, it is the batch a crash interrupted:
 *   a commit that never completed, whose caller was never told it was
 *   durable (that takes the fdatasync after the write). The file is cut
 *   there, and the cut made durable, so that new records follow good ones;
 * - anywhere else it is damage: every segment but the last was durable
 *   whole before its successor was created (SegmentList.writable), and
 *   in the last one good records follow it. The records after it in that
 *   segment are lost, since nothing says where the next one starts; the
 *   ones before it stand. The segment is copied to corrupt/ for a human,
 *   then cut, with a warning naming it and the offset; the next segments
 *   are read as usual.
 *
 * Envelopes are validated as the fs backend validates its files; one that
 * fails is dropped with a warning and its text kept in corrupt/, as is an
 * envelope whose message has no COMMIT in the log.
 */
export function recoverLog(ctx: RecoverLogContext): EnvelopeId[] {
  const replay = new Replay(ctx);
  ctx.segments.forEach((segment, i) => {
    const bad = scanSegment(segment, (r) => replay.apply(segment, r));
    if (bad) damaged(ctx, segment, bad, i === ctx.segments.length - 1);
  });
  return replay.drop();
}
// #endregion recover-log

/** Replays records into the index, and remembers the envelopes it cannot keep. */
class Replay {
  /**
   * Envelopes to drop, with why, unless a later record settles them: a
   * DELETE (which start-up wrote last time it dropped one), or a COMMIT
   * of the message (a compaction's copy, whose original had gone).
   */
  private readonly suspects = new Map<EnvelopeId, { reason: string; text: string | undefined }>();

  constructor(private readonly ctx: RecoverLogContext) {}

  apply(segment: Segment, r: Scanned): void {
    const { index } = this.ctx;
    switch (r.type) {
      case COMMIT: {
        const kept: { id: EnvelopeId; text: string }[] = [];
        for (const e of r.envelopes) {
          this.suspects.delete(e.id);
          const reason = this.refuse(e, r.msgid);
          if (reason) this.suspects.set(e.id, { reason, text: e.text });
          else kept.push({ id: e.id, text: e.text! });
        }
        index.commit(r.msgid, { segment, offset: r.contentOffset, length: r.contentLength }, kept);
        break;
      }
      case UPDATE: {
        const { id, text } = r.envelope;
        const entry = index.envelope(id);
        const reason = entry ? this.refuse(r.envelope, messageIdOf(id)) : 'its message has no content record';
        if (!reason) {
          entry!.text = text!;
          index.moved(id, segment);
        } else if (entry || !this.suspects.has(id)) {
          index.delete(id);
          this.suspects.set(id, { reason, text });
        }
        break;
      }
      case DELETE:
        index.delete(r.id);
        this.suspects.delete(r.id);
        break;
    }
  }

  /** Why an envelope's text is refused, or undefined if it is good. */
  private refuse(e: StoredEnvelope, msgid: MessageId): string | undefined {
    if (e.text === undefined) return 'not UTF-8';
    if (messageIdOf(e.id) !== msgid) return 'id does not belong to its message';
    const parsed = parseEnvelope(e.text, this.ctx.validate);
    if ('error' in parsed) return parsed.error;
    return parsed.envelope.id === e.id ? undefined : 'id does not match its record';
  }

  /** Reports the envelopes dropped, keeps their text in corrupt/, and returns their ids. */
  drop(): EnvelopeId[] {
    for (const [id, { reason, text }] of this.suspects) {
      const kept = text === undefined ? undefined : keep(this.ctx.layout, formatEnvelopeId(id), (path) => writeFileSync(path, text, { flag: 'wx', mode: 0o600 }));
      const where = kept === undefined ? '' : typeof kept === 'string' ? `; kept in corrupt/${kept}` : `; cannot keep it in corrupt/: ${String(kept)}`;
      this.ctx.log(`warn: queue: envelope ${formatEnvelopeId(id)}: ${reason}; dropped${where}`);
    }
    return [...this.suspects.keys()];
  }
}

/** A damaged segment: cut off a torn tail quietly, report anything else (see recoverLog). */
function damaged(ctx: RecoverLogContext, segment: Segment, bad: BadRecord, last: boolean): void {
  const name = `log/${segmentName(segment.seq)}`;
  const at = `at offset ${bad.offset} (${bad.reason})`;
  if (last && bad.zeros) {
    segment.size = bad.offset;
    return;
  }
  if (last && bad.tail) {
    ctx.log(`info: queue: ${name}: the last record, ${at}, is a commit that never completed: ${segment.size - bad.offset} bytes cut off`);
    cut(segment, bad.offset);
    return;
  }
  const kept = keep(ctx.layout, `log-${segmentName(segment.seq)}`, (path) => copyFileSync(segment.path, path, constants.COPYFILE_EXCL));
  if (typeof kept === 'string') {
    ctx.log(`warn: queue: ${name}: bad record ${at}; the records after it in this segment are lost; copied to corrupt/${kept}`);
    cut(segment, bad.offset);
  } else {
    ctx.log(`warn: queue: ${name}: bad record ${at}; the records after it in this segment are lost; cannot copy it to corrupt/: ${String(kept)}`);
    segment.broken = true; // left as it is, for a human; nothing more is appended to it
  }
}

/** Truncates a segment, durably: new records must follow good ones, even after a power cut. */
function cut(segment: Segment, size: number): void {
  ftruncateSync(segment.fd, size);
  fdatasyncSync(segment.fd);
  segment.size = size;
  segment.allocated = size;
}

/** Writes something into corrupt/ under `name` (or `name.1`...: evidence is never overwritten); its name, or the failure. */
function keep(layout: LogLayout, name: string, write: (path: string) => void): string | Error {
  try {
    mkdirSync(layout.corrupt, { recursive: true, mode: 0o700 });
    let free = name;
    for (let i = 1; existsSync(join(layout.corrupt, free)); i++) free = `${name}.${i}`;
    write(join(layout.corrupt, free));
    return free;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/** Payloads up to this size are read whole; larger ones (large messages) are checked in chunks. */
const READ_WHOLE_BYTES = 1024 * 1024;

/** Reads a segment's records in order, handing each to `apply`; stops at the first bad one and returns it. */
function scanSegment(segment: Segment, apply: (r: Scanned) => void): BadRecord | undefined {
  for (let offset = 0; offset < segment.size;) {
    const r = readRecord(segment, offset);
    if ('reason' in r) return r;
    apply(r.record);
    offset = r.next;
  }
  return undefined;
}

// #region read-record
function readRecord(segment: Segment, offset: number): { record: Scanned; next: number } | BadRecord {
  const { fd, size } = segment;
  const bad = (reason: string, end: number): BadRecord => {
    const zeros = zeroFrom(fd, offset, size);
    return { offset, reason, zeros, tail: zeros || zeroFrom(fd, Math.min(end, size), size) };
  };
  if (size - offset < HEADER_BYTES) return bad('header incomplete', size);
  const { length, crc, type } = decodeHeader(preadSync(fd, offset, HEADER_BYTES));
  const start = offset + HEADER_BYTES;
  const end = start + length;
  if (end > size) return bad('runs past the end of the file', end);
  if (!isRecordType(type)) return bad(`unknown type ${type}`, end);
  const payload = length <= READ_WHOLE_BYTES ? preadSync(fd, start, length) : undefined;
  if ((payload ? recordCrc(type, [payload]) : crcOfRange(fd, type, start, length)) !== crc) return bad('checksum mismatch', end);
  const record = decodeRecord(type, fd, start, length, payload);
  return record ? { record, next: end } : bad('malformed payload', end);
}
// #endregion read-record

/** A record whose checksum passed, decoded; undefined if it is not one the backend writes. */
function decodeRecord(type: RecordType, fd: number, start: number, length: number, payload: Buffer | undefined): Scanned | undefined {
  const read = (n: number) => payload?.subarray(0, n) ?? preadSync(fd, start, n);
  switch (type) {
    case DELETE: {
      const id = decodeDelete(read(length));
      return id === undefined ? undefined : { type, id };
    }
    case UPDATE: {
      const envelope = length <= MAX_UPDATE_BYTES ? decodeUpdate(read(length)) : undefined;
      return envelope && { type, envelope };
    }
    case COMMIT: {
      if (length < COMMIT_FIXED_BYTES) return undefined;
      const headLength = commitHeadLength(read(COMMIT_FIXED_BYTES));
      const head = headLength <= length ? decodeCommitHead(read(headLength)) : undefined;
      return head && { type, ...head, contentOffset: start + headLength, contentLength: length - headLength };
    }
  }
}

/** The checksum of a large record, read in chunks. */
function crcOfRange(fd: number, type: RecordType, start: number, length: number): number {
  let crc = recordCrc(type, []);
  for (let at = 0; at < length; at += READ_WHOLE_BYTES) crc = continueCrc(crc, preadSync(fd, start + at, Math.min(READ_WHOLE_BYTES, length - at)));
  return crc;
}

/** Whether the file holds only zeros from `offset` on (space written ahead, or blocks a crash left unwritten). */
function zeroFrom(fd: number, offset: number, size: number): boolean {
  for (let at = offset; at < size; at += READ_WHOLE_BYTES) {
    if (preadSync(fd, at, Math.min(READ_WHOLE_BYTES, size - at)).some((b) => b !== 0)) return false;
  }
  return true;
}
