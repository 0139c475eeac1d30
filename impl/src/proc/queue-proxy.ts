/**
 * The queue, as the smtp process sees it: a QueueBackend whose messages
 * live in another process. The SMTP engine is given this object where a
 * test would give it the ram backend, and cannot tell the difference:
 * createMessage(), write(), commit() and abort() behave as the interface
 * says, only each of them crosses a socket.
 */
import type { IncomingMessage, QueueBackend } from '../queue/backend.ts';
import type { Envelope, EnvelopeId, MessageId } from '../queue/types.ts';
import { fromWire, type EnvelopeDraft, type queueChannel } from './channels/queue.ts';
import type { Peer } from './peer.ts';

type QueueCalls = typeof queueChannel['calls'];

/** Content is cut into frames of at most this size, so one large write does not hold the socket for long. */
const CHUNK = 256 * 1024;

/**
 * How long a commit may take. It waits for the queue's fsync, shared
 * with other sessions' commits, so it may be slow on a busy disk; but a
 * queue that never answers must not keep a client waiting forever.
 */
const COMMIT_TIMEOUT_MS = 120_000;

/** How many messages smtp keeps created ahead of need (see createMessage). */
export const SPARE_MESSAGES = 2;

export class RemoteQueue implements QueueBackend {
  readonly name = 'remote';
  /** Messages the queue has created (or is creating) for DATAs to come. */
  private readonly spares: Promise<MessageId>[] = [];

  constructor(private readonly queue: Peer<Record<never, never>, QueueCalls>) {}

  /**
   * A message for a DATA. Asking the queue costs a round trip, and an
   * open(2) there, while the client waits for its 354; so smtp asks ahead
   * of need and keeps SPARE_MESSAGES ready, and replaces each one taken at
   * once. The first DATA after start-up waits; the next ones find a
   * message ready. A spare never used costs an empty file in incoming/,
   * which the queue removes when smtp's channel closes, or start-up
   * purges with everything else never committed. A spare whose creation
   * failed is not handed out: a fresh request is made, and its failure,
   * if it fails too, is the caller's.
   */
  async createMessage(): Promise<IncomingMessage> {
    const spare = this.spares.shift();
    while (this.spares.length < SPARE_MESSAGES) this.spares.push(this.create());
    let msgid: MessageId;
    try {
      msgid = await (spare ?? this.create());
    } catch (err) {
      if (!spare) throw err;
      msgid = await this.create();
    }
    return new RemoteMessage(this.queue, msgid);
  }

  private create(): Promise<MessageId> {
    const created = this.queue.request({ type: 'queue.message.create' }).then(({ msgid }) => msgid as MessageId);
    created.catch(() => {}); // a spare nobody takes must not be an unhandled rejection
    return created;
  }

  // The smtp process may add messages and nothing else: reading, changing
  // or deleting queued mail is the queue's, the scheduler's and the
  // dispatcher's business, so a compromised smtp cannot ask for it.

  async *recover(): AsyncIterable<Envelope> {
    throw refused('recover');
  }

  loadEnvelope(_id: EnvelopeId): Promise<Envelope | undefined> {
    return Promise.reject(refused('loadEnvelope'));
  }

  updateEnvelope(_envelope: Envelope): Promise<void> {
    return Promise.reject(refused('updateEnvelope'));
  }

  deleteEnvelope(_id: EnvelopeId): Promise<void> {
    return Promise.reject(refused('deleteEnvelope'));
  }

  openMessage(_id: MessageId): Promise<NodeJS.ReadableStream> {
    return Promise.reject(refused('openMessage'));
  }

  async close(): Promise<void> {
    this.queue.close();
  }
}

function refused(what: string): Error {
  return new Error(`queue: ${what} is not available to the smtp process`);
}

// #region remote-message
/**
 * One message being received. Content goes out as chunk frames tagged
 * with the message id; write() resolves as soon as the socket has taken
 * the bytes, and waits only when the socket's buffer is full, which is
 * how a slow disk on the queue's side slows the client down instead of
 * filling smtp's memory. The commit is a request on the same socket,
 * written after the last chunk, so the queue sees it after all the
 * content; it resolves when the queue says the message is on disk.
 *
 * As with a Node stream, the caller must not change a buffer after
 * handing it to write(): the socket may still be sending it.
 */
class RemoteMessage implements IncomingMessage {
  constructor(
    private readonly queue: Peer<Record<never, never>, QueueCalls>,
    readonly id: MessageId,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    const transport = this.queue.transport;
    for (let offset = 0; offset < chunk.length; offset += CHUNK) {
      if (this.queue.isClosed) throw new Error('queue: the channel to the queue process is closed');
      if (!transport.sendChunk(this.id, chunk.subarray(offset, offset + CHUNK))) await transport.drained();
    }
  }

  async commit(envelopes: EnvelopeDraft[]): Promise<Envelope[]> {
    const answer = await this.queue.request(
      { type: 'queue.message.commit', msgid: this.id, envelopes },
      { timeoutMs: COMMIT_TIMEOUT_MS },
    );
    return answer.envelopes.map(fromWire);
  }

  async abort(): Promise<void> {
    await this.queue.request({ type: 'queue.message.abort', msgid: this.id });
  }
}
// #endregion remote-message
