import type { Envelope, EnvelopeId, MessageId } from './types.ts';

/**
 * The queue's storage, behind one small interface chosen by name at
 * start-up (like OpenSMTPD's queue_backend): `fs` is the real one, `ram`
 * serves tests and benchmarks of the layers above.
 *
 * The durability promise belongs to `commit`: when its promise resolves,
 * the message and all its envelopes survive a crash or a power cut. The
 * SMTP engine answers 250 only after that.
 */
export interface QueueBackend {
  readonly name: string;

  /** Starts a message: a place to write its content to. */
  createMessage(): Promise<IncomingMessage>;

  /** Every committed envelope, for the scheduler at start-up. Incomplete messages are purged first. */
  recover(): AsyncIterable<Envelope>;

  loadEnvelope(id: EnvelopeId): Promise<Envelope | undefined>;
  updateEnvelope(envelope: Envelope): Promise<void>;
  /** Removes an envelope; the message goes with its last envelope. */
  deleteEnvelope(id: EnvelopeId): Promise<void>;
  /** A readable stream of the message content, for delivery. */
  openMessage(id: MessageId): Promise<NodeJS.ReadableStream>;

  close(): Promise<void>;
}

/** A message being received: content is written in chunks, then committed with its envelopes or aborted. */
export interface IncomingMessage {
  readonly id: MessageId;
  /** Appends content (already dot-unstuffed, CRLF line ends). Resolves when buffered, not when durable. */
  write(chunk: Uint8Array): Promise<void>;
  /** Makes the message and its envelopes durable. Resolves only then. */
  commit(envelopes: Omit<Envelope, 'id' | 'messageId'>[]): Promise<Envelope[]>;
  /** Drops the message (the client went away, or a filter refused it). */
  abort(): Promise<void>;
}
