/**
 * The lines the engine writes into a message of its own: the Received:
 * field at the top of every message, and Date: and Message-ID: for a
 * message submitted without them.
 */
import { randomBytes } from 'node:crypto';
import type { MailAddress } from '../queue/types.ts';

/** What the Received: field says about the session and the transaction. */
export interface ReceivedInfo {
  /** The name the client gave in HELO or EHLO. */
  helo: string;
  /** The client's name from reverse DNS, or `<unknown>`. */
  clientName: string;
  clientAddress: string;
  /** `mask-src` on the listener: say nothing about where the message came from. */
  maskSource: boolean;
  /** This server's name, and its software's. */
  host: string;
  software: string;
  esmtp: boolean;
  /** The transaction used SMTPUTF8. */
  utf8: boolean;
  tls?: { protocol: string; cipher: string; bits: number };
  /** `received-auth` on the listener: say whether, and as whom, the client authenticated. */
  receivedAuth: boolean;
  authUser?: string;
  msgid: string;
  /** The recipient, named only when there is exactly one (so that a Bcc stays blind). */
  recipient?: MailAddress;
  date: string;
}

// #region received-header
/**
 * The Received: field, in OpenSMTPD's layout (smtp_message_begin()):
 *
 *     Received: from client.example (host.example [192.0.2.7])
 *             by mx.example.org (software) with ESMTPS id 1a2b3c4d (TLSv1.3:TLS_AES_256_GCM_SHA384:256:NO)
 *             for <joe@example.org>;
 *             Wed, 25 Nov 2026 04:07:46 +0000 (UTC)
 *
 * The protocol is one of the registered "with" types (RFC 3848): SMTP or
 * ESMTP, then S for TLS and A for an authenticated client; a transaction
 * that used SMTPUTF8 is UTF8SMTP (RFC 6531 3.7.3), which 6.8 did not know.
 * `NO` says the client showed no certificate: the engine does not ask for
 * one. The name the client gave and its user name are its own words, so
 * they are printed only through `printable()`.
 */
export function receivedHeader(r: ReceivedInfo): string {
  let out = 'Received:';
  if (!r.maskSource) out += ` from ${printable(r.helo)} (${printable(r.clientName)} [${r.clientAddress}])\r\n\t`;
  else out += ' ';
  const protocol = (r.utf8 ? 'UTF8SMTP' : r.esmtp ? 'ESMTP' : 'SMTP') + (r.tls ? 'S' : '') + (r.authUser ? 'A' : '');
  out += `by ${r.host} (${r.software}) with ${protocol} id ${r.msgid}`;
  if (r.tls) {
    out += ` (${r.tls.protocol}:${r.tls.cipher}:${r.tls.bits}:NO)`;
    if (r.receivedAuth) out += r.authUser ? ` auth=yes user=${printable(r.authUser)}` : ' auth=no';
  }
  if (r.recipient) out += `\r\n\tfor <${r.recipient.user}@${r.recipient.domain}>`;
  return `${out};\r\n\t${r.date}\r\n`;
}
// #endregion received-header

/** Text from the client, with anything but printable ASCII (and `(`, `)`, which would end the comment) as `?`. */
export function printable(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    out += c > 0x20 && c < 0x7f && c !== 0x28 && c !== 0x29 ? text[i] : '?';
  }
  return out;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const zoneName = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' });
let cachedSecond = -1;
let cachedText = '';

/**
 * A date as RFC 5322 3.3 writes it, in local time, with the zone's name
 * as a comment, as OpenSMTPD's time_to_text() prints it:
 * `Wed, 25 Nov 2026 04:07:46 +0000 (UTC)`. Every message of a busy second
 * has the same date, so the text is made once per second.
 */
export function messageDate(when: Date): string {
  const second = Math.floor(when.getTime() / 1000);
  if (second === cachedSecond) return cachedText;
  const offset = -when.getTimezoneOffset();
  const abs = Math.abs(offset);
  const zone = zoneName.formatToParts(when).find((p) => p.type === 'timeZoneName')?.value ?? 'UTC';
  cachedText = `${DAYS[when.getDay()]}, ${when.getDate()} ${MONTHS[when.getMonth()]} ${when.getFullYear()} ` +
    `${two(when.getHours())}:${two(when.getMinutes())}:${two(when.getSeconds())} ` +
    `${offset >= 0 ? '+' : '-'}${two(Math.floor(abs / 60))}${two(abs % 60)} (${zone})`;
  cachedSecond = second;
  return cachedText;
}

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** A Message-ID as OpenSMTPD makes one: 64 random bits in hex, at the server's name. */
export function newMessageId(host: string): string {
  return `<${randomBytes(8).toString('hex')}@${host}>`;
}
