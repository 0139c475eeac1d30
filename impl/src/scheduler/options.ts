/**
 * The scheduler's settings, read from smtpd.conf, and its view of a
 * queued envelope, made from the queue's Envelope.
 */
import { shouldWarn } from '../bounce/policy.ts';
import { isRelay, type Config } from '../config/index.ts';
import { formatEnvelopeId } from '../queue/ids.ts';
import type { Envelope } from '../queue/types.ts';
import type { DispatcherKind } from './backoff.ts';
import { DEFAULT_MAX_INFLIGHT, DEFAULT_WARN_INTERVALS } from './ramqueue.ts';
import type { SchedulerEntry, SchedulerOptions } from './types.ts';

/** OpenSMTPD's SMTPD_QUEUE_EXPIRY: `queue ttl` when smtpd.conf does not set it. */
export const DEFAULT_QUEUE_TTL = 4 * 24 * 60 * 60;

/** What the scheduler needs from the configuration. */
export interface ConfiguredScheduler extends SchedulerOptions {
  /** Seconds an envelope of this dispatcher may stay queued: the action's `ttl`, else `queue ttl`, else 4 days. */
  ttlOf: (dispatcher: string) => number;
}

/**
 * Reads `bounce warn-interval`, `queue ttl`, `scheduler limit
 * max-inflight` and the actions (which are local, which relay, and
 * their `ttl`). When a global statement is written twice, the last one
 * counts, as in OpenSMTPD's parser.
 */
export function schedulerOptions(config: Config): ConfiguredScheduler {
  let warnIntervals = DEFAULT_WARN_INTERVALS;
  let queueTtl = DEFAULT_QUEUE_TTL;
  let maxInflight = DEFAULT_MAX_INFLIGHT;
  for (const option of config.options) {
    if (option.kind === 'bounce warn-interval') warnIntervals = option.delays.map((d) => d.seconds);
    else if (option.kind === 'queue ttl') queueTtl = option.ttl.seconds;
    else if (option.kind === 'scheduler limit') {
      for (const limit of option.limits) if (limit.name === 'max-inflight') maxInflight = limit.value;
    }
  }
  const kinds = new Map<string, DispatcherKind>();
  const ttls = new Map<string, number>();
  for (const action of config.actions) {
    kinds.set(action.name, isRelay(action) ? 'relay' : 'local');
    const ttl = action.options.ttl?.seconds;
    if (ttl !== undefined) ttls.set(action.name, ttl);
  }
  return {
    // The queue checks dispatcher names against the configuration when it
    // reads an envelope; should an unknown one get here, the relay
    // schedule is the gentler mistake.
    kindOf: (dispatcher) => kinds.get(dispatcher) ?? 'relay',
    ttlOf: (dispatcher) => ttls.get(dispatcher) ?? queueTtl,
    warnIntervals,
    maxInflight,
  };
}

// #region entry-of
/**
 * The scheduler's entry for a queued envelope. With `ttlOf`, the expiry
 * is computed from the configuration in force, as OpenSMTPD's scheduler
 * does, so that a changed `ttl` applies to mail already queued once the
 * daemon restarts; without it, the envelope's own expiresAt is kept.
 */
export function entryOf(envelope: Envelope, ttlOf?: (dispatcher: string) => number): SchedulerEntry {
  return {
    id: formatEnvelopeId(envelope.id),
    messageId: envelope.messageId,
    dispatcher: envelope.dispatcher,
    createdAt: envelope.createdAt,
    expiresAt: ttlOf ? envelope.createdAt + ttlOf(envelope.dispatcher) : envelope.expiresAt,
    attempts: envelope.attempts,
    ...(envelope.lastTryAt !== undefined && { lastTryAt: envelope.lastTryAt }),
    warnings: envelope.warnings ?? 0,
    bounce: envelope.sender === null,
    notifyDelay: shouldWarn(envelope),
  };
}
// #endregion entry-of
