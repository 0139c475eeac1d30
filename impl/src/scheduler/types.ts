/**
 * The scheduler's vocabulary: what it knows of an envelope, and what it
 * tells its driver to do. The scheduler decides *when*; it never reads
 * the spool. Every change it decides on (an attempt counted, a warning
 * sent, an envelope gone) comes back to the driver as a Decision, which
 * the driver has the queue write to disk: what is on disk is what a
 * restarted scheduler starts from.
 */
import type { DispatcherKind } from './backoff.ts';

/**
 * An envelope as the scheduler keeps it: enough to decide when, never
 * what. Times are seconds since the epoch, as in the queue's Envelope.
 */
export interface SchedulerEntry {
  /** The envelope id, 16 lower-case hex digits (its first 8 are the message id). */
  id: string;
  messageId: number;
  /** The action that delivers it; says whether the local or the relay schedule applies. */
  dispatcher: string;
  createdAt: number;
  expiresAt: number;
  /** Delivery attempts made so far (0 for a new envelope). */
  attempts: number;
  /** When the last attempt ended, if there was one. */
  lastTryAt?: number;
  /** Delay warnings already sent (`bounce warn-interval`). */
  warnings?: number;
  /** The envelope belongs to a bounce (its sender is `<>`): it is never warned about or bounced. */
  bounce?: boolean;
  /** False when the recipient's DSN NOTIFY leaves out DELAY: no delay warnings. */
  notifyDelay?: boolean;
}

/** What `due()` hands out: an envelope to deliver now, now counted as in flight. */
export interface DueEnvelope {
  id: string;
  messageId: number;
  dispatcher: string;
  kind: DispatcherKind;
  /** Attempts before this one. */
  attempts: number;
}

/**
 * What the driver must do after an outcome, or at a warning.
 *
 * - `remove`: delivered (or removed by the administrator): delete the envelope from the queue.
 * - `update`: try again at `nextTryAt`; write `attempts` and `lastTryAt` to the envelope on disk.
 * - `bounce`: it failed for good (`permfail`) or its time ran out (`expired`): tell the
 *   sender (see bounce/shouldBounce) and delete the envelope.
 * - `discard`: a bounce that failed for good or expired: bounces of bounces are never
 *   generated, so log it and delete the envelope.
 * - `warn`: send the sender a delay warning, and write `warnings` to the envelope on disk.
 */
export type Decision =
  | { do: 'remove'; id: string }
  | { do: 'update'; id: string; attempts: number; lastTryAt: number; nextTryAt: number }
  | { do: 'bounce' | 'discard'; id: string; reason: 'permfail' | 'expired'; attempts: number }
  | { do: 'warn'; id: string; messageId: number; warnings: number; delay: number };

export type WarnDecision = Extract<Decision, { do: 'warn' }>;

/** One line of `smtpctl show queue`. */
export interface ListedEnvelope {
  id: string;
  messageId: number;
  dispatcher: string;
  state: 'pending' | 'inflight';
  /** For a pending envelope: when it will be handed out. */
  nextTryAt?: number;
  attempts: number;
  lastTryAt?: number;
  createdAt: number;
  expiresAt: number;
  warnings: number;
  bounce: boolean;
  /** Removed by the administrator while in flight: gone when its attempt ends. */
  removed: boolean;
}

export interface SchedulerOptions {
  /** Which schedule a dispatcher follows; see schedulerOptions() for the one smtpd.conf gives. */
  kindOf: (dispatcher: string) => DispatcherKind;
  /** `bounce warn-interval`: seconds after arrival at which to warn; default one warning at 4 hours. */
  warnIntervals?: readonly number[];
  /** `scheduler limit max-inflight`: envelopes handed out and not yet answered; default 5000, as OpenSMTPD. */
  maxInflight?: number;
  /** The most envelopes of one dispatcher in flight at once; default no limit. */
  maxInflightPerDispatcher?: number;
}
