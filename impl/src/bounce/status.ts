/**
 * The machine-readable verdict of a delivery that failed, is late or
 * worked: an enhanced status code (RFC 3463, `class.subject.detail`) and
 * the error text it came from, as the delivery-status part of a report
 * gives them.
 */
import type { ReportAction } from './dsn.ts';

/** RFC 3463 4.4.7, "delivery time expired": what an envelope that outlived its ttl reports. */
export const EXPIRED_STATUS = '4.4.7';

/** An SMTP reply: three digits, then a space, a hyphen (multi-line) or the end. */
const REPLY = /^([2-5])\d\d(?:[ -]|$)/;
/** A reply with an enhanced code after its basic code (RFC 2034): `550 5.1.1 ...`. */
const ENHANCED = /^([2-5])\d\d[ -]([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])/;

/**
 * The Status of one recipient: the one given, else the enhanced code of
 * the error reply, else the class of its basic code with no detail
 * (`4.0.0`, `5.0.0`), else what the action implies: a failure is
 * permanent (`5.0.0`), a delay transient (`4.0.0`). An enhanced code
 * whose class does not match the reply's first digit is not trusted
 * (RFC 3463 section 2 requires them to agree). A delivery is `2.0.0`,
 * "success" with nothing more to say, unless a success code is given:
 * an error text has no place in it.
 */
export function statusOf(diagnostic: string | undefined, action: ReportAction, given?: string): string {
  if (action === 'delivered') return given !== undefined && /^2\.\d{1,3}\.\d{1,3}$/.test(given) ? given : '2.0.0';
  if (given !== undefined && /^[245]\.\d{1,3}\.\d{1,3}$/.test(given)) return given;
  const text = diagnostic === undefined ? '' : oneLine(diagnostic);
  const enhanced = ENHANCED.exec(text);
  if (enhanced && enhanced[1] === enhanced[2]) return `${enhanced[2]}.${enhanced[3]}.${enhanced[4]}`;
  const reply = REPLY.exec(text);
  if (reply && (reply[1] === '4' || reply[1] === '5')) return `${reply[1]}.0.0`;
  return action === 'failed' ? '5.0.0' : '4.0.0';
}

/**
 * The Diagnostic-Code field's value (RFC 3464 2.3.6): `smtp; ` and the
 * reply when the error is an SMTP reply; otherwise the error came from
 * a delivery on this host (an MDA's exit, a full disk), which is not an
 * SMTP reply, and is labelled `X-Unix;` as sendmail labels such errors.
 */
export function diagnosticCode(diagnostic: string): string {
  const text = oneLine(diagnostic);
  return `${REPLY.test(text) ? 'smtp' : 'X-Unix'}; ${text}`;
}

/**
 * An error on one line: a multi-line SMTP reply or a message with line
 * breaks has them replaced by spaces, and control characters dropped.
 */
export function oneLine(text: string): string {
  return text.replace(/\r?\n|\r/g, ' ').replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '').trim();
}
