import { describe, expect, it } from 'vitest';
import { socketPair } from '../../src/parent/links.ts';
import { queueChannel } from '../../src/proc/channels/queue.ts';
import { serveMessagePath } from '../../src/proc/message-path.ts';
import { Peer } from '../../src/proc/peer.ts';
import { RemoteQueue } from '../../src/proc/queue-proxy.ts';
import { socketTransport } from '../../src/proc/transport.ts';
import { RamQueueBackend } from '../../src/queue/ram-backend.ts';
import type { QueueBackend } from '../../src/queue/backend.ts';
import type { MessageId } from '../../src/queue/types.ts';
import { testDraft } from '../envelopes.ts';
import { memoryLogger } from './helpers.ts';

const draft = testDraft();

async function connected(dispatchers?: string[]) {
  const [smtpEnd, queueEnd] = await socketPair();
  const backend = new RamQueueBackend(dispatchers && { dispatchers: new Set(dispatchers) });
  const { log, lines } = memoryLogger();
  const committed: unknown[] = [];
  const server = serveMessagePath({ transport: socketTransport(queueEnd), backend, log, committed: (e) => committed.push(...e) });
  queueEnd.resume();
  smtpEnd.resume();
  const peer = new Peer<Record<never, never>, typeof queueChannel['calls']>({
    self: 'smtp', peer: 'queue', transport: socketTransport(smtpEnd), calls: queueChannel, log,
  });
  return { queue: new RemoteQueue(peer) as QueueBackend, backend, server, peer, lines, committed };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(Buffer.from(part as Buffer));
  return Buffer.concat(parts);
}

describe('the message path: a QueueBackend in another process', () => {
  it('streams content as chunks and commits it with its envelopes', async () => {
    const { queue, backend, committed } = await connected();
    const message = await queue.createMessage();
    const body = Buffer.alloc(700_000, 'x'); // cut into three frames on the way
    await message.write(Buffer.from('Subject: hi\r\n\r\n'));
    await message.write(body);
    const envelopes = await message.commit([draft]);
    expect(envelopes).toHaveLength(1);
    expect(envelopes[0]?.messageId).toBe(message.id);
    expect(typeof envelopes[0]?.id).toBe('bigint');
    expect(await backend.loadEnvelope(envelopes[0]!.id)).toEqual(envelopes[0]);
    const stored = await readAll(await backend.openMessage(message.id));
    expect(stored.length).toBe(15 + body.length);
    expect(committed).toHaveLength(1);
  });

  it('keeps concurrent messages apart', async () => {
    const { queue, backend } = await connected();
    const [m1, m2] = await Promise.all([queue.createMessage(), queue.createMessage()]);
    await Promise.all([m1.write(Buffer.from('one-')), m2.write(Buffer.from('two-'))]);
    await Promise.all([m1.write(Buffer.from('1')), m2.write(Buffer.from('2'))]);
    await Promise.all([m1.commit([draft]), m2.commit([draft])]);
    expect((await readAll(await backend.openMessage(m1.id))).toString()).toBe('one-1');
    expect((await readAll(await backend.openMessage(m2.id))).toString()).toBe('two-2');
  });

  it('aborts: the message is gone and cannot be committed afterwards', async () => {
    const { queue } = await connected();
    const message = await queue.createMessage();
    await message.write(Buffer.from('x'));
    await message.abort();
    await expect(message.commit([draft])).rejects.toThrow(/no message [0-9a-f]{8} being received/);
  });

  it('creates the next message along with a commit that asks for one; a failed commit drops both', async () => {
    const { peer, backend } = await connected();
    const made: { id: number; aborted: boolean }[] = [];
    const create = backend.createMessage.bind(backend);
    let failCommits = false;
    backend.createMessage = async () => {
      const message = await create();
      const entry = { id: message.id, aborted: false };
      made.push(entry);
      const abort = message.abort.bind(message);
      const commit = message.commit.bind(message);
      message.abort = () => ((entry.aborted = true), abort());
      message.commit = (drafts) => (failCommits ? Promise.reject(new Error('disk full')) : commit(drafts));
      return message;
    };
    const { msgid } = await peer.request({ type: 'queue.message.create' });
    const answer = await peer.request({ type: 'queue.message.commit', msgid, envelopes: [draft], spare: 'yes' });
    expect(answer.spare).toBe(made[1]?.id);
    failCommits = true;
    await expect(peer.request({ type: 'queue.message.commit', msgid: answer.spare!, envelopes: [draft], spare: 'yes' }))
      .rejects.toThrow('disk full');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(made).toHaveLength(3);
    expect(made[1]?.aborted).toBe(true); // the message whose commit failed: smtp can no longer abort it
    expect(made[2]?.aborted).toBe(true); // the spare nobody will hear of
    await expect(peer.request({ type: 'queue.message.commit', msgid: made[2]!.id, envelopes: [draft] }))
      .rejects.toThrow(/no message [0-9a-f]{8} being received/);
  });

  it('refuses content for a message that smtp did not create on this channel', async () => {
    const { peer, lines } = await connected();
    peer.transport.sendChunk(0x12345678, Buffer.from('forged'));
    await expect(peer.request({ type: 'queue.message.commit', msgid: 0x12345678, envelopes: [draft] })).rejects.toThrow('no message 12345678');
    expect(lines).toContain('warn: queue: content for unknown message 12345678 refused');
  });

  it('refuses, from a smtp it cannot trust, an action smtpd.conf does not have and a second commit of one message', async () => {
    const { peer, backend, committed } = await connected(['local']);
    const { msgid } = await peer.request({ type: 'queue.message.create' });
    await expect(peer.request({ type: 'queue.message.commit', msgid, envelopes: [testDraft({ dispatcher: '../../etc/passwd' })] }))
      .rejects.toThrow('unknown dispatcher');
    const second = await peer.request({ type: 'queue.message.create' });
    peer.transport.sendChunk(second.msgid, Buffer.from('Subject: once\r\n\nbody\r\n'));
    // Sent in the same turn: both reach the queue before either has committed.
    const both = await Promise.allSettled([1, 2].map(() => peer.request({ type: 'queue.message.commit', msgid: second.msgid, envelopes: [draft] })));
    expect(both.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(committed).toHaveLength(1);
    expect((await readAll(await backend.openMessage(second.msgid as MessageId))).toString()).toBe('Subject: once\r\n\nbody\r\n');
  });

  it('lets smtp add messages and nothing else', async () => {
    const { queue } = await connected();
    await expect(queue.loadEnvelope(1n as never)).rejects.toThrow('loadEnvelope is not available to the smtp process');
  });
});
