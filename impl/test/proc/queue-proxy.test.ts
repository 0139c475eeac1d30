/**
 * smtp's RemoteQueue keeps messages created ahead of need, so that a DATA
 * does not wait for a round trip to the queue; and a spare whose creation
 * failed is never handed out.
 */
import { describe, expect, it } from 'vitest';
import { socketPair } from '../../src/parent/links.ts';
import { queueChannel } from '../../src/proc/channels/queue.ts';
import { serveMessagePath } from '../../src/proc/message-path.ts';
import { Peer } from '../../src/proc/peer.ts';
import { RemoteQueue, SPARE_MESSAGES } from '../../src/proc/queue-proxy.ts';
import { socketTransport } from '../../src/proc/transport.ts';
import type { IncomingMessage } from '../../src/queue/backend.ts';
import { RamQueueBackend } from '../../src/queue/ram-backend.ts';
import { testDraft } from '../envelopes.ts';
import { memoryLogger } from './helpers.ts';

const draft = testDraft();

async function connected(backend = new RamQueueBackend()) {
  const [smtpEnd, queueEnd] = await socketPair();
  const { log } = memoryLogger();
  let creates = 0;
  const counting = new Proxy(backend, {
    get(target, key, receiver) {
      if (key === 'createMessage') return () => (creates++, target.createMessage());
      return Reflect.get(target, key, receiver);
    },
  });
  serveMessagePath({ transport: socketTransport(queueEnd), backend: counting, log });
  queueEnd.resume();
  smtpEnd.resume();
  const peer = new Peer<Record<never, never>, typeof queueChannel['calls']>({
    self: 'smtp', peer: 'queue', transport: socketTransport(smtpEnd), calls: queueChannel, log,
  });
  return { queue: new RemoteQueue(peer), creates: () => creates, peer };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('messages created ahead of need', () => {
  it('are ready for the next DATAs, each taken one replaced, and every message is distinct', async () => {
    const { queue, creates } = await connected();
    const first = await queue.createMessage();
    await settle();
    expect(creates()).toBe(1 + SPARE_MESSAGES);
    const taken: IncomingMessage[] = [first];
    for (let i = 0; i < 5; i++) taken.push(await queue.createMessage());
    await settle();
    expect(creates()).toBe(taken.length + SPARE_MESSAGES);
    expect(new Set(taken.map((m) => m.id)).size).toBe(taken.length);
    for (const m of taken) {
      await m.write(Buffer.from(`message ${m.id}`));
      await m.commit([draft]);
    }
    await queue.close();
  });

  it('are not handed out when their creation failed: a fresh one is asked for', async () => {
    const backend = new RamQueueBackend();
    let failing = false;
    const create = backend.createMessage.bind(backend);
    backend.createMessage = () => (failing ? Promise.reject(new Error('disk full')) : create());
    const { queue } = await connected(backend);
    failing = true;
    await expect(queue.createMessage()).rejects.toThrow('disk full'); // and the spares it asked for fail too
    await settle();
    failing = false;
    const message = await queue.createMessage(); // a failed spare, replaced by a fresh request
    await message.write(Buffer.from('hello'));
    expect(await message.commit([draft])).toHaveLength(1);
    await queue.close();
  });
});
