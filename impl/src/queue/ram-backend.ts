/**
 * The `ram` queue backend: the same interface as `fs`, with everything in
 * memory and nothing durable. It serves the tests and benchmarks of the
 * layers above the queue (SMTP, scheduler, delivery), which want a queue
 * that behaves like the real one without a disk in the way. Envelopes are
 * stored serialized and validated when read, as on disk, so that a caller
 * cannot change a stored envelope through an object it still holds.
 */
import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { IncomingMessage, QueueBackend } from './backend.ts';
import { encodeEnvelope, parseEnvelope, type ValidateOptions } from './envelope-format.ts';
import { formatEnvelopeId, formatMessageId, generateEnvelopeId, generateMessageId, messageIdOf } from './ids.ts';
import type { Envelope, EnvelopeId, MessageId } from './types.ts';

interface StoredMessage {
  content: Buffer;
  /** Each envelope as its file would hold it. */
  envelopes: Map<EnvelopeId, string>;
}

export class RamQueueBackend implements QueueBackend {
  readonly name = 'ram';
  private readonly messages = new Map<MessageId, StoredMessage>();
  /** Ids of messages being received: not committed, not to be handed out again. */
  private readonly incoming = new Set<MessageId>();

  constructor(private readonly validate: ValidateOptions = {}) {}

  async createMessage(): Promise<IncomingMessage> {
    const id = generateMessageId((c) => this.messages.has(c) || this.incoming.has(c));
    this.incoming.add(id);
    return new RamIncomingMessage(id, this);
  }

  /** Called by a RamIncomingMessage at commit. */
  store(id: MessageId, content: Buffer, envelopes: Envelope[]): void {
    const map = new Map(envelopes.map((e) => [e.id, encodeEnvelope(e, this.validate)] as const));
    this.incoming.delete(id);
    this.messages.set(id, { content, envelopes: map });
  }

  /** Called by a RamIncomingMessage when aborted. */
  forget(id: MessageId): void {
    this.incoming.delete(id);
  }

  async *recover(): AsyncIterable<Envelope> {
    for (const message of [...this.messages.values()]) {
      for (const text of [...message.envelopes.values()]) yield this.decode(text);
    }
  }

  async loadEnvelope(id: EnvelopeId): Promise<Envelope | undefined> {
    const text = this.messages.get(messageIdOf(id))?.envelopes.get(id);
    return text === undefined ? undefined : this.decode(text);
  }

  async updateEnvelope(envelope: Envelope): Promise<void> {
    const message = this.messages.get(envelope.messageId);
    if (!message?.envelopes.has(envelope.id)) {
      throw new Error(`queue: no envelope ${formatEnvelopeId(envelope.id)} to update`);
    }
    message.envelopes.set(envelope.id, encodeEnvelope(envelope, this.validate));
  }

  async deleteEnvelope(id: EnvelopeId): Promise<void> {
    const msgid = messageIdOf(id);
    const message = this.messages.get(msgid);
    if (!message) return;
    message.envelopes.delete(id);
    if (message.envelopes.size === 0) this.messages.delete(msgid);
  }

  async openMessage(id: MessageId): Promise<NodeJS.ReadableStream> {
    const message = this.messages.get(id);
    if (!message) throw new Error(`queue: no message ${formatMessageId(id)}`);
    return Readable.from([message.content]);
  }

  async close(): Promise<void> {}

  private decode(text: string): Envelope {
    const parsed = parseEnvelope(text, this.validate);
    if ('error' in parsed) throw new Error(`queue: stored envelope is invalid: ${parsed.error}`);
    return parsed.envelope;
  }
}

class RamIncomingMessage implements IncomingMessage {
  private chunks: Buffer[] = [];
  private done = false;

  constructor(
    readonly id: MessageId,
    private readonly backend: RamQueueBackend,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    this.check('write');
    this.chunks.push(Buffer.from(chunk));
  }

  async commit(templates: Omit<Envelope, 'id' | 'messageId'>[]): Promise<Envelope[]> {
    this.check('commit');
    if (templates.length === 0) throw new Error(`queue: message ${formatMessageId(this.id)}: no envelope to commit`);
    // Like a disk, answer on a later turn of the event loop: a caller that
    // commits in a loop must not starve timers and sockets in tests either.
    await nextTurn();
    this.check('commit');
    const ids = new Set<EnvelopeId>();
    const envelopes = templates.map((t) => {
      const id = generateEnvelopeId(this.id, (c) => ids.has(c));
      ids.add(id);
      return { ...t, id, messageId: this.id };
    });
    this.done = true;
    try {
      this.backend.store(this.id, Buffer.concat(this.chunks), envelopes);
    } catch (err) {
      this.backend.forget(this.id);
      throw err;
    }
    return envelopes;
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.backend.forget(this.id);
  }

  private check(what: string): void {
    if (this.done) throw new Error(`queue: message ${formatMessageId(this.id)}: ${what} after commit or abort`);
  }
}
