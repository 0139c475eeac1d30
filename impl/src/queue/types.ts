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
  /**
   * For an envelope of a local action: what expansion decided in the
   * lookup process (whose mailbox, or which file or command). Absent for
   * a relay action, whose recipient is delivered as it is.
   */
  delivery?: LocalDelivery;
  /** How many delay warnings (`bounce warn-interval`) the sender has been sent for this envelope. */
  warnings?: number;
}

/**
 * Where a local delivery goes, as expansion decided it (OpenSMTPD's
 * expandnode types USERNAME, FILENAME and COMMAND that end an expansion).
 * The user is a name, looked up again at delivery time in the action's
 * userbase: uids and home directories are not trusted from disk.
 */
export interface LocalDelivery {
  /** The account the delivery runs as (and, for `mailbox`, whose mailbox): a name in the action's userbase. */
  user: string;
  /**
   * `mailbox`: the action's method (maildir, mbox, mda, lmtp) for `user`.
   * `file`: append to `target`, a path from an alias or ~/.forward.
   * `command`: pipe to `target`, a command from an alias, a virtual map or ~/.forward.
   */
  kind: 'mailbox' | 'file' | 'command';
  target?: string;
  /** Where a file or command came from: what allow-exec is checked against, and what the log names. */
  source?: ExpansionSource;
  /** The part after `smtp sub-addr-delim` in the recipient (`tag` in `user+tag`), for `%{dest.user}`-style use. */
  subaddress?: string;
}

/** The table or file an expansion step came from. `where` is for people: `table aliases, key root` or `/home/u/.forward line 2`. */
export interface ExpansionSource {
  kind: 'alias' | 'virtual' | 'forward';
  where: string;
}
