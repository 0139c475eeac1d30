/**
 * The first part of a bounce: what happened, in words, for the person
 * who sent the message. The delivery-status part says the same for
 * programs; this part is what most people read.
 */
import { messageDate } from '../smtp/received.ts';
import type { BounceRecipient, ReportAction } from './dsn.ts';
import { oneLine } from './status.ts';

/** Text lines are wrapped here, for mail readers that do not wrap. */
const WIDTH = 72;

export interface NoticeInput {
  action: ReportAction;
  reportingHost: string;
  recipients: readonly BounceRecipient[];
  /** Delayed: how long the message has waited, in seconds. */
  delayedFor?: number;
  /** What the third part holds. */
  returned: 'message' | 'headers';
}

/** The notice, as lines without line ends. */
export function noticeLines(n: NoticeInput): string[] {
  const lines: string[] = [`This is the mail system at ${n.reportingHost}.`, ''];
  if (n.action === 'failed') {
    lines.push(
      ...wrap('Your message could not be delivered to the recipients below. The mail system has given up ' +
        'and will not try again; the reason it was given is shown under each address.'),
    );
  } else if (n.action === 'delivered') {
    // RFC 3464 2.3.3: "delivered" says the message reached the mailbox,
    // not that anyone read it; the notice says so, since people expect
    // a confirmation to mean more.
    lines.push(
      ...wrap('Your message was delivered to the recipients below, as you asked to be told. ' +
        'This says that it reached their mailboxes, not that it has been read. You do not need to do anything.'),
    );
  } else {
    const waited = n.delayedFor === undefined ? '' : ` for ${duration(n.delayedFor)}`;
    lines.push(
      ...wrap(`Your message has not been delivered yet to the recipients below: it has been waiting${waited}. ` +
        'This is only a warning. The mail system keeps trying, and you do not need to send the message again.'),
    );
  }
  for (const r of n.recipients) {
    const under: string[] = [];
    if (r.diagnostic !== undefined) under.push(...wrap(oneLine(r.diagnostic), '    '));
    if (n.action === 'delayed' && r.willRetryUntil !== undefined) {
      under.push(...wrap(`(the mail system will keep trying until ${messageDate(new Date(r.willRetryUntil * 1000))})`, '    '));
    }
    lines.push('', `<${r.finalRecipient}>${under.length > 0 ? ':' : ''}`, ...under);
  }
  lines.push(
    '',
    ...wrap(n.returned === 'message'
      ? 'A copy of your message is attached below, after the delivery report.'
      : 'The headers of your message are attached below, after the delivery report.'),
    '',
    ...wrap(`This notice was written automatically. If you need help, write to postmaster@${n.reportingHost}.`),
  );
  return lines;
}

/** `4 hours`, `1 day and 2 hours`, `30 minutes`: the two largest units, which is all a person reads. */
export function duration(seconds: number): string {
  const units: [number, string][] = [[86400, 'day'], [3600, 'hour'], [60, 'minute'], [1, 'second']];
  const parts: string[] = [];
  let rest = Math.max(0, Math.round(seconds));
  for (const [size, name] of units) {
    const count = Math.floor(rest / size);
    rest -= count * size;
    if (count > 0 && parts.length < 2) parts.push(`${count} ${name}${count === 1 ? '' : 's'}`);
    else if (parts.length > 0) break;
  }
  return parts.length === 0 ? '0 seconds' : parts.join(' and ');
}

/** Words into lines of at most WIDTH characters; a longer word gets a line of its own. */
function wrap(text: string, indent = ''): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line !== '' && indent.length + line.length + 1 + word.length > WIDTH) {
      lines.push(indent + line);
      line = '';
    }
    line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(indent + line);
  return lines;
}
