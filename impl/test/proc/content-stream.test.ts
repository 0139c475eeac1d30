/**
 * A message's content between two processes (queue to dispatcher,
 * dispatcher to agent): the receiver holds at most a window of it, however
 * large the message and however slow whoever reads it.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { socketPair } from '../../src/parent/links.ts';
import { ContentInbox, CONTENT_WINDOW, sendContent } from '../../src/proc/content-stream.ts';
import { socketTransport } from '../../src/proc/transport.ts';

/** A sender and a receiver over a real socket pair; `received` counts the content bytes that reached the receiver. */
async function pair() {
  const [a, b] = await socketPair();
  const sender = socketTransport(a);
  const receiver = socketTransport(b);
  const inbox = new ContentInbox((ref, bytes) => receiver.sendCredit(ref, bytes));
  const counter = { received: 0 };
  receiver.attach({
    frame: () => {},
    chunk: (ref, bytes) => {
      counter.received += bytes.length;
      inbox.chunk(ref, bytes);
    },
    abandoned: (ref) => inbox.abandon(ref),
    closed: () => inbox.fail('closed'),
  });
  sender.attach({ frame: () => {}, chunk: () => {}, closed: () => {} });
  sender.resume();
  receiver.resume();
  return { sender, receiver, inbox, counter };
}

/** `mib` MiB in 64 KiB pieces, each piece's bytes telling where it is. */
function content(mib: number): { stream: Readable; bytes: Buffer } {
  const bytes = Buffer.alloc(mib * 1024 * 1024);
  for (let i = 0; i < bytes.length; i += 4) bytes.writeUInt32BE(i, i);
  const pieces = [];
  for (let i = 0; i < bytes.length; i += 65536) pieces.push(bytes.subarray(i, i + 65536));
  return { stream: Readable.from(pieces), bytes };
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('content between processes', () => {
  it('a reader that does not read yet holds one window, not the whole message; then it gets every byte in order', async () => {
    const { sender, receiver, inbox, counter } = await pair();
    const { stream, bytes } = content(16);
    const sent = sendContent(sender, 7, stream);
    await settle(300);
    expect(counter.received).toBeLessThanOrEqual(CONTENT_WINDOW);
    const parts: Buffer[] = [];
    for await (const piece of inbox.take(7)) parts.push(piece as Buffer);
    await sent;
    expect(Buffer.concat(parts).equals(bytes)).toBe(true);
    sender.close();
    receiver.close();
  });

  it('a small message goes whole at once, and the reader sends nothing back for it', async () => {
    const { sender, receiver, inbox } = await pair();
    const credits: number[] = [];
    const original = receiver.sendCredit.bind(receiver);
    receiver.sendCredit = (ref, n) => (credits.push(n), original(ref, n));
    const small = Buffer.alloc(CONTENT_WINDOW / 4, 0x61);
    await sendContent(sender, 3, Readable.from([small]));
    const parts: Buffer[] = [];
    for await (const piece of inbox.take(3)) parts.push(piece as Buffer);
    expect(Buffer.concat(parts).equals(small)).toBe(true);
    expect(credits).toEqual([]);
    sender.close();
    receiver.close();
  });

  it('stops sending when the other side has answered without reading (`until`), and the receiver forgets the stream', async () => {
    const { sender, receiver, inbox } = await pair();
    const { stream } = content(16);
    // Nobody takes ref 9: the receiver answered at once (a refused delivery, a bad request).
    await sendContent(sender, 9, stream, Promise.resolve());
    expect(stream.destroyed).toBe(true);
    await settle(100);
    expect(inbox.size).toBe(0);
    sender.close();
    receiver.close();
  });

  it('a reader of content its sender abandoned gets an error, not a message cut short', async () => {
    const { sender, receiver, inbox } = await pair();
    const { stream } = content(16);
    const reader = inbox.take(4);
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    const sent = sendContent(sender, 4, stream, answered);
    await settle(100);
    answer(); // as a request's timeout would, while the reader still reads
    await sent;
    const read = (async () => {
      for await (const piece of reader) void piece;
    })();
    await expect(read).rejects.toThrow(/abandoned/);
    expect(inbox.size).toBe(0);
    sender.close();
    receiver.close();
  });

  it('a sender waiting for the window is released, with an error, when the channel closes', async () => {
    const { sender, receiver } = await pair();
    const { stream } = content(16);
    const sent = sendContent(sender, 5, stream);
    await settle(100);
    receiver.close();
    await expect(sent).rejects.toThrow(/closed/);
  });
});
