/**
 * A mail transaction (RFC 5321 3.3): MAIL FROM names the sender, each
 * RCPT TO a recipient, DATA the message; the final dot hands all of it to
 * the queue, and `250` promises delivery.
 */
import type { IncomingMessage } from '../queue/backend.ts';
import { DSN_LIMITS, isText } from '../queue/envelope-format.ts';
import type { DsnRequest, Envelope, MailAddress, Origin } from '../queue/types.ts';
import type { ExpandedTarget, Reply } from './hooks.ts';
import { addressText, decodeXtext, parsePath, parseParams, type PathResult } from './address.ts';
import { DataLineFilter } from './data-lines.ts';
import { DotReader } from './dot-reader.ts';
import { asciiUpper } from './input.ts';
import { MessageWriter, type MessageError } from './message-writer.ts';
import { messageDate, newMessageId, receivedHeader } from './received.ts';
import { R } from './replies.ts';
import type { Session } from './session.ts';

export interface Recipient {
  /** Where the message goes, after the hooks (a rewrite may have changed it). */
  address: MailAddress;
  /** As the client wrote it. */
  original: MailAddress;
  /** The smtpd.conf action that delivers it. */
  dispatcher: string;
  /** What the recipient expanded to (aliases, virtual, ~/.forward): one envelope each instead of one for `address`. */
  expanded?: ExpandedTarget[];
  notify?: DsnRequest['notify'];
  orcpt?: string;
}

export interface Transaction {
  sender: MailAddress | null;
  /** MAIL FROM had SMTPUTF8: addresses and headers may be UTF-8. */
  utf8: boolean;
  ret?: DsnRequest['ret'];
  envid?: string;
  recipients: Recipient[];
  /** From DATA on: the message in the queue, and the readers of the client's content. */
  writer?: MessageWriter;
  message?: IncomingMessage;
  dot?: DotReader;
  lines?: DataLineFilter;
  /** The queue is committing it: a client that leaves now must not make the engine abort it. */
  committing?: boolean;
}


/** The path after `FROM:` or `TO:`, read with UTF-8 allowed; whether it may keep UTF-8 is decided once the parameters are known. */
function readPath(args: string, keyword: string, nullAllowed: boolean, s: Session): PathResult | undefined {
  if (asciiUpper(args.slice(0, keyword.length)) !== keyword) return undefined;
  return parsePath(args.slice(keyword.length).trimStart(), { nullAllowed, utf8: true, localDomain: s.hostname });
}

function nonAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return true;
  return false;
}

/**
 * MAIL FROM. The checks come in OpenSMTPD's order: a HELO first and no
 * transaction open, then what the listener requires (TLS, AUTH), then
 * the session limit, then the address and its parameters, then the hooks.
 */
export async function mailFrom(s: Session, args: string): Promise<void> {
  if (s.state.helo === undefined || s.tx) return s.reply(R.badSequence);
  if (s.listener.tls === 'tls-require' && !s.state.tls) return s.reply(R.tlsRequired);
  if (s.listener.auth === 'required' && !s.state.authUser) return s.reply(R.authRequired);
  if (s.mailCount >= s.ctx.limits.maxMessages) return s.reply(R.tooManyMessages);
  const path = readPath(args, 'FROM:', true, s);
  if (!path) return s.reply(R.badParam('expected MAIL FROM:<address>'));
  if (!path.ok) return s.reply(path.needsUtf8 ? R.needsUtf8 : R.senderSyntax(path.reason));
  const tx: Transaction = { sender: path.address, utf8: false, recipients: [] };
  const refusal = mailParams(s, tx, path.rest);
  if (refusal) return s.reply(refusal);
  if (!tx.utf8 && nonAscii(addressText(tx.sender))) return s.reply(R.needsUtf8);
  const gate = await s.gate('mail-from', addressText(tx.sender));
  if (!gate) return;
  if (gate.param !== addressText(tx.sender)) {
    const again = parsePath(`<${gate.param}>`, { nullAllowed: true, utf8: tx.utf8, localDomain: s.hostname });
    if (!again.ok) return s.reply(R.senderSyntax(again.reason));
    tx.sender = again.address;
  }
  s.tx = tx;
  s.state.sender = addressText(tx.sender);
  s.reply(R.senderOk);
}

/**
 * The parameters of MAIL FROM. SIZE is checked against the limit now
 * (RFC 1870 6.1), where 6.8 ignores it and lets the client send the whole
 * message before refusing it.
 */
function mailParams(s: Session, tx: Transaction, rest: string): Reply | undefined {
  const params = parseParams(rest);
  if (typeof params === 'string') return R.badParam(params);
  const dsn = s.listener.dsn !== false;
  for (const { key, value, text } of params) {
    if (key === 'SIZE' && value !== undefined) {
      if (!/^\d{1,20}$/.test(value)) return R.badParam(`invalid ${text}`);
      if (Number(value) > s.ctx.limits.maxMessageSize) return R.sizeDeclared;
    } else if (key === 'BODY' && value !== undefined && ['7BIT', '8BITMIME'].includes(asciiUpper(value))) {
      // 8BITMIME (RFC 6152): the content is stored as it comes either way.
    } else if (key === 'SMTPUTF8' && value === undefined) {
      tx.utf8 = true;
    } else if (key === 'AUTH' && value !== undefined) {
      // RFC 4954 5: the identity a relaying client vouches for; OpenSMTPD ignores it too.
    } else if (dsn && key === 'RET' && value !== undefined && ['FULL', 'HDRS'].includes(asciiUpper(value))) {
      tx.ret = asciiUpper(value) as 'FULL' | 'HDRS';
    } else if (dsn && key === 'ENVID' && value !== undefined) {
      const envid = decodeXtext(value);
      // xtext can carry control characters (`+0A` is a line feed); the envelope may not hold them.
      if (envid === undefined || !isText(envid, DSN_LIMITS.envid)) return R.badParam(`invalid ${text}`);
      tx.envid = envid;
    } else {
      return refusedParam(key, value, text, dsn ? ['SIZE', 'BODY', 'SMTPUTF8', 'AUTH', 'RET', 'ENVID'] : ['SIZE', 'BODY', 'SMTPUTF8', 'AUTH']);
    }
  }
  return undefined;
}

/**
 * A parameter that was not taken. A keyword the engine knows, with a
 * value it cannot be given (`RET=junk`, `SIZE` without a number), is a
 * syntax error, 501 (RFC 5321 4.2.2), as `SIZE=abc` and `NOTIFY=junk`
 * are. An unknown keyword, or `BODY=BINARYMIME` of CHUNKING (RFC 3030),
 * which is not offered, is a parameter not implemented: 555 (RFC 5321
 * 4.2.3). 6.8 answers 503 to both, and 250 to `RET=junk`.
 */
function refusedParam(key: string, value: string | undefined, text: string, known: readonly string[]): Reply {
  const binary = key === 'BODY' && value !== undefined && asciiUpper(value) === 'BINARYMIME';
  return known.includes(key) && !binary ? R.badParam(`invalid ${text}`) : R.unsupportedParam(text);
}

/**
 * RCPT TO. The engine checks only the protocol: the address, the
 * recipient limit, the DSN parameters. Whether this recipient is welcome,
 * and which action delivers it, is the rcpt-to hooks' business (the
 * rules); without one that names an action, the recipient is accepted for
 * the default action.
 */
export async function rcptTo(s: Session, args: string): Promise<void> {
  const tx = s.tx;
  if (!tx) return s.reply(R.badSequence);
  if (tx.recipients.length >= s.ctx.limits.maxRecipients) return s.reply(R.tooManyRecipients);
  const path = readPath(args, 'TO:', false, s);
  if (!path) return s.reply(R.badParam('expected RCPT TO:<address>'));
  if (!path.ok) return s.reply(path.needsUtf8 ? R.needsUtf8 : R.recipientSyntax(path.reason));
  const original = path.address!;
  if (!tx.utf8 && nonAscii(addressText(original))) return s.reply(R.needsUtf8);
  const recipient: Recipient = { address: original, original, dispatcher: s.ctx.defaultDispatcher };
  const refusal = rcptParams(s, recipient, path.rest);
  if (refusal) return s.reply(refusal);
  const gate = await s.gate('rcpt-to', addressText(original));
  if (!gate || s.tx !== tx) return;
  if (gate.param !== addressText(original)) {
    const again = parsePath(`<${gate.param}>`, { nullAllowed: false, utf8: tx.utf8, localDomain: s.hostname });
    if (!again.ok) return s.reply(R.recipientSyntax(again.reason));
    recipient.address = again.address!;
  }
  if (gate.dispatcher !== undefined) recipient.dispatcher = gate.dispatcher;
  if (gate.expanded !== undefined) recipient.expanded = gate.expanded;
  // Refused now, while the client can still send the rest: past the limit the commit would fail after the whole message.
  if (envelopeCount(tx) + (recipient.expanded?.length ?? 1) > s.ctx.limits.maxEnvelopes) return s.reply(R.tooManyRecipients);
  tx.recipients.push(recipient);
  s.state.recipients.push(addressText(recipient.address));
  s.reply(R.recipientOk);
}

/** NOTIFY and ORCPT (RFC 3461 4.1, 4.2), kept for the recipient's envelope. */
function rcptParams(s: Session, recipient: Recipient, rest: string): Reply | undefined {
  const params = parseParams(rest);
  if (typeof params === 'string') return R.badParam(params);
  const dsn = s.listener.dsn !== false;
  for (const { key, value, text } of params) {
    if (dsn && key === 'NOTIFY' && value !== undefined) {
      const notify = asciiUpper(value).split(',');
      if (!notify.every((n) => n === 'SUCCESS' || n === 'FAILURE' || n === 'DELAY' || n === 'NEVER')) {
        return R.badParam(`invalid ${text}`);
      }
      if (notify.includes('NEVER') && notify.length > 1) {
        return R.badParam('NOTIFY option NEVER cannot be combined with other options');
      }
      recipient.notify = notify as NonNullable<Recipient['notify']>;
    } else if (dsn && key === 'ORCPT' && value !== undefined) {
      const semi = value.indexOf(';');
      const address = semi > 0 ? decodeXtext(value.slice(semi + 1)) : undefined;
      const orcpt = `${value.slice(0, semi)};${address}`;
      if (address === undefined || address === '' || !isText(orcpt, DSN_LIMITS.orcpt)) {
        return R.badParam('ORCPT address syntax error');
      }
      recipient.orcpt = orcpt;
    } else {
      return refusedParam(key, value, text, dsn ? ['NOTIFY', 'ORCPT'] : []);
    }
  }
  return undefined;
}

/**
 * DATA: a message is created in the queue, the Received: field written
 * to it, and the session starts reading content. The queue is asked only
 * now, not at MAIL as in 6.8, so that transactions that never reach DATA
 * cost it nothing.
 */
export async function data(s: Session, args: string): Promise<void> {
  if (args !== '') return s.reply(R.noParams);
  const tx = s.tx;
  if (!tx) return s.reply(R.badSequence);
  if (tx.recipients.length === 0) return s.reply(R.noRecipient);
  if (!(await s.gate('data', '')) || s.isClosing()) return;
  let message: IncomingMessage;
  try {
    message = await s.ctx.queue.createMessage();
  } catch (err) {
    s.ctx.logger.warn(`warn: ${s.id} smtp queue error: ${String(err)}`);
    s.reply(R.tempError);
    return s.quit('error');
  }
  if (s.isClosing() || s.tx !== tx) {
    // The client left while the queue was making the message: nobody will write it, so it goes now.
    void message.abort().catch(() => {});
    return;
  }
  const missingFields = () => ({ date: messageDate(s.ctx.now()), messageId: newMessageId(s.hostname) });
  tx.message = message;
  tx.writer = new MessageWriter(message, {
    maxSize: s.ctx.limits.maxMessageSize,
    ...(s.listener.submission ? { missingFields } : {}),
  });
  tx.dot = new DotReader();
  if (s.ctx.hooks['data-line']?.length) tx.lines = new DataLineFilter(s);
  s.stage = 'data';
  s.reply(R.startData);
  tx.writer.begin(receivedHeader({
    helo: s.state.helo ?? '',
    clientName: s.clientName,
    clientAddress: s.state.clientAddress,
    maskSource: s.listener.maskSource === true,
    host: s.hostname,
    software: s.ctx.software,
    esmtp: s.state.esmtp,
    utf8: tx.utf8,
    receivedAuth: s.listener.receivedAuth === true,
    msgid: msgidText(message),
    date: messageDate(s.ctx.now()),
    ...(s.state.tls ? { tls: s.state.tls } : {}),
    ...(s.state.authUser !== undefined ? { authUser: s.state.authUser } : {}),
    ...(tx.recipients.length === 1 ? { recipient: tx.recipients[0]!.address } : {}),
  }));
}

function msgidText(message: IncomingMessage): string {
  return message.id.toString(16).padStart(8, '0');
}

/**
 * Reads what the client has sent of the message; true once its end has
 * been read and answered, false when more input is needed. A message
 * that had lines ended by a bare LF (stored as CRLF, see dot-reader.ts)
 * is logged once at its end, whatever becomes of it, so that the
 * administrator can tell which clients send them: sloppy software, or
 * an attempt at SMTP smuggling.
 */
export async function readMessage(s: Session): Promise<boolean> {
  const tx = s.tx!;
  const dot = tx.dot!;
  const pieces: Buffer[] = [];
  const { next, end } = dot.read(s.input.buf, s.input.pos, pieces);
  s.input.pos = next;
  if (pieces.length > 0) await tx.writer!.content(tx.lines ? await tx.lines.filter(pieces) : pieces);
  if (!end || s.isClosing()) return false;
  s.stage = 'command';
  if (dot.bareLf > 0) s.log(`bare-lf msgid=${msgidText(tx.message!)} count=${dot.bareLf}`);
  await endOfMessage(s, tx);
  return true;
}

const ERROR_REPLIES: Record<MessageError, Reply> = {
  size: R.tooBig,
  nul: R.nulInData,
  loop: R.loop,
  io: R.writeFailure,
};

// #region end-of-message
/**
 * The final dot. A refused message (too big, NUL, a loop, a failed write,
 * a data-line or commit hook) is dropped from the queue and the client
 * told why; the session goes on. Otherwise the envelopes are committed,
 * and `250` is sent only once the queue says they are safe on disk: a
 * queue that fails gets `421` and the session ends, as in OpenSMTPD,
 * and the client will try again later.
 */
async function endOfMessage(s: Session, tx: Transaction): Promise<void> {
  const writer = tx.writer!;
  if (!writer.error) await writer.finish();
  if (s.isClosing()) return;
  const refusal = writer.error ? ERROR_REPLIES[writer.error] : tx.lines?.refusal;
  if (refusal) {
    s.reply(refusal);
    s.resetTransaction();
    if (tx.lines?.disconnect || refusal.code === 421) s.quit('filter');
    return;
  }
  if (!(await s.gate('commit', ''))) return s.resetTransaction();
  if (s.isClosing()) return;
  tx.committing = true;
  let envelopes: Envelope[];
  try {
    envelopes = await tx.message!.commit(envelopesOf(s, tx));
  } catch (err) {
    s.ctx.logger.warn(`warn: ${s.id} smtp queue error: ${String(err)}`);
    s.reply(R.tempFailure);
    tx.committing = false;
    s.resetTransaction();
    return s.quit('error');
  }
  const msgid = msgidText(tx.message!);
  s.reply(R.accepted(msgid));
  s.log(`message msgid=${msgid} size=${writer.size} nrcpt=${envelopes.length} proto=${s.state.esmtp ? 'ESMTP' : 'SMTP'}`);
  for (const e of envelopes) {
    const to = addressText(e.originalRecipient);
    s.log(`envelope evpid=${e.id.toString(16).padStart(16, '0')} from=<${addressText(e.sender)}> to=<${to}>`);
  }
  s.mailCount++;
  s.resetTransaction();
}
// #endregion end-of-message

/** How many envelopes the transaction's recipients make: one each, or one per target an alias expanded to. */
function envelopeCount(tx: Transaction): number {
  return tx.recipients.reduce((n, r) => n + (r.expanded?.length ?? 1), 0);
}

/** One envelope per recipient, all with the session's facts and the transaction's DSN request. */
function envelopesOf(s: Session, tx: Transaction): Omit<Envelope, 'id' | 'messageId'>[] {
  const origin: Origin = { clientAddress: s.state.clientAddress, helo: s.state.helo ?? '' };
  if (s.state.tag !== undefined) origin.tag = s.state.tag;
  if (s.state.rdns !== undefined) origin.clientName = s.state.rdns;
  if (s.state.authUser !== undefined) origin.authUser = s.state.authUser;
  if (s.state.tls) origin.tls = { protocol: s.state.tls.protocol, cipher: s.state.tls.cipher, bits: s.state.tls.bits };
  const createdAt = Math.floor(s.ctx.now().getTime() / 1000);
  return tx.recipients.flatMap((r) => {
    const dsn: DsnRequest = {};
    if (r.notify) dsn.notify = r.notify;
    if (r.orcpt !== undefined) dsn.orcpt = r.orcpt;
    if (tx.ret) dsn.ret = tx.ret;
    if (tx.envid !== undefined) dsn.envid = tx.envid;
    const targets: ExpandedTarget[] = r.expanded ?? [{ address: r.address, dispatcher: r.dispatcher }];
    return targets.map((t) => ({
      sender: tx.sender,
      recipient: t.address,
      originalRecipient: r.original,
      dispatcher: t.dispatcher,
      ...(t.delivery && { delivery: t.delivery }),
      origin,
      ...(Object.keys(dsn).length > 0 ? { dsn } : {}),
      createdAt,
      expiresAt: createdAt + s.ctx.queueTtl,
      attempts: 0,
    }));
  });
}
