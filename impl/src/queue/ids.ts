/**
 * Message and envelope identifiers: how they are made, printed and read
 * back. They follow OpenSMTPD: a message id is 32 random bits, and an
 * envelope id carries its message id in its high half, so that any
 * envelope id names the bucket its message lives in.
 */
import { getRandomValues } from 'node:crypto';
import type { EnvelopeId, MessageId } from './types.ts';

/** Where random 32-bit numbers come from; tests pass their own to force collisions. */
export type Random32 = () => number;

/** 32 bits from the operating system's CSPRNG, fetched 256 numbers at a time. */
const pool = new Uint32Array(256);
let next = pool.length;
export const random32: Random32 = () => {
  if (next === pool.length) {
    getRandomValues(pool);
    next = 0;
  }
  return pool[next++] ?? 0;
};

/** Gives up after this many collisions in a row: with ids that random, it means a bug, not bad luck. */
const MAX_TRIES = 100;

// #region queue-ids
/**
 * A new message id: 32 random bits, never 0 (0 means "no message" in the
 * queue's messages and logs), and never the id of a message still on disk,
 * whether being received or committed.
 *
 * Random rather than a counter: ids survive restarts without a stored
 * counter, and a client cannot guess the next one. With a few thousand
 * messages on disk among four billion ids a collision is rare, but it is
 * not impossible, so the caller says which ids are taken and we draw
 * again. The spool then makes sure by creating `incoming/<id>`
 * exclusively (the open fails if the file exists).
 */
export function generateMessageId(isTaken: (id: MessageId) => boolean, random: Random32 = random32): MessageId {
  for (let i = 0; i < MAX_TRIES; i++) {
    const id = random() >>> 0;
    if (id !== 0 && !isTaken(id as MessageId)) return id as MessageId;
  }
  throw new Error('queue: cannot find a free message id');
}

/**
 * A new envelope id: the message id shifted into the high 32 bits, 32
 * random bits below (never 0). In hex, an envelope id begins with its
 * message's id, so one look at a log line or a file name says which
 * message it belongs to. The low half only has to be unique among
 * the envelopes of one message, which is new, so the caller's set of
 * envelope ids already drawn for it is all there is to check.
 */
export function generateEnvelopeId(
  msgid: MessageId,
  isTaken: (id: EnvelopeId) => boolean = () => false,
  random: Random32 = random32,
): EnvelopeId {
  for (let i = 0; i < MAX_TRIES; i++) {
    const low = random() >>> 0;
    const id = ((BigInt(msgid) << 32n) | BigInt(low)) as EnvelopeId;
    if (low !== 0 && !isTaken(id)) return id;
  }
  throw new Error(`queue: cannot find a free envelope id for message ${formatMessageId(msgid)}`);
}

/** The message an envelope belongs to: the high half of its id. */
export function messageIdOf(id: EnvelopeId): MessageId {
  return Number(id >> 32n) as MessageId;
}
// #endregion queue-ids

/** 8 lower-case hex digits: `0a1b2c3d`. */
export function formatMessageId(id: MessageId): string {
  return id.toString(16).padStart(8, '0');
}

/** 16 lower-case hex digits: `0a1b2c3d4e5f6071`. */
export function formatEnvelopeId(id: EnvelopeId): string {
  return id.toString(16).padStart(16, '0');
}

const MSGID_RE = /^[0-9a-f]{8}$/;
const EVPID_RE = /^[0-9a-f]{16}$/;

/** Reads 8 lower-case hex digits; undefined for anything else, or for 0. */
export function parseMessageId(text: string): MessageId | undefined {
  if (!MSGID_RE.test(text)) return undefined;
  const id = Number.parseInt(text, 16);
  return isMessageId(id) ? id : undefined;
}

/** Reads 16 lower-case hex digits; undefined for anything else, or if either half is 0. */
export function parseEnvelopeId(text: string): EnvelopeId | undefined {
  if (!EVPID_RE.test(text)) return undefined;
  const id = BigInt(`0x${text}`);
  return isEnvelopeId(id) ? id : undefined;
}

/** A 32-bit unsigned integer other than 0. */
export function isMessageId(value: unknown): value is MessageId {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= 0xffff_ffff;
}

/** A 64-bit unsigned integer whose halves are both non-zero. */
export function isEnvelopeId(value: unknown): value is EnvelopeId {
  return (
    typeof value === 'bigint' &&
    value >= 0n &&
    value <= 0xffff_ffff_ffff_ffffn &&
    (value >> 32n) !== 0n &&
    (value & 0xffff_ffffn) !== 0n
  );
}
