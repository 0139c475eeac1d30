/**
 * MessageWriter over content cut into pieces anywhere: what reaches the
 * queue must not depend on where TCP cut the message.
 */
import { describe, expect, it } from 'vitest';
import type { IncomingMessage } from '../../src/queue/backend.ts';
import { MessageWriter } from '../../src/smtp/message-writer.ts';

/** Feeds `content` in pieces of `size` octets, and returns what the queue was given. */
async function store(content: string, size: number, submission = false): Promise<string> {
  const chunks: Buffer[] = [];
  const message = { id: 1, write: async (c: Uint8Array) => void chunks.push(Buffer.from(c)) } as unknown as IncomingMessage;
  const writer = new MessageWriter(message, {
    maxSize: 1 << 20,
    ...(submission && { missingFields: () => ({ date: 'D', messageId: '<M>' }) }),
  });
  const bytes = Buffer.from(content, 'latin1');
  for (let at = 0; at < bytes.length; at += size) await writer.content([bytes.subarray(at, at + size)]);
  await writer.finish();
  return Buffer.concat(chunks).toString('latin1');
}

const SIZES = [1, 2, 3, 5, 7, 11, 1000];

describe('a header section that ends without a blank line', () => {
  it('gets the blank line before the first line that is not a field, however the content is cut', async () => {
    for (const size of SIZES) {
      expect(await store('Subject: x\r\nhello world\r\nDate: no\r\n\r\nbody\r\n', size)).toBe('Subject: x\r\n\r\nhello world\r\nDate: no\r\n\r\nbody\r\n');
      expect(await store('hello world\r\nSubject: x\r\n', size)).toBe('\r\nhello world\r\nSubject: x\r\n');
      expect(await store('Subject: x\r\nFrom nobody Thu\r\n', size)).toBe('Subject: x\r\n\r\nFrom nobody Thu\r\n');
    }
  });

  it('is left alone when it ends with one, or has no body at all', async () => {
    for (const size of SIZES) {
      for (const content of ['Subject: x\r\n\r\nhello\r\n', 'Subject: x\r\n', '', '\r\nbody\r\n', 'Subject: x\r\n folded\r\n\r\n']) {
        expect(await store(content, size)).toBe(content);
      }
    }
  });

  it('takes a field written with spaces before its colon (RFC 5322 4.5.3) for a field', async () => {
    for (const size of SIZES) {
      expect(await store('Subject : x\r\nTo\t: y\r\n\r\nbody\r\n', size)).toBe('Subject : x\r\nTo\t: y\r\n\r\nbody\r\n');
      expect(await store('Subject x\r\n', size)).toBe('\r\nSubject x\r\n');
    }
  });

  it('takes a line that starts with its colon for the body: a field has a name (RFC 5322 3.6.8)', async () => {
    for (const size of SIZES) {
      expect(await store('Subject: x\r\n:oops\r\n', size)).toBe('Subject: x\r\n\r\n:oops\r\n');
      expect(await store(': no name\r\n', size)).toBe('\r\n: no name\r\n');
    }
  });

  it('on a submission listener, gets the added fields, then the blank line', async () => {
    for (const size of SIZES) {
      expect(await store('Subject: x\r\nhello\r\n', size, true)).toBe('Subject: x\r\nDate: D\r\nMessage-ID: <M>\r\n\r\nhello\r\n');
    }
  });
});
