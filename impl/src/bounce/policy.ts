/**
 * Whether the sender of an envelope is told about it: a bounce when it
 * failed, a warning when it is late, a success report when it was
 * delivered and they asked for one. The answer depends only on the
 * envelope (its sender and what the client asked for with DSN), so the
 * rules live here, in one place, for the scheduler and the queue alike.
 */
import type { DsnRequest, Envelope } from '../queue/types.ts';

/** A failure notice (bounce) or a delay warning. */
export type NoticeKind = 'failure' | 'delay';

// #region no-notice
/**
 * Why the sender of `envelope` must not get a notice of this kind, or
 * undefined when they should get it. The reason is for the log line
 * that replaces the notice.
 */
export function whyNoNotice(envelope: Pick<Envelope, 'sender' | 'dsn'>, kind: NoticeKind): string | undefined {
  // RFC 5321 section 4.5.5: notifications are sent with the null reverse
  // path <>, and a message with the null reverse path is itself a
  // notification. There is nobody to send a notice to, and answering a
  // notice with a notice is how two servers bounce mail at each other
  // forever: bounces of bounces are never generated.
  if (envelope.sender === null) return 'the sender is <>: bounces of bounces are never generated';
  if (!dsnAllows(envelope.dsn, kind)) {
    return `DSN NOTIFY=${envelope.dsn?.notify?.join(',')} asks for no ${kind === 'failure' ? 'failure' : 'delay'} notice`;
  }
  return undefined;
}
// #endregion no-notice

/** True when a failed envelope's sender gets a bounce. */
export function shouldBounce(envelope: Pick<Envelope, 'sender' | 'dsn'>): boolean {
  return whyNoNotice(envelope, 'failure') === undefined;
}

/** True when a delayed envelope's sender may get delay warnings (`bounce warn-interval`). */
export function shouldWarn(envelope: Pick<Envelope, 'sender' | 'dsn'>): boolean {
  return whyNoNotice(envelope, 'delay') === undefined;
}

// #region dsn-notify
/**
 * RFC 3461 section 4.1, the NOTIFY parameter of RCPT TO: NEVER asks for
 * no notice at all; otherwise the client lists the events it wants to
 * hear about (SUCCESS, FAILURE, DELAY), and an event it did not list gets
 * no notice. Without NOTIFY the choice is the MTA's, and the RFC suggests
 * FAILURE or FAILURE,DELAY: we send both, as OpenSMTPD does.
 */
export function dsnAllows(dsn: DsnRequest | undefined, kind: NoticeKind): boolean {
  const notify = dsn?.notify;
  if (notify === undefined || notify.length === 0) return true;
  return notify.includes(kind === 'failure' ? 'FAILURE' : 'DELAY');
}
// #endregion dsn-notify

// #region report-success
/**
 * True when a delivered envelope's sender gets a success report. Only on
 * request: a client that wants one says NOTIFY=SUCCESS (RFC 3461 4.1),
 * and without NOTIFY the server's choice is among failure and delay
 * notices, so mail delivered as usual brings its sender nothing. A
 * message from `<>` never gets one, whatever it asked: it is itself a
 * notice, and a report about a report is how loops start (see
 * whyNoNotice).
 */
export function shouldReportSuccess(envelope: Pick<Envelope, 'sender' | 'dsn'>): boolean {
  return envelope.sender !== null && (envelope.dsn?.notify?.includes('SUCCESS') ?? false);
}
// #endregion report-success
