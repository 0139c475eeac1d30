/**
 * The scheduler: when each queued envelope is delivered, retried,
 * bounced or warned about. RamQueue holds the envelopes and decides;
 * the scheduler process drives it with the clock and carries out its
 * decisions through the queue.
 */
export { BOUNCE_BATCH_MAX, BOUNCE_HOLD_MS, BounceBatch, type BounceReason } from './bounce-batch.ts';
export { BACKOFF, nextTryAfter, retryOffset, type DispatcherKind } from './backoff.ts';
export { DEFAULT_QUEUE_TTL, entryOf, schedulerOptions, type ConfiguredScheduler } from './options.ts';
export { DEFAULT_MAX_INFLIGHT, DEFAULT_WARN_INTERVALS, RamQueue, warnIntervalsOf } from './ramqueue.ts';
export { DEFAULT_RETRY_DELAYS, RetryLater, type RetryDelays } from './retry-later.ts';
export type { Decision, DueEnvelope, ListedEnvelope, SchedulerEntry, SchedulerOptions, WarnDecision } from './types.ts';
