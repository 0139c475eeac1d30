/**
 * The scheduler process: which envelopes wait for delivery, and when
 * each is tried next (scheduler/ramqueue.ts decides; this file drives
 * it). The queue tells it about each envelope on disk; it asks the queue
 * to deliver those that are due, and hears how each attempt ended; it
 * asks the queue to bounce what failed for good or ran out of time, and
 * to warn senders whose mail is late. It holds no mail and writes no
 * file: everything it knows can be rebuilt from the spool at start-up.
 */
import { BounceBatch, RamQueue, RetryLater, schedulerOptions, type Decision, type DueEnvelope, type SchedulerEntry } from '../../scheduler/index.ts';
import { QUEUE_DELIVER_MS, queueDeliveryChannel, schedulerChannel, type Delivered, type ScheduledEntry } from '../channels/delivery.ts';
import { Peer } from '../peer.ts';
import type { Role, RoleContext } from '../role.ts';
import { socketTransport } from '../transport.ts';

/** How many envelopes are handed out at once, at most, per wake-up. */
const BATCH = 200;

const seconds = () => Math.floor(Date.now() / 1000);

export async function startScheduler(ctx: RoleContext): Promise<Role> {
  const { log } = ctx;
  const options = schedulerOptions(ctx.config);
  const ramqueue = new RamQueue(options);
  const socket = ctx.links.get('queue');
  if (!socket) throw new Error('scheduler: no link to the queue');
  let timer: NodeJS.Timeout | undefined;
  let stopping = false;
  /** The daemon is stopping: attempts under way may end, no new one starts. */
  let holding = false;
  /** Bounces the queue could not make, tried again until it can. */
  const retries = new RetryLater((line) => log.warn(line));
  /** Failures of one message's recipients, held a moment to make one bounce (see BounceBatch). */
  const bounces = new BounceBatch((ids, reason) => {
    // Not awaited: a bounce that fails is tried again later, and the next attempts need not wait for it.
    void retries.run(`envelope ${ids[0]}${ids.length > 1 ? ` and ${ids.length - 1} more of its message` : ''} could not be bounced`, () =>
      queue.request({ type: 'queue.bounce', ids, reason }));
  });

  const queue = new Peer({
    self: 'scheduler',
    peer: 'queue',
    transport: socketTransport(socket),
    log,
    calls: queueDeliveryChannel,
    serves: {
      channel: schedulerChannel,
      handlers: {
        'scheduler.envelopes.add': ({ envelopes }) => {
          const now = seconds();
          for (const wire of envelopes) {
            try {
              ramqueue.add(entryFromWire(wire), now);
              log.trace('scheduler', `scheduler: envelope ${wire.id} for ${wire.dispatcher} scheduled`);
            } catch (err) {
              log.warn(`warn: scheduler: envelope ${wire.id} not scheduled: ${(err as Error).message}`);
            }
          }
          pump();
          return { scheduled: ramqueue.size };
        },
      },
    },
  });

  // #region pump
  /**
   * One turn of the scheduler: hand out what is due, send the warnings
   * that are due, and sleep until the next thing is. Called after every
   * event (envelopes added, an attempt ended) and when the timer fires;
   * the ramqueue's in-flight count keeps a busy queue from being asked
   * for more than `scheduler limit max-inflight` at once.
   */
  function pump(): void {
    if (stopping || holding) return;
    clearTimeout(timer);
    const now = seconds();
    for (const envelope of ramqueue.due(now, BATCH)) void attempt(envelope);
    const warnings = ramqueue.warningsDue(now);
    if (warnings.length > 0) void warn(warnings.map((w) => w.id));
    const next = ramqueue.nextWakeup();
    if (next !== undefined) {
      timer = setTimeout(pump, Math.max(0, next - seconds()) * 1000 + 10);
      timer.unref();
    }
  }
  // #endregion pump

  /** One attempt: the queue delivers and writes the outcome; the ramqueue decides what follows. */
  async function attempt(envelope: DueEnvelope): Promise<void> {
    let answer: Delivered;
    try {
      answer = await queue.request({ type: 'queue.deliver', id: envelope.id }, { timeoutMs: QUEUE_DELIVER_MS });
    } catch (err) {
      // The queue failed (a full disk when it records the outcome, say): nothing says the attempt
      // is over for good, so it is tried again, and the administrator hears of it.
      answer = { result: 'tempfail', reason: `the queue did not answer: ${(err as Error).message}` };
      if (!stopping) log.warn(`warn: scheduler: envelope ${envelope.id}: ${answer.reason}; trying again later`);
    }
    if (stopping) return;
    let decision: Decision;
    switch (answer.result) {
      case 'ok':
      case 'gone':
        decision = ramqueue.done(envelope.id);
        break;
      case 'tempfail':
        decision = ramqueue.tempfail(envelope.id, seconds());
        break;
      case 'permfail':
        decision = ramqueue.permfail(envelope.id);
        break;
    }
    await follow(decision);
    pump();
  }

  /** What the ramqueue decided after an attempt, carried out by the queue. */
  async function follow(decision: Decision): Promise<void> {
    switch (decision.do) {
      case 'remove':
        return;
      case 'update':
        log.trace('scheduler', `scheduler: envelope ${decision.id} retried at ${new Date(decision.nextTryAt * 1000).toISOString()}`);
        return;
      case 'bounce':
      case 'discard':
        bounces.add(decision.id, decision.reason);
        return;
      case 'warn':
        return;
    }
  }

  async function warn(ids: string[]): Promise<void> {
    try {
      await queue.request({ type: 'queue.warn', ids });
    } catch (err) {
      log.warn(`warn: scheduler: delay warnings not sent: ${(err as Error).message}`);
    }
  }

  return {
    drain: async () => {
      holding = true;
      clearTimeout(timer);
      return 0;
    },
    stop: async () => {
      stopping = true;
      clearTimeout(timer);
      bounces.stop();
      retries.stop();
      log.debug(`debug: scheduler: ${ramqueue.size} envelope(s) waiting at shutdown`);
      queue.close();
    },
  };
}

function entryFromWire(w: ScheduledEntry): SchedulerEntry {
  return {
    id: w.id, messageId: w.messageId, dispatcher: w.dispatcher, createdAt: w.createdAt, expiresAt: w.expiresAt,
    attempts: w.attempts,
    ...(w.lastTryAt !== undefined && { lastTryAt: w.lastTryAt }),
    warnings: w.warnings ?? 0,
    bounce: w.bounce === 'yes',
    notifyDelay: w.notifyDelay !== 'no',
  };
}
