/**
 * Every reply the engine writes, in one place. The codes and texts follow
 * OpenSMTPD 6.8's smtp_session.c: a code, an enhanced status code (RFC
 * 3463), and for errors the class's description before the reason
 * (`503 5.5.1 Invalid command: Command not allowed at this point.`), so
 * that an administrator who knows OpenSMTPD's logs reads the same lines.
 * Where RFC 5321 or an extension's RFC asks for another code, the RFC wins
 * and the comment says what 6.8 answers instead.
 */
import type { Reply } from './hooks.ts';

function reply(code: number, enhanced: string | undefined, ...lines: string[]): Reply {
  return enhanced === undefined ? { code, lines } : { code, enhanced, lines };
}

/**
 * A reply as it goes on the wire: every line but the last has `-` after
 * the code, the last has a space (RFC 5321 4.2.1). A line's text never
 * holds CR or LF: a hook's text that did could otherwise write a second
 * reply the client would take as the answer to its next command.
 */
export function formatReply(r: Reply): string {
  const prefix = r.enhanced === undefined ? '' : `${r.enhanced} `;
  const lines = r.lines.length > 0 ? r.lines : [''];
  let out = '';
  for (let i = 0; i < lines.length; i++) {
    // RFC 5321 4.2's textstring is HT and printable ASCII: a reply that quotes the client (its
    // address, a parameter) must not carry its control or 8-bit bytes back, let alone a line end.
    const text = (lines[i] ?? '').replace(/[\r\n]/g, ' ').replace(/[^\t\x20-\x7e]/g, '?');
    out += `${r.code}${i === lines.length - 1 ? ' ' : '-'}${prefix}${text}\r\n`;
  }
  return out;
}

/** The part of a reply that logs quote: its lines joined, as one text. */
export function replyText(r: Reply): string {
  return formatReply(r).trimEnd().replace(/\r\n/g, ' / ');
}

/** Client text in a log line: printable ASCII, the rest (and `"`, `\`) escaped as OpenSMTPD's strnvis() would. */
export function visible(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) out += text[i];
    else out += c < 0x100 ? `\\x${c.toString(16).padStart(2, '0')}` : text[i];
  }
  return out;
}

export const R = {
  // Greeting, HELO, EHLO
  greeting: (host: string, software: string) => reply(220, undefined, `${host} ESMTP ${software}`),
  hello: (host: string, helo: string, address: string) =>
    reply(250, undefined, `${host} Hello ${helo} [${address}], pleased to meet you`),
  heloRequired: (verb: string) => reply(501, '5.5.1', `Invalid command: ${verb} requires domain name`),
  invalidDomain: reply(501, '5.5.4', 'Invalid command arguments: Invalid domain name'),

  // Commands that need no transaction
  ok: reply(250, '2.0.0', 'Ok'),
  reset: reply(250, '2.0.0', 'Reset state'),
  bye: reply(221, '2.0.0', 'Bye'),
  help: (software: string) => reply(214, '2.0.0', `This is ${software}`, 'End of HELP info'),
  /** 6.8 answers VRFY and EXPN like unknown commands (500); RFC 5321 3.5.3 allows 502 for a disabled one. */
  disabled: (verb: string) => reply(502, '5.5.1', `Invalid command: ${verb} is disabled`),
  unknown: reply(500, '5.5.1', 'Invalid command: Command unrecognized'),
  /** 6.8 answers 500; a parameter where none belongs is a 501 in RFC 5321 4.2.2. */
  noParams: reply(501, '5.5.4', 'Invalid command arguments: command does not accept arguments.'),
  badSequence: reply(503, '5.5.1', 'Invalid command: Command not allowed at this point.'),
  notSupported: reply(503, '5.5.1', 'Invalid command: Command not supported'),

  // STARTTLS and AUTH
  startTls: reply(220, '2.0.0', 'Ready to start TLS'),
  alreadySecure: reply(503, '5.5.1', 'Invalid command: Channel already secured'),
  noTlsParams: reply(501, '5.5.4', 'Invalid command arguments: No parameters allowed'),
  /** RFC 3207 4: no certificate for this listener's name. */
  tlsUnavailable: reply(454, '4.7.0', 'TLS not available due to temporary reason'),
  /** 6.8 answers 530 5.5.1; RFC 3207 and RFC 3463 (x.7.0, security) give 530 5.7.0. */
  tlsRequired: reply(530, '5.7.0', 'Must issue a STARTTLS command first'),
  authRequired: reply(530, '5.7.0', 'Must issue an AUTH command first'),
  alreadyAuthenticated: reply(503, '5.5.1', 'Invalid command: Already authenticated'),
  authNoParams: reply(501, '5.5.4', 'Invalid command arguments: No parameters given'),
  authMechanism: (name: string) =>
    reply(504, '5.7.4', `Security features not supported: AUTH method "${name}" not supported`),
  /** 6.8 does not offer AUTH before TLS and answers 503; RFC 4954 has 538 for exactly this. */
  authNeedsTls: reply(538, '5.7.11', 'Encryption required for requested authentication mechanism'),
  authChallenge: (text: string) => reply(334, undefined, text),
  authSyntax: reply(501, '5.5.2', 'Syntax error: Syntax error'),
  authCancelled: reply(501, '5.7.0', 'Authentication cancelled'),
  authOk: reply(235, '2.0.0', 'Authentication succeeded'),
  authFailed: reply(535, undefined, 'Authentication failed'),
  /** 6.8 answers 421 4.3.0 without closing; RFC 4954 gives 454 4.7.0. */
  authTempFail: reply(454, '4.7.0', 'Temporary authentication failure'),

  // MAIL, RCPT
  senderOk: reply(250, '2.0.0', 'Ok'),
  recipientOk: reply(250, '2.1.5', 'Destination address valid: Recipient ok'),
  /** 6.8 answers 553 5.1.0 without a reason; the brief of this engine is 501 with the reason. */
  senderSyntax: (why: string) => reply(501, '5.1.7', `Sender address syntax error: ${why}`),
  recipientSyntax: (why: string) => reply(501, '5.1.3', `Recipient address syntax error: ${why}`),
  /** RFC 6531 3.6: a non-ASCII address in a transaction that did not ask for SMTPUTF8. */
  needsUtf8: reply(553, '5.6.7', 'Non-ASCII address requires SMTPUTF8'),
  /** 6.8 answers 503; RFC 5321 4.2.3 gives 555 to parameters it does not know. */
  unsupportedParam: (param: string) => reply(555, '5.5.4', `Invalid command arguments: Unsupported option ${param}`),
  badParam: (why: string) => reply(501, '5.5.4', `Invalid command arguments: ${why}`),
  /** RFC 1870 6.1: a declared SIZE over the limit is refused at MAIL (6.8 accepts it and fails at the end). */
  sizeDeclared: reply(552, '5.3.4', 'Message too big for system: Message size exceeds fixed maximum message size'),
  tooManyMessages: reply(452, '4.5.3', 'Too many recipients: Too many messages sent'),
  /** 6.8 answers 451; RFC 5321 4.5.3.1.10 gives 452. */
  tooManyRecipients: reply(452, '4.5.3', 'Too many recipients: Too many recipients'),

  // DATA and the end of the message
  noRecipient: reply(503, '5.5.4', 'Invalid command arguments: No recipient specified'),
  startData: reply(354, undefined, 'Enter mail, end with "." on a line by itself'),
  accepted: (msgid: string) => reply(250, '2.0.0', `${msgid} Message accepted for delivery`),
  /** 6.8 answers 554; RFC 1870 and RFC 5321 give 552 to a message over the size limit. */
  tooBig: reply(552, '5.3.4', 'Message too big for system: Transaction failed, message too big'),
  /** 6.8 answers 500 for this; a refused message is a 554 (RFC 5321 4.2.2), x.4.6 in RFC 3463. */
  loop: reply(554, '5.4.6', 'Routing loop detected: Loop detected'),
  nulInData: reply(554, '5.6.0', 'Other/Undefined media error: Message contains NUL characters'),
  tempError: reply(421, '4.3.0', 'Temporary Error'),
  tempFailure: reply(421, '4.3.0', 'Temporary failure'),
  writeFailure: reply(451, '4.3.0', 'Temporary Error'),
  /** A hook's reply that is not a 4xx or 5xx is replaced by this one, as 6.8 does. */
  hookInvalid: reply(421, undefined, 'Internal server error'),

  // Bad input
  /** 6.8: `500 5.0.0 Command line too long`, then closes; 5.5.2 is RFC 3463's syntax error. */
  lineTooLong: reply(500, '5.5.2', 'Line too long'),
  nulInCommand: reply(500, '5.5.2', 'Syntax error: NUL character in command'),
  notUtf8: reply(500, '5.5.2', 'Syntax error: invalid UTF-8 in command'),
  pipelining: (verb: string) => reply(500, '5.5.1', `Invalid command: Pipelining not allowed after ${verb}`),
  /**
   * RFC 5321 3.1: a server may answer 554 in place of the greeting. 6.8
   * leaves early input unread until it has greeted, then answers it as
   * if it had come after: one command is served, more than one get
   * `500 5.5.1 Invalid command: Pipelining not supported` and the close.
   */
  earlyTalker: reply(554, '5.5.1', 'Invalid command: Talked before the greeting'),
  shuttingDown: (host: string) => reply(421, '4.3.2', `${host} Service shutting down, closing channel`),
  tooManySessions: (host: string) => reply(421, '4.3.2', `${host} Too many sessions, try again later`),
} as const;
