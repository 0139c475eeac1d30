/**
 * Frames sent during one turn of the event loop leave in one write, in
 * order; a large chunk is written at once; a close flushes what was sent.
 */
import { describe, expect, it } from 'vitest';
import { socketPair } from '../../src/parent/links.ts';
import { socketTransport } from '../../src/proc/transport.ts';

describe('frames sent in one turn', () => {
  it('arrive together, in the order sent, in one read', async () => {
    const [a, b] = await socketPair();
    const left = socketTransport(a);
    const right = socketTransport(b);
    const reads: number[] = [];
    b.on('data', (data: Buffer) => reads.push(data.length));
    const seen: number[] = [];
    const done = new Promise<void>((resolve) => {
      right.attach({
        frame: (f) => {
          seen.push((f as { n: number }).n);
          if (seen.length === 50) resolve();
        },
        chunk: () => {},
        closed: () => {},
      });
    });
    left.attach({ frame: () => {}, chunk: () => {}, closed: () => {} });
    for (let n = 0; n < 50; n++) left.send({ n });
    right.resume();
    await done;
    expect(seen).toEqual(Array.from({ length: 50 }, (_, n) => n));
    expect(reads).toHaveLength(1);
    left.close();
  });

  it('are written before the channel closes, when it is closed in the same turn', async () => {
    const [a, b] = await socketPair();
    const left = socketTransport(a);
    const right = socketTransport(b);
    const seen: unknown[] = [];
    const closed = new Promise<void>((resolve) => {
      right.attach({ frame: (f) => seen.push(f), chunk: (ref, bytes) => seen.push(`${ref}:${bytes}`), closed: () => resolve() });
    });
    left.attach({ frame: () => {}, chunk: () => {}, closed: () => {} });
    right.resume();
    left.send({ last: 'words' });
    left.sendChunk(9, Buffer.from('tail'));
    left.close();
    await closed;
    expect(seen).toEqual([{ last: 'words' }, '9:tail']);
  });

  it('say when the socket is full, so that a sender of content waits for drained()', async () => {
    const [a, b] = await socketPair();
    const left = socketTransport(a);
    left.attach({ frame: () => {}, chunk: () => {}, closed: () => {} });
    const right = socketTransport(b);
    let received = 0;
    right.attach({ frame: () => {}, chunk: (_ref, bytes) => (received += bytes.length), closed: () => {} });
    // Nobody reads yet: sooner or later the kernel's buffer is full and sendChunk says so.
    const piece = Buffer.alloc(256 * 1024, 1);
    let sent = 0;
    let full = false;
    for (let i = 0; i < 64 && !full; i++) {
      full = !left.sendChunk(1, piece);
      sent += piece.length;
    }
    expect(full).toBe(true);
    // Many senders may wait at once (a message for a thousand recipients): they share one wait.
    const waits = Array.from({ length: 50 }, () => left.drained());
    expect(a.listenerCount('drain')).toBe(1);
    right.resume();
    await Promise.all(waits);
    await left.drained();
    while (received < sent) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(received).toBe(sent);
    left.close();
  });
});
