/**
 * The queue's vocabulary: identifiers, the envelope, and what the queue
 * promises to its callers. Every other subsystem that touches a queued
 * message (smtp, scheduler, dispatcher, control) speaks in these types.
 */

/** A message's id: 32 random bits, never 0. Printed as 8 hex digits (`1a2b3c4d`). */
export type MessageId = number & { readonly __brand: 'MessageId' };

/**
 * An envelope's id: the message id in the high 32 bits and 32 random bits
 * below, so that an envelope names its message (OpenSMTPD does the same).
 * Printed as 16 hex digits.
 */
export type EnvelopeId = bigint & { readonly __brand: 'EnvelopeId' };

/** An address on the envelope; the null sender `<>` is `null` where a sender is allowed. */
export interface MailAddress {
  user: string;
  domain: string;
}

/** What the client asked for with DSN (RFC 3461), kept per recipient. */
export interface DsnRequest {
  notify?: ('SUCCESS' | 'FAILURE' | 'DELAY' | 'NEVER')[];
  orcpt?: string;
  ret?: 'FULL' | 'HDRS';
  envid?: string;
}

/** Where an envelope came from: what the rules and the Received: header need. */
export interface Origin {
  /** Listener tag (`listen on ... tag NAME`), if any. */
  tag?: string;
  /** Client address, or "local" for mail submitted on this host. */
  clientAddress: string;
  /** Reverse DNS name of the client, when known. */
  clientName?: string;
  helo: string;
  authUser?: string;
  tls?: { protocol: string; cipher: string; bits: number };
}

/**
 * One recipient of one message: the unit the scheduler schedules and the
 * dispatcher delivers. A message with three recipients has three
 * envelopes sharing one message body.
 */
export interface Envelope {
  id: EnvelopeId;
  messageId: MessageId;
  /** `null` for the null sender (bounces). */
  sender: MailAddress | null;
  recipient: MailAddress;
  /** The recipient as the client wrote it, before expansion. */
  originalRecipient: MailAddress;
  /** Name of the smtpd.conf action that will deliver it. */
  dispatcher: string;
  origin: Origin;
  dsn?: DsnRequest;
  /** Seconds since the epoch. */
  createdAt: number;
  expiresAt: number;
  attempts: number;
  lastTryAt?: number;
  /** The last error, for the logs, bounces and `smtpctl show queue`. */
  lastError?: string;
}
