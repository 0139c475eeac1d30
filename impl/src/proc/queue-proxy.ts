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

/** The most spares smtp keeps: past this, a commit asks for no replacement. */
export const MAX_SPARES = 32;

export class RemoteQueue implements QueueBackend {
  readonly name = 'remote';
  /** Messages the queue has created (or is creating) for DATAs to come. */
  private readonly spares: Promise<MessageId>[] = [];
  /** Messages handed out whose commit will bring back a replacement. */
  private outstanding = 0;

  constructor(private readonly queue: Peer<Record<never, never>, QueueCalls>) {}

  // #region spare-messages
  /**
   * A message for a DATA. Asking the queue costs a round trip, and an
   * open(2) there, while the client waits for its 354; so smtp keeps
   * messages created ahead of need. Each one taken is replaced by the
   * commit that ends it: the commit asks for a spare, and the queue
   * creates it while the commit waits for the disk and gives its id in
   * the answer. Once running, a session sends no `queue.message.create`
   * at all: two crossings fewer per message. Only when there are fewer
   * than SPARE_MESSAGES, counting the replacements on their way, does
   * smtp ask for more; when a DATA finds none ready (more sessions at
   * DATA than spares), it waits for one of its own, and the commit's
   * replacement leaves one more spare for next time, so the spares grow
   * to the number of DATAs under way, up to MAX_SPARES.
   *
   * A spare never used costs an empty file in incoming/, which the
   * queue removes when smtp's channel closes, or start-up purges with
   * everything else never committed. A spare whose creation failed is
   * not handed out: a fresh request is made, and its failure, if it
   * fails too, is the caller's.
   */
  async createMessage(): Promise<IncomingMessage> {
    const spare = this.spares.shift();
    this.outstanding++;
    this.topUp();
    let msgid: MessageId;
    try {
      msgid = await (spare ?? this.create());
    } catch (err) {
      if (!spare) return this.released(err);
      msgid = await this.create().catch((e: unknown) => this.released(e));
    }
    return new RemoteMessage(this.queue, msgid, {
      wantsSpare: () => this.spares.length < MAX_SPARES,
      ended: (next) => {
        this.outstanding--;
        if (next !== undefined) this.spares.push(Promise.resolve(next as MessageId));
        this.topUp();
      },
    });
  }
  // #endregion spare-messages

  private topUp(): void {
    while (this.spares.length + this.outstanding < SPARE_MESSAGES) this.spares.push(this.create());
  }

  /** A message that could not be created is not outstanding: throws `err`. */
  private released(err: unknown): never {
    this.outstanding--;
    throw err;
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

/** What a message tells the RemoteQueue that handed it out. */
interface SpareKeeper {
  /** Should the commit ask for a replacement? */
  wantsSpare(): boolean;
  /** The message is committed or aborted (or failed to be); `next` is the replacement the commit brought. */
  ended(next: number | undefined): void;
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
  private done = false;

  constructor(
    private readonly queue: Peer<Record<never, never>, QueueCalls>,
    readonly id: MessageId,
    private readonly spares: SpareKeeper,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    const transport = this.queue.transport;
    for (let offset = 0; offset < chunk.length; offset += CHUNK) {
      if (this.queue.isClosed) throw new Error('queue: the channel to the queue process is closed');
      if (!transport.sendChunk(this.id, chunk.subarray(offset, offset + CHUNK))) await transport.drained();
    }
  }

  async commit(envelopes: EnvelopeDraft[]): Promise<Envelope[]> {
    let next: number | undefined;
    try {
      const answer = await this.queue.request(
        { type: 'queue.message.commit', msgid: this.id, envelopes, ...(this.spares.wantsSpare() && { spare: 'yes' as const }) },
        { timeoutMs: COMMIT_TIMEOUT_MS },
      );
      next = answer.spare;
      return answer.envelopes.map(fromWire);
    } finally {
      this.end(next);
    }
  }

  async abort(): Promise<void> {
    try {
      await this.queue.request({ type: 'queue.message.abort', msgid: this.id });
    } finally {
      this.end(undefined);
    }
  }

  private end(next: number | undefined): void {
    if (this.done) return;
    this.done = true;
    this.spares.ended(next);
  }
}
// #endregion remote-message
