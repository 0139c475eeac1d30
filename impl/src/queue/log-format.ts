// #region record-format
/**
 * The records of the `log` queue backend, byte for byte.
 *
 * A segment file (log/00000001, log/00000002...) is nothing but records
 * laid end to end, each a fixed header and a payload:
 *
 *   [u32 payload length][u32 crc32][u8 type][payload: length bytes]
 *
 * Numbers are little-endian. The crc32 is zlib's, computed over the type
 * byte and then the payload, so that a damaged type is caught like damaged
 * data. The length comes first so that a reader can step from record to
 * record without understanding them, and the checksum lets it tell a
 * record written whole from one a crash cut short (or a disk damaged):
 * a record that fails it was never a commit anybody was told about, or
 * is corruption, and nothing after it in that segment can be trusted.
 *
 * The payloads:
 *
 *   COMMIT  [u32 message id][u32 H][H bytes: the envelopes][the content]
 *           each envelope: [u64 envelope id][u32 n][n bytes: its text]
 *   UPDATE  [u64 envelope id][its new text]
 *   DELETE  [u64 envelope id]
 *
 * An envelope's text is exactly what the fs backend writes in an envelope
 * file (envelope-format.ts: one line of JSON), and is validated the same
 * way when read back. Its id is written outside the text too, so that an
 * envelope whose text is refused can still be named in the log line and
 * deleted. A COMMIT carries a message and all its envelopes in one
 * record, and the content last: the content's place in the segment is
 * known from the header alone, and delivery reads it from there.
 */
// #endregion record-format
import { crc32 } from 'node:zlib';
import { MAX_ENVELOPE_BYTES } from './envelope-format.ts';
import { isEnvelopeId, isMessageId } from './ids.ts';
import type { EnvelopeId, MessageId } from './types.ts';

export const COMMIT = 1;
export const UPDATE = 2;
export const DELETE = 3;
export type RecordType = typeof COMMIT | typeof UPDATE | typeof DELETE;

/** Bytes of a record's header. */
export const HEADER_BYTES = 9;
/** The largest payload a header can describe. */
export const MAX_PAYLOAD_BYTES = 0xffff_ffff;
/** A COMMIT's payload begins with its message id and the length of its envelopes. */
export const COMMIT_FIXED_BYTES = 8;
/** An UPDATE's payload is at most an id and the largest envelope text. */
export const MAX_UPDATE_BYTES = 8 + MAX_ENVELOPE_BYTES;

export interface RecordHeader {
  length: number;
  crc: number;
  type: number;
}

/** An envelope as a record holds it: its id, and its text (undefined if the bytes are not UTF-8). */
export interface StoredEnvelope {
  id: EnvelopeId;
  text: string | undefined;
}

export function isRecordType(type: number): type is RecordType {
  return type === COMMIT || type === UPDATE || type === DELETE;
}

export function encodeHeader(type: RecordType, length: number, crc: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32LE(length, 0);
  header.writeUInt32LE(crc >>> 0, 4);
  header.writeUInt8(type, 8);
  return header;
}

export function decodeHeader(bytes: Uint8Array): RecordHeader {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  return { length: b.readUInt32LE(0), crc: b.readUInt32LE(4), type: b.readUInt8(8) };
}

// #region record-checksum
/** The checksum of a record: its type byte, then each piece of its payload in order. */
export function recordCrc(type: number, pieces: Iterable<Uint8Array>): number {
  let crc = crc32(Uint8Array.of(type));
  for (const piece of pieces) crc = crc32(piece, crc);
  return crc;
}

/** Carries a checksum on over one more piece (for content streamed in chunks). */
export function continueCrc(crc: number, piece: Uint8Array): number {
  return crc32(piece, crc);
}

/** A whole record whose payload is in memory: the header, then the payload's pieces. */
export function record(type: RecordType, pieces: Buffer[]): Buffer[] {
  const length = pieces.reduce((n, p) => n + p.length, 0);
  return [encodeHeader(type, length, recordCrc(type, pieces)), ...pieces];
}
// #endregion record-checksum

/** The start of a COMMIT's payload: the message id and its envelopes; the content follows. */
export function encodeCommitHead(msgid: MessageId, envelopes: readonly { id: EnvelopeId; text: string }[]): Buffer {
  const texts = envelopes.map((e) => Buffer.from(e.text, 'utf8'));
  const envelopeBytes = texts.reduce((n, t) => n + 12 + t.length, 0);
  const head = Buffer.allocUnsafe(COMMIT_FIXED_BYTES + envelopeBytes);
  head.writeUInt32LE(msgid, 0);
  head.writeUInt32LE(envelopeBytes, 4);
  let at = COMMIT_FIXED_BYTES;
  envelopes.forEach((e, i) => {
    const text = texts[i]!;
    head.writeBigUInt64LE(e.id, at);
    head.writeUInt32LE(text.length, at + 8);
    text.copy(head, at + 12);
    at += 12 + text.length;
  });
  return head;
}

/** How many bytes a COMMIT's head takes, from its first COMMIT_FIXED_BYTES. */
export function commitHeadLength(fixed: Uint8Array): number {
  return COMMIT_FIXED_BYTES + Buffer.from(fixed.buffer, fixed.byteOffset, COMMIT_FIXED_BYTES).readUInt32LE(4);
}

/** A COMMIT's head read back; undefined if it is not one this module wrote. */
export function decodeCommitHead(head: Buffer): { msgid: MessageId; envelopes: StoredEnvelope[] } | undefined {
  if (head.length < COMMIT_FIXED_BYTES || commitHeadLength(head) !== head.length) return undefined;
  const msgid = head.readUInt32LE(0);
  if (!isMessageId(msgid)) return undefined;
  const envelopes: StoredEnvelope[] = [];
  for (let at = COMMIT_FIXED_BYTES; at < head.length;) {
    if (head.length - at < 12) return undefined;
    const id = head.readBigUInt64LE(at);
    const n = head.readUInt32LE(at + 8);
    if (!isEnvelopeId(id) || n > head.length - at - 12) return undefined;
    envelopes.push({ id, text: utf8(head.subarray(at + 12, at + 12 + n)) });
    at += 12 + n;
  }
  return { msgid: msgid as MessageId, envelopes };
}

export function encodeUpdate(id: EnvelopeId, text: string): Buffer {
  const bytes = Buffer.allocUnsafe(8 + Buffer.byteLength(text, 'utf8'));
  bytes.writeBigUInt64LE(id, 0);
  bytes.write(text, 8, 'utf8');
  return bytes;
}

export function decodeUpdate(payload: Buffer): StoredEnvelope | undefined {
  const id = payload.length >= 8 ? payload.readBigUInt64LE(0) : undefined;
  return isEnvelopeId(id) ? { id, text: utf8(payload.subarray(8)) } : undefined;
}

export function encodeDelete(id: EnvelopeId): Buffer {
  const bytes = Buffer.allocUnsafe(8);
  bytes.writeBigUInt64LE(id, 0);
  return bytes;
}

export function decodeDelete(payload: Buffer): EnvelopeId | undefined {
  const id = payload.length === 8 ? payload.readBigUInt64LE(0) : undefined;
  return isEnvelopeId(id) ? id : undefined;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function utf8(bytes: Uint8Array): string | undefined {
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
  }
}
