/**
 * A bounce: the delivery status notification (RFC 3464) that tells a
 * sender that their message failed, or is late, for some recipients;
 * or, when they asked for it, that it was delivered.
 *
 *     multipart/report; report-type=delivery-status   (RFC 6522)
 *       1. text/plain                 what happened, in words
 *       2. message/delivery-status    the same, in fields programs read
 *       3. message/rfc822             the message, when it is returned whole
 *          or text/rfc822-headers     or only its header section
 *
 * One bounce covers the recipients of one message that failed (or are
 * late) together: the sender gets one notice, not one per recipient.
 * The bounce is sent from the null sender `<>` (RFC 5321 4.5.5) by
 * whoever queues it; this module only writes its content.
 */
import { randomBytes } from 'node:crypto';
import type { MailAddress } from '../queue/types.ts';
import { messageDate, newMessageId } from '../smtp/received.ts';
import {
  field, isPrintableAscii, mailbox, quotedPrintable, recipientAddress, shapeOf, xtext,
} from './mime.ts';
import { noticeLines } from './notice.ts';
import { diagnosticCode, oneLine, statusOf } from './status.ts';

// #region return-full-max
/**
 * The largest message returned whole: above it, only its header section.
 *
 * The sender already has the message; it comes back so they can tell
 * which one failed, and headers do that. Most mail without attachments
 * fits in 100 KiB, so most senders get back what they wrote. Returning
 * a 30 MB message to say it was not delivered would double the traffic
 * of every failure, and might itself be refused by a server with a
 * smaller limit than ours, and a bounce that cannot be delivered is
 * dropped, never bounced. Postfix returns at most 50,000 bytes and Exim
 * 100K by default, for the same reasons. The cap also bounds memory:
 * a larger message never needs to be read past its headers.
 */
export const RETURN_FULL_MAX = 100 * 1024;
// #endregion return-full-max

/** One recipient the bounce reports on. Times are seconds since the epoch. */
export interface BounceRecipient {
  /** The address delivery was attempted to, `user@domain`. */
  finalRecipient: string;
  /** DSN ORCPT as the envelope keeps it, `addr-type;address` (`rfc822;bob@example.org`). */
  originalRecipient?: string;
  /** An enhanced status `X.Y.Z`; by default taken from the diagnostic (see statusOf). */
  status?: string;
  /** The last error: an SMTP reply (`550 5.1.1 No such user`) or a local delivery's reason. */
  diagnostic?: string;
  /** The remote server that gave the error, if one did. */
  remoteMta?: string;
  lastAttemptAt?: number;
  /** For a delay warning: when the mail system gives up (the envelope's expiry). */
  willRetryUntil?: number;
}

/**
 * The message being reported on: its header section, its size, and the
 * whole of it when it may be returned (see returnsWholeMessage; a caller
 * that does not have it at hand can check first and read only then).
 */
export interface OriginalMessage {
  /** The header section as stored, each field ending in CRLF, without the empty line after it. */
  headers: Buffer;
  /** The whole message's size in octets. */
  size: number;
  full?: Buffer;
}

/**
 * What a report says happened, as RFC 3464 2.3.3 names it in Action:
 * `failed` (a bounce), `delayed` (a delay warning), `delivered` (a
 * success report, sent only on DSN NOTIFY=SUCCESS).
 */
export type ReportAction = 'failed' | 'delayed' | 'delivered';

export interface BounceInput {
  action: ReportAction;
  /** This server's name: Reporting-MTA, and MAILER-DAEMON@ in From:. */
  reportingHost: string;
  /** The original message's sender, to whom the bounce goes. */
  sender: MailAddress;
  /** When the original message arrived: Arrival-Date. */
  arrivalDate: number;
  /** DSN ENVID of the original message, decoded. */
  envid?: string;
  /** DSN RET of the original message. */
  ret?: 'FULL' | 'HDRS';
  recipients: readonly BounceRecipient[];
  original: OriginalMessage;
  /** The bounce's Date:. */
  now: number;
  /** For a delay warning: how long the message has waited, in seconds. */
  delayedFor?: number;
  /** Defaults to a fresh one at reportingHost. */
  messageId?: string;
  /** Defaults to RETURN_FULL_MAX. */
  returnFullMax?: number;
}

// #region returns-whole
/**
 * Whether the bounce returns the whole message rather than its headers.
 * Only a failure does, unless the client asked for headers only (RFC
 * 3461 4.3, RET=HDRS; with no RET the choice is ours, and we return it
 * whole) or the message is over the cap. A delay warning does not: the
 * message is still queued and may yet be delivered. Nor does a success
 * report, even with RET=FULL: the message has arrived, and the sender,
 * who has it, needs only to tell which one it was. We read RET as the
 * client's say over notices of failure and nothing else. OpenSMTPD 6.8
 * returns the whole message in a success report unless RET=HDRS, which
 * sends every confirmed message back to its sender a second time.
 */
export function returnsWholeMessage(input: Pick<BounceInput, 'action' | 'ret' | 'returnFullMax'>, size: number): boolean {
  return input.action === 'failed' && input.ret !== 'HDRS' && size <= (input.returnFullMax ?? RETURN_FULL_MAX);
}
// #endregion returns-whole

/** Cuts a stored message into an OriginalMessage: the header section ends at the first empty line. */
export function splitOriginal(message: Buffer): OriginalMessage {
  let end: number;
  if (message.subarray(0, 2).equals(Buffer.from('\r\n'))) end = 0;
  else {
    const blank = message.indexOf('\r\n\r\n');
    end = blank < 0 ? message.length : blank + 2;
  }
  return { headers: message.subarray(0, end), size: message.length, full: message };
}

/**
 * Reads a stored message for a report, once, holding no more of it than
 * the report can use: the header section always, the whole message only
 * while it is at most `wholeUpTo` octets (pass -1 when the report returns
 * headers only: a delay warning, a success report, RET=HDRS). The size is
 * counted to the end either way. So a 30 MB message costs its header
 * section in memory, not 30 MB, whatever the report.
 */
export async function readOriginal(stream: AsyncIterable<Buffer | string>, wholeUpTo: number): Promise<OriginalMessage> {
  const kept: Buffer[] = [];
  let size = 0;
  let headers: Buffer | undefined;
  for await (const piece of stream) {
    const chunk = typeof piece === 'string' ? Buffer.from(piece) : piece;
    size += chunk.length;
    if (headers === undefined || size <= wholeUpTo) kept.push(chunk);
    if (headers === undefined) {
      const sofar = Buffer.concat(kept);
      const split = splitOriginal(sofar);
      if (split.headers.length < sofar.length || sofar.subarray(0, 2).equals(Buffer.from('\r\n'))) headers = split.headers;
    }
  }
  if (size <= wholeUpTo) return splitOriginal(Buffer.concat(kept, size));
  return { headers: headers ?? Buffer.concat(kept), size };
}

/** The Subject's last word, for the person who sees only the list of their mail. */
const SUBJECT: Record<ReportAction, string> = { failed: 'error', delayed: 'delay', delivered: 'success' };

// #region build-bounce
/** The bounce, ready to be queued as a new message from `<>` to the original sender. */
export function buildBounce(input: BounceInput): Buffer {
  if (input.recipients.length === 0) throw new Error('bounce: no recipients to report on');
  const original = returnedPart(input);
  const boundary = boundaryFor(original.body);
  const notice = textPart(noticeLines({
    action: input.action,
    reportingHost: input.reportingHost,
    recipients: input.recipients,
    ...(input.delayedFor !== undefined && { delayedFor: input.delayedFor }),
    returned: original.returned,
  }));
  const report: Part = {
    headers: ['Content-Description: Delivery report', 'Content-Type: message/delivery-status'],
    body: Buffer.from(deliveryStatus(input), 'ascii'),
  };
  // RFC 2045 6.4: a multipart is not encoded, but must say whether a part holds 8-bit data.
  const eightBit = original.eightBit || notice.eightBit;
  const head = [
    `From: Mail Delivery System <MAILER-DAEMON@${input.reportingHost}>`,
    field('To', mailbox(input.sender.user, input.sender.domain)),
    `Subject: Delivery status notification: ${SUBJECT[input.action]}`,
    `Date: ${messageDate(new Date(input.now * 1000))}`,
    `Message-ID: ${input.messageId ?? newMessageId(input.reportingHost)}`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status;',
    `\tboundary="${boundary}"`,
    `Content-Transfer-Encoding: ${eightBit ? '8bit' : '7bit'}`,
    // RFC 3834 5: an automatic response, so that vacation programs and
    // other responders do not answer it.
    'Auto-Submitted: auto-replied',
    '',
    'This is a MIME-encapsulated delivery status notification.',
    '',
  ].join('\r\n');
  const chunks: Buffer[] = [Buffer.from(head, 'utf8')];
  for (const part of [notice, report, original]) {
    chunks.push(Buffer.from(`--${boundary}\r\n${part.headers.join('\r\n')}\r\n\r\n`, 'ascii'));
    // The CRLF before a boundary belongs to the boundary (RFC 2046 5.1.1):
    // adding one keeps each part's content exactly as it was.
    chunks.push(part.body, Buffer.from('\r\n', 'ascii'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'ascii'));
  return Buffer.concat(chunks);
}
// #endregion build-bounce

interface Part {
  headers: string[];
  body: Buffer;
  eightBit?: boolean;
}

/** The notice in us-ascii when it can be, else UTF-8 in quoted-printable (an SMTPUTF8 address, a long error). */
function textPart(lines: string[]): Part {
  const text = lines.map((l) => `${l}\r\n`).join('');
  if (lines.every((l) => isPrintableAscii(l) && l.length <= 998)) {
    return {
      headers: ['Content-Description: Notification', 'Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: 7bit'],
      body: Buffer.from(text, 'ascii'),
    };
  }
  return {
    headers: ['Content-Description: Notification', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable'],
    body: Buffer.from(quotedPrintable(text), 'ascii'),
  };
}

// #region delivery-status
/**
 * The delivery-status part (RFC 3464 2.2 and 2.3): the fields about the
 * message, then one block per recipient, in the order the RFC's grammar
 * lists them. It is 7-bit: addresses and ids that are not plain ASCII
 * are encoded, error texts have anything else replaced by `?`.
 */
function deliveryStatus(input: BounceInput): string {
  const date = (t: number) => messageDate(new Date(t * 1000));
  const perMessage: string[] = [];
  if (input.envid !== undefined) {
    perMessage.push(field('Original-Envelope-Id', isPrintableAscii(input.envid) ? input.envid : xtext(input.envid)));
  }
  perMessage.push(`Reporting-MTA: dns; ${input.reportingHost}`, `Arrival-Date: ${date(input.arrivalDate)}`);
  const blocks = [perMessage];
  for (const r of input.recipients) {
    const lines: string[] = [];
    if (r.originalRecipient !== undefined) {
      const semi = r.originalRecipient.indexOf(';');
      const [type, address] = semi < 0 ? ['rfc822', r.originalRecipient] : [r.originalRecipient.slice(0, semi), r.originalRecipient.slice(semi + 1)];
      lines.push(field('Original-Recipient', recipientAddress(type.trim() || 'rfc822', address.trim())));
    }
    lines.push(
      field('Final-Recipient', recipientAddress('rfc822', r.finalRecipient)),
      `Action: ${input.action}`,
      `Status: ${statusOf(r.diagnostic, input.action, r.status)}`,
    );
    if (r.remoteMta !== undefined) lines.push(`Remote-MTA: dns; ${ascii(r.remoteMta)}`);
    if (r.diagnostic !== undefined && oneLine(r.diagnostic) !== '') {
      lines.push(field('Diagnostic-Code', ascii(diagnosticCode(r.diagnostic))));
    }
    if (r.lastAttemptAt !== undefined) lines.push(`Last-Attempt-Date: ${date(r.lastAttemptAt)}`);
    if (input.action === 'delayed' && r.willRetryUntil !== undefined) lines.push(`Will-Retry-Until: ${date(r.willRetryUntil)}`);
    blocks.push(lines);
  }
  return blocks.map((b) => b.map((l) => `${l}\r\n`).join('')).join('\r\n');
}
// #endregion delivery-status

/** Error texts come from remote servers: anything but printable ASCII becomes `?`. */
function ascii(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

/**
 * The third part. The whole message goes as message/rfc822, which may
 * only be 7bit or 8bit (RFC 2046 5.2.1), so a message with lines over
 * 998 octets, or a bare CR (which the SMTP engine keeps, as OpenSMTPD
 * does), cannot go whole and goes as headers. The header section goes as
 * text/rfc822-headers (RFC 6522), in base64 in the unlikely case that a
 * header line is itself too long, or has a bare CR, to send as it is.
 */
function returnedPart(input: BounceInput): Part & { returned: 'message' | 'headers'; eightBit: boolean } {
  const { original } = input;
  if (original.full && returnsWholeMessage(input, original.size)) {
    const shape = shapeOf(original.full);
    if (!shape.longLines && !shape.bareCr) {
      return {
        returned: 'message',
        headers: ['Content-Description: Undelivered message', 'Content-Type: message/rfc822',
          `Content-Transfer-Encoding: ${shape.eightBit ? '8bit' : '7bit'}`],
        body: original.full,
        eightBit: shape.eightBit,
      };
    }
  }
  const shape = shapeOf(original.headers);
  const description = `Content-Description: ${DESCRIBED[input.action]} message headers`;
  if (shape.longLines || shape.bareCr) {
    return {
      returned: 'headers',
      headers: [description, 'Content-Type: text/rfc822-headers', 'Content-Transfer-Encoding: base64'],
      body: Buffer.from(original.headers.toString('base64').replace(/.{1,76}/g, '$&\r\n').replace(/\r\n$/, ''), 'ascii'),
      eightBit: false,
    };
  }
  return {
    returned: 'headers',
    headers: [description, 'Content-Type: text/rfc822-headers', `Content-Transfer-Encoding: ${shape.eightBit ? '8bit' : '7bit'}`],
    body: original.headers,
    eightBit: shape.eightBit,
  };
}

const DESCRIBED: Record<ReportAction, string> = { failed: 'Undelivered', delayed: 'Delayed', delivered: 'Delivered' };

/**
 * A boundary that does not occur in the returned content. 96 random bits
 * make a clash all but impossible; checking costs one search, and makes
 * it impossible. `=_` cannot occur in quoted-printable text either.
 */
function boundaryFor(content: Buffer): string {
  for (;;) {
    const boundary = `=_bounce_${randomBytes(12).toString('hex')}`;
    if (content.indexOf(`--${boundary}`) < 0) return boundary;
  }
}
