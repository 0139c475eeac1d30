import { describe, expect, it } from 'vitest';
import {
  formatEnvelopeId, formatMessageId, generateEnvelopeId, generateMessageId, isEnvelopeId, isMessageId,
  messageIdOf, parseEnvelopeId, parseMessageId,
} from '../../src/queue/ids.ts';
import type { EnvelopeId, MessageId } from '../../src/queue/types.ts';

/** A random source that plays the given numbers, then fails the test if asked for more. */
function scripted(...values: number[]) {
  return () => {
    const v = values.shift();
    if (v === undefined) throw new Error('random source exhausted');
    return v;
  };
}

describe('message ids', () => {
  it('are never 0 and never one that is taken', () => {
    const taken = new Set([0x11111111]);
    const id = generateMessageId((c) => taken.has(c), scripted(0, 0x11111111, 0x22222222));
    expect(id).toBe(0x22222222);
  });

  it('are 32 bits, unique over many draws from the real source', () => {
    const seen = new Set<MessageId>();
    for (let i = 0; i < 50_000; i++) {
      const id = generateMessageId((c) => seen.has(c));
      expect(isMessageId(id)).toBe(true);
      seen.add(id);
    }
    expect(seen.size).toBe(50_000);
    // All four bytes vary: the top byte picks the bucket, so it must be spread.
    const buckets = new Set([...seen].map((id) => id >>> 24));
    expect(buckets.size).toBe(256);
  });

  it('give up rather than loop forever when every id is taken', () => {
    expect(() => generateMessageId(() => true)).toThrow(/free message id/);
  });

  it('print as 8 lower-case hex digits and parse back', () => {
    expect(formatMessageId(0x0a1b2c3d as MessageId)).toBe('0a1b2c3d');
    expect(formatMessageId(0xffffffff as MessageId)).toBe('ffffffff');
    expect(parseMessageId('0a1b2c3d')).toBe(0x0a1b2c3d);
    for (const bad of ['00000000', 'A1B2C3D4', '0a1b2c3', '0a1b2c3d0', 'g0000000', '', ' 0a1b2c3d']) {
      expect(parseMessageId(bad), bad).toBeUndefined();
    }
  });
});

describe('envelope ids', () => {
  const msgid = 0x0a1b2c3d as MessageId;

  it('carry the message id in their high half, random bits below, never 0', () => {
    const id = generateEnvelopeId(msgid, () => false, scripted(0, 0xdeadbeef));
    expect(id).toBe(0x0a1b2c3ddeadbeefn);
    expect(messageIdOf(id)).toBe(msgid);
  });

  it('avoid ids the caller has already drawn for the message', () => {
    const first = 0x0a1b2c3d00000001n as EnvelopeId;
    const id = generateEnvelopeId(msgid, (c) => c === first, scripted(1, 2));
    expect(id).toBe(0x0a1b2c3d00000002n);
  });

  it('print as 16 lower-case hex digits and parse back', () => {
    const id = generateEnvelopeId(msgid);
    const text = formatEnvelopeId(id);
    expect(text).toMatch(/^0a1b2c3d[0-9a-f]{8}$/);
    expect(parseEnvelopeId(text)).toBe(id);
    for (const bad of ['0000000000000001', '0a1b2c3d00000000', '0A1B2C3D00000001', '0a1b2c3d0000001', '']) {
      expect(parseEnvelopeId(bad), bad).toBeUndefined();
    }
  });

  it('are validated as 64-bit values with both halves non-zero', () => {
    expect(isEnvelopeId(0x0000000100000001n)).toBe(true);
    expect(isEnvelopeId(0xffffffffffffffffn)).toBe(true);
    expect(isEnvelopeId(0x1_0000000000000000n)).toBe(false);
    expect(isEnvelopeId(-1n)).toBe(false);
    expect(isEnvelopeId(1)).toBe(false);
    expect(isMessageId(0)).toBe(false);
    expect(isMessageId(2 ** 32)).toBe(false);
    expect(isMessageId(1.5)).toBe(false);
  });
});
