/**
 * The queue's side of delivery: what the scheduler asks of it. The queue
 * is the only process that reads the spool, so it loads each envelope
 * and its message, sends both to the dispatcher, and writes the outcome
 * to disk (delete, or count the attempt) before answering. Bounces,
 * delay warnings and success reports are new messages, from `<>` to the
 * original sender, which the queue writes and commits like any other
 * and hands to the scheduler; where they go is asked of lookup, like any
 * recipient.
 */
import type { Config } from '../config/index.ts';
import {
  buildBounce, EXPIRED_STATUS, readOriginal, RETURN_FULL_MAX, returnsWholeMessage, shouldBounce, shouldReportSuccess, shouldWarn, whyNoNotice,
  type BounceRecipient, type ReportAction,
} from '../bounce/index.ts';
import type { Logger } from '../log/index.ts';
import { systemLocalNames } from '../lookup/index.ts';
import type { QueueBackend } from '../queue/backend.ts';
import { formatEnvelopeId, parseEnvelopeId } from '../queue/index.ts';
import type { Envelope } from '../queue/types.ts';
import { entryOf, schedulerOptions, warnIntervalsOf } from '../scheduler/index.ts';
import { DISPATCH_MS, dispatcherChannel, type Delivered, type ScheduledEntry, type WireOutcome } from './channels/delivery.ts';
import type { lookupChannel } from './channels/lookup.ts';
import { toWire, type EnvelopeDraft } from './channels/queue.ts';
import { sendContent } from './content-stream.ts';
import { EnvelopeTurns } from './envelope-turns.ts';
import { Peer } from './peer.ts';
import type { Transport } from './transport.ts';

const seconds = () => Math.floor(Date.now() / 1000);

export interface QueueDeliveryOptions {
  config: Config;
  backend: QueueBackend;
  log: Logger;
  dispatcher: Transport;
  lookup: Peer<Record<never, never>, typeof lookupChannel['calls']>;
  /** Hands envelopes to the scheduler (those of a new bounce). */
  schedule: (envelopes: Envelope[]) => void;
}

/** The scheduler's entry for an envelope, with the action's ttl applied. */
export function scheduledEntryOf(config: Config): (e: Envelope) => ScheduledEntry {
  const { ttlOf } = schedulerOptions(config);
  return (e) => {
    const entry = entryOf(e, ttlOf);
    return {
      id: entry.id, messageId: entry.messageId, dispatcher: entry.dispatcher, createdAt: entry.createdAt,
      expiresAt: entry.expiresAt, attempts: entry.attempts,
      ...(entry.lastTryAt !== undefined && { lastTryAt: entry.lastTryAt }),
      ...(entry.warnings !== undefined && { warnings: entry.warnings }),
      ...(entry.bounce && { bounce: 'yes' as const }),
      ...(entry.notifyDelay === false && { notifyDelay: 'no' as const }),
    };
  };
}

export class QueueDelivery {
  private readonly dispatcher: Peer<Record<never, never>, typeof dispatcherChannel['calls']>;
  private nextRef = 1;
  private readonly hostname = systemLocalNames().hostname;
  private readonly ttlOf;
  private readonly warnIntervals: readonly number[];
  /** Deliveries, bounces and warnings of one envelope take turns (see EnvelopeTurns). */
  private readonly turns = new EnvelopeTurns();

  constructor(private readonly options: QueueDeliveryOptions) {
    this.dispatcher = new Peer({
      self: 'queue', peer: 'dispatcher', transport: options.dispatcher, calls: dispatcherChannel, log: options.log,
    });
    const scheduling = schedulerOptions(options.config);
    this.ttlOf = scheduling.ttlOf;
    this.warnIntervals = warnIntervalsOf(scheduling.warnIntervals);
  }

  close(): void {
    this.dispatcher.close();
  }

  // #region deliver
  /**
   * One attempt, once any other operation on the envelope has ended
   * (EnvelopeTurns). The envelope is loaded again (the scheduler holds only
   * its id; the backend checks its file on disk, and reads it only if it
   * changed since it was written): if it is gone, say so. The message
   * goes to the dispatcher as chunks after the request; the outcome is
   * written before the answer: delivered envelopes are deleted, and a
   * temporary failure counts the attempt, so that a restarted daemon
   * resumes the same schedule. A permanent failure is recorded and left
   * for the scheduler, which asks for the bounce. A delivered envelope
   * whose client asked for NOTIFY=SUCCESS has its report queued first,
   * so that a crash in between repeats the report rather than loses it.
   */
  deliver(hexId: string): Promise<Delivered> {
    return this.turns.run([hexId], () => this.deliverNow(hexId));
  }

  private async deliverNow(hexId: string): Promise<Delivered> {
    const { backend } = this.options;
    const id = parseEnvelopeId(hexId);
    const envelope = id === undefined ? undefined : await backend.loadEnvelope(id);
    if (!envelope) return { result: 'gone' };
    let outcome: WireOutcome;
    try {
      const content = await backend.openMessage(envelope.messageId);
      const ref = this.nextRef++;
      const answer = this.dispatcher.request(
        { type: 'dispatcher.deliver', ref, envelope: toWire(envelope) }, { timeoutMs: DISPATCH_MS },
      );
      await sendContent(this.dispatcher.transport, ref, content, answer);
      outcome = await answer;
    } catch (err) {
      outcome = { result: 'tempfail', reason: `dispatcher: ${(err as Error).message}` };
    }
    if (outcome.result === 'ok') {
      if (shouldReportSuccess(envelope)) await this.reportSuccess(envelope);
      await backend.deleteEnvelope(envelope.id);
      return { result: 'ok' };
    }
    const reason = outcome.reason ?? 'unknown error';
    const attempts = envelope.attempts + 1;
    await backend.updateEnvelope({ ...envelope, attempts, lastTryAt: seconds(), lastError: reason.slice(0, 1000) });
    return { result: outcome.result, reason, attempts };
  }
  // #endregion deliver

  /**
   * The success report NOTIFY=SUCCESS asked for (Action: delivered). The
   * message is delivered whatever becomes of its report, so a report
   * that cannot be written (a full disk, lookup gone) is logged and
   * given up, and the delivery still counts. Only local delivery ends in
   * `ok` today; a relayed message's success is the next server's to
   * report when it speaks DSN, which is why OpenSMTPD 6.8 sends one for
   * relayed mail only when it does not (Action: relayed).
   */
  private async reportSuccess(envelope: Envelope): Promise<void> {
    try {
      await this.notify([envelope], 'delivered', () => ({ lastAttemptAt: seconds() }));
    } catch (err) {
      this.options.log.warn(`warn: queue: envelope ${formatEnvelopeId(envelope.id)}: delivered, but its success report was not queued: ${(err as Error).message}`);
    }
  }

  /**
   * Bounces envelopes that failed for good or ran out of time: one report
   * per message, naming every recipient of it that failed, then deletes
   * them. A bounce is never bounced (its sender is `<>`), nor sent when
   * the client's DSN asked for none; those envelopes are only deleted,
   * with a log line saying why.
   */
  bounce(hexIds: string[], reason: 'permfail' | 'expired'): Promise<number> {
    return this.turns.run(hexIds, () => this.bounceNow(hexIds, reason));
  }

  private async bounceNow(hexIds: string[], reason: 'permfail' | 'expired'): Promise<number> {
    const envelopes = await this.load(hexIds);
    let removed = 0;
    for (const group of byMessage(envelopes)) {
      const reported = group.filter((e) => shouldBounce(e));
      for (const e of group) {
        if (!reported.includes(e)) this.options.log.info(`info: queue: envelope ${formatEnvelopeId(e.id)}: no bounce: ${whyNoNotice(e, 'failure') ?? 'not wanted'}`);
      }
      if (reported.length > 0) {
        await this.notify(reported, 'failed', (e) => ({
          ...(reason === 'expired' && { status: EXPIRED_STATUS }),
          diagnostic: reason === 'expired'
            ? `delivery time expired${e.lastError ? `; last error: ${e.lastError}` : ''}`
            : e.lastError ?? 'delivery failed',
        }));
      }
      for (const e of group) {
        await this.options.backend.deleteEnvelope(e.id);
        removed++;
      }
    }
    return removed;
  }

  /**
   * Delay warnings: one per message, naming its late recipients. Each
   * envelope's count of warnings becomes the number of intervals gone by,
   * as the scheduler counts them: one warning sent after a daemon slept
   * through two intervals covers both, and the count on disk must say so,
   * or the next start-up, finding one interval not yet warned of, warns
   * again.
   */
  warn(hexIds: string[]): Promise<number> {
    return this.turns.run(hexIds, () => this.warnNow(hexIds));
  }

  private async warnNow(hexIds: string[]): Promise<number> {
    const envelopes = await this.load(hexIds);
    const now = seconds();
    const counted = (e: Envelope) =>
      Math.max((e.warnings ?? 0) + 1, this.warnIntervals.filter((d) => e.createdAt + d <= now).length);
    let warned = 0;
    for (const group of byMessage(envelopes)) {
      const late = group.filter((e) => shouldWarn(e));
      if (late.length > 0) {
        await this.notify(late, 'delayed', (e) => ({
          diagnostic: e.lastError ?? 'not delivered yet',
          willRetryUntil: e.createdAt + this.ttlOf(e.dispatcher),
        }));
        warned += late.length;
      }
      for (const e of group) await this.options.backend.updateEnvelope({ ...e, warnings: counted(e) });
    }
    return warned;
  }

  private async load(hexIds: string[]): Promise<Envelope[]> {
    const out: Envelope[] = [];
    for (const hex of hexIds) {
      const id = parseEnvelopeId(hex);
      const e = id === undefined ? undefined : await this.options.backend.loadEnvelope(id);
      if (e) out.push(e);
    }
    return out;
  }

  /**
   * Writes one report about `envelopes` (all of one message, all with a
   * sender) and queues it: a bounce, a delay warning or a success
   * report. Where it goes is asked of lookup, as for a RCPT TO from this
   * host with the null sender; if no rule takes the sender, the report
   * is dropped with a log line: there is no one else to tell. If lookup
   * answers "not now" (a 4xx: a ~/.forward it refuses for the moment, a
   * table that cannot answer), a bounce is not dropped: this throws, the
   * failed envelopes stay in the queue, and the scheduler asks again
   * later. Dropping it would leave a message that got its 250 neither
   * delivered nor reported.
   */
  private async notify(
    envelopes: Envelope[], action: ReportAction, details: (e: Envelope) => Partial<BounceRecipient>,
  ): Promise<void> {
    const { backend, log, lookup } = this.options;
    const first = envelopes[0]!;
    const sender = first.sender!;
    const senderText = `${sender.user}@${sender.domain}`;
    const ret = first.dsn?.ret;
    const wholeUpTo = returnsWholeMessage({ action, ...(ret !== undefined && { ret }) }, 0) ? RETURN_FULL_MAX : -1;
    const original = await readOriginal(await backend.openMessage(first.messageId) as AsyncIterable<Buffer | string>, wholeUpTo);
    const now = seconds();
    const bytes = buildBounce({
      action,
      reportingHost: this.hostname,
      sender,
      arrivalDate: first.createdAt,
      ...(first.dsn?.envid !== undefined && { envid: first.dsn.envid }),
      ...(first.dsn?.ret !== undefined && { ret: first.dsn.ret }),
      ...(action === 'delayed' && { delayedFor: now - first.createdAt }),
      recipients: envelopes.map((e) => ({
        finalRecipient: `${e.recipient.user}@${e.recipient.domain}`,
        ...(e.dsn?.orcpt !== undefined && { originalRecipient: e.dsn.orcpt }),
        ...(e.lastTryAt !== undefined && { lastAttemptAt: e.lastTryAt }),
        ...details(e),
      })),
      original,
      now,
    });
    const answer = await lookup.request({
      type: 'lookup.rcpt',
      session: { local: true, helo: this.hostname, tls: false },
      envelope: { mailFrom: '', rcptTo: senderText },
    });
    if (answer.verdict === 'tempfail' && action === 'failed') {
      throw new Error(`the sender <${senderText}> cannot take it for now: ${answer.reply ?? 'no reason given'}`);
    }
    if (answer.verdict !== 'accept' || !answer.expanded || answer.expanded.length === 0) {
      log.warn(`warn: queue: ${REPORT_NAME[action]} to <${senderText}> dropped: ${answer.reply ?? 'no rule takes it'}`);
      return;
    }
    const message = await backend.createMessage();
    await message.write(bytes);
    const drafts: EnvelopeDraft[] = answer.expanded.map((t) => ({
      sender: null,
      recipient: t.recipient,
      originalRecipient: sender,
      dispatcher: t.dispatcher,
      ...(t.delivery && { delivery: t.delivery }),
      origin: { clientAddress: 'local', helo: this.hostname },
      createdAt: now,
      expiresAt: now + this.ttlOf(t.dispatcher),
      attempts: 0,
    }));
    const committed = await message.commit(drafts);
    const msgid = committed[0]?.messageId.toString(16).padStart(8, '0');
    log.info(`info: queue: ${REPORT_NAME[action]} msgid=${msgid} to <${senderText}> for ${envelopes.length} recipient(s) of msgid=${first.messageId.toString(16).padStart(8, '0')}`);
    this.options.schedule(committed);
  }
}

/** What the log calls each kind of report. */
const REPORT_NAME: Record<ReportAction, string> = { failed: 'bounce', delayed: 'delay warning', delivered: 'success report' };

function byMessage(envelopes: Envelope[]): Envelope[][] {
  const groups = new Map<number, Envelope[]>();
  for (const e of envelopes) {
    const group = groups.get(e.messageId) ?? [];
    group.push(e);
    groups.set(e.messageId, group);
  }
  return [...groups.values()];
}
