/**
 * smtp's RemoteQueue keeps messages created ahead of need, so that a DATA
 * does not wait for a round trip to the queue; each commit's answer brings
 * the replacement of the message it ends; and a spare whose creation
 * failed is never handed out.
 */
import { describe, expect, it } from 'vitest';
import { socketPair } from '../../src/parent/links.ts';
import { queueChannel } from '../../src/proc/channels/queue.ts';
import { serveMessagePath } from '../../src/proc/message-path.ts';
import { Peer } from '../../src/proc/peer.ts';
import { MAX_SPARES, RemoteQueue, SPARE_MESSAGES } from '../../src/proc/queue-proxy.ts';
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
  const requests: string[] = [];
  const request = peer.request.bind(peer);
  peer.request = ((msg, options) => (requests.push(msg.type), request(msg, options))) as typeof peer.request;
  return { queue: new RemoteQueue(peer), creates: () => creates, peer, requests };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('messages created ahead of need', () => {
  it('are ready for the next DATAs, and every message is distinct', async () => {
    const { queue, creates } = await connected();
    const first = await queue.createMessage();
    await settle();
    expect(creates()).toBe(SPARE_MESSAGES); // the first DATA's own, and one spare: it counts as the other
    const taken: IncomingMessage[] = [first];
    for (let i = 0; i < 5; i++) taken.push(await queue.createMessage());
    await settle();
    expect(creates()).toBe(taken.length); // no commit yet: the spare went to the second, the others waited for their own
    expect(new Set(taken.map((m) => m.id)).size).toBe(taken.length);
    for (const m of taken) {
      await m.write(Buffer.from(`message ${m.id}`));
      await m.commit([draft]);
    }
    await queue.close();
  });

  it('are replaced by the commits that end them: a running session asks for none', async () => {
    const { queue, requests, creates } = await connected();
    const send = async () => {
      const m = await queue.createMessage();
      await m.write(Buffer.from('hello'));
      return m.commit([draft]);
    };
    await send();
    await settle();
    requests.length = 0;
    const before = creates();
    for (let i = 0; i < 10; i++) await send();
    await settle();
    expect(requests).toEqual(Array(10).fill('queue.message.commit'));
    expect(creates() - before).toBe(10); // each created along with a commit
    // Four at once: the spares grow to the DATAs under way, then a round of four asks for none.
    await Promise.all([send(), send(), send(), send()]);
    await settle();
    requests.length = 0;
    await Promise.all([send(), send(), send(), send()]);
    expect(requests).toEqual(Array(4).fill('queue.message.commit'));
    await queue.close();
  });

  it('are replaced after an abort or a failed commit, and stop growing at MAX_SPARES', async () => {
    const { queue, requests } = await connected();
    const aborted = await queue.createMessage();
    await settle();
    requests.length = 0;
    await aborted.abort();
    await settle();
    expect(requests).toEqual(['queue.message.abort', 'queue.message.create']);
    const held = await Promise.all(Array.from({ length: MAX_SPARES + 4 }, () => queue.createMessage()));
    requests.length = 0;
    for (const m of held) await m.commit([draft]);
    const asked = requests.filter((t) => t === 'queue.message.commit').length;
    expect(asked).toBe(held.length);
    const next = await Promise.all(Array.from({ length: MAX_SPARES + 4 }, () => queue.createMessage()));
    expect(new Set(next.map((m) => m.id)).size).toBe(next.length);
    await Promise.all(next.map((m) => m.abort()));
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
