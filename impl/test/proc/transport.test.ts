import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { socketPair } from '../../src/parent/links.ts';
import { MAX_FRAME, socketTransport } from '../../src/proc/transport.ts';

describe('framed Unix-domain sockets', () => {
  it('carries JSON frames and content chunks in the order they were written', async () => {
    const [a, b] = await socketPair();
    const left = socketTransport(a);
    const right = socketTransport(b);
    const seen: string[] = [];
    let resolveDone: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    right.attach({
      frame: (f) => {
        seen.push(`frame ${JSON.stringify(f)}`);
        if ((f as { last?: boolean }).last) resolveDone();
      },
      chunk: (ref, bytes) => seen.push(`chunk ${ref} ${bytes.toString()}`),
      closed: () => {},
    });
    left.attach({ frame: () => {}, chunk: () => {}, closed: () => {} });
    left.send({ n: 1 });
    left.sendChunk(7, Buffer.from('hello'));
    left.sendChunk(7, Buffer.from(' world'));
    left.send({ last: true });
    right.resume();
    await done;
    expect(seen).toEqual(['frame {"n":1}', 'chunk 7 hello', 'chunk 7  world', 'frame {"last":true}']);
    left.close();
  });

  it('reassembles a large chunk the kernel delivers in pieces, byte for byte', async () => {
    const [a, b] = await socketPair();
    const left = socketTransport(a);
    const right = socketTransport(b);
    const payload = Buffer.alloc(MAX_FRAME, 0);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    const got = new Promise<Buffer>((resolve) => {
      right.attach({ frame: () => {}, chunk: (_ref, bytes) => resolve(Buffer.from(bytes)), closed: () => {} });
    });
    left.attach({ frame: () => {}, chunk: () => {}, closed: () => {} });
    right.resume();
    left.sendChunk(1, payload);
    const digest = (x: Buffer) => createHash('sha256').update(x).digest('hex');
    expect(digest(await got)).toBe(digest(payload));
    left.close();
  });

  it('closes the channel when a frame announces more than MAX_FRAME bytes', async () => {
    const [a, b] = await socketPair();
    const right = socketTransport(b);
    const reason = new Promise<string>((resolve) => right.attach({ frame: () => {}, chunk: () => {}, closed: resolve }));
    right.resume();
    const header = Buffer.alloc(5);
    header.writeUInt32BE(MAX_FRAME * 4, 0);
    a.write(header);
    expect(await reason).toMatch(/^bad framing: frame of \d+ bytes$/);
    a.destroy();
  });

  it('closes the channel on a frame that is not JSON', async () => {
    const [a, b] = await socketPair();
    const right = socketTransport(b);
    const reason = new Promise<string>((resolve) => right.attach({ frame: () => {}, chunk: () => {}, closed: resolve }));
    right.resume();
    const body = Buffer.from('{nope');
    const header = Buffer.alloc(5);
    header.writeUInt32BE(body.length + 1, 0);
    a.write(Buffer.concat([header, body]));
    expect(await reason).toBe('a frame is not JSON');
    a.destroy();
  });
});
