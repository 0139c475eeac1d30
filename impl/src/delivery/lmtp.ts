/**
 * An LMTP client (RFC 2033): the `lmtp` method, handing mail to a local
 * mail store such as Dovecot or Cyrus. LMTP is SMTP with one change that
 * matters: after the final dot the server answers once per accepted
 * recipient, so one transaction can deliver a message to several
 * mailboxes and learn, mailbox by mailbox, which took it.
 *
 * lmtpDeliver() therefore takes a list of recipients and returns an
 * outcome for each, in the same order. The dispatcher sends one envelope
 * at a time today; grouping the envelopes of one message later needs no
 * change here.
 *
 *     2xx  ok        4xx  tempfail        5xx  permfail
 *
 * A failure that is not a recipient's (no connection, a refused MAIL
 * FROM, a timeout, the connection lost) applies to every recipient that
 * has no answer yet. OpenSMTPD's mail.lmtp makes every failure temporary;
 * here a 5xx is permanent, as the server means it to be.
 */
import { createConnection, type Socket } from 'node:net';
import { duration, oneLine } from './failure.ts';
import { encodeLines } from './lines.ts';
import type { DeliveryOutcome } from './types.ts';

export type LmtpDestination = { kind: 'unix'; path: string } | { kind: 'inet'; host: string; port: number };

/**
 * The port when a destination has none. mail.lmtp falls back to 25, but
 * RFC 2033 forbids LMTP on the SMTP port; 24 is LMTP's registered port.
 */
export const LMTP_DEFAULT_PORT = 24;

/** LmtpTimeouts.totalMs by default: below the dispatcher's limit for a delivery (see there). */
export const LMTP_TOTAL_MS = 9 * 60_000;

/** `/path/to/socket`, `host:port`, `host`, `[::1]:24` or `[IPv6:::1]:24`; throws an Error saying what is wrong. */
export function parseLmtpDestination(text: string): LmtpDestination {
  if (text.startsWith('/')) return { kind: 'unix', path: text };
  let host = text;
  let port: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) throw new Error(`lmtp destination "${text}": no ']' after the address`);
    host = text.slice(1, close).replace(/^IPv6:/i, '');
    const rest = text.slice(close + 1);
    if (rest && !rest.startsWith(':')) throw new Error(`lmtp destination "${text}": expected ':port' after ']'`);
    port = rest ? rest.slice(1) : undefined;
  } else if (text.includes(':')) {
    const colon = text.lastIndexOf(':');
    host = text.slice(0, colon);
    port = text.slice(colon + 1);
    if (host.includes(':')) throw new Error(`lmtp destination "${text}": write an IPv6 address in brackets, [::1]:24`);
  }
  if (!host) throw new Error(`lmtp destination "${text}": no host`);
  if (port === undefined) return { kind: 'inet', host, port: LMTP_DEFAULT_PORT };
  const n = Number(port);
  if (!/^\d+$/.test(port) || n < 1 || n > 65535) throw new Error(`lmtp destination "${text}": bad port "${port}"`);
  return { kind: 'inet', host, port: n };
}

export function formatLmtpDestination(d: LmtpDestination): string {
  if (d.kind === 'unix') return d.path;
  return d.host.includes(':') ? `[${d.host}]:${d.port}` : `${d.host}:${d.port}`;
}

/** One LMTP transaction: who we are, the sender (`''` for `<>`), the recipients. */
export interface LmtpTransaction {
  lhlo: string;
  mailFrom: string;
  recipients: string[];
}

export interface LmtpTimeouts {
  /** Default 30 000. */
  connectMs?: number;
  /** For each reply to a command, and for the socket to take data. Default 300 000 (5 minutes, RFC 5321 4.5.3.2). */
  replyMs?: number;
  /** For each reply after the final dot, while the store files the message. Default 600 000 (RFC 5321's 10 minutes). */
  dataReplyMs?: number;
  /**
   * For the whole transaction, whatever each step took. Default
   * LMTP_TOTAL_MS (9 minutes): the dispatcher gives a delivery 10
   * minutes, then counts it as a temporary failure and retries it. A
   * transaction still running then could end in a 250 nobody records,
   * and the retry would deliver the message a second time; ended here,
   * its outcome is the one written.
   */
  totalMs?: number;
}

interface Reply {
  code: number;
  text: string;
}

/**
 * The most one reply may hold, all its lines together. RFC 5321 allows
 * 512 octets a line and sets no limit on the lines; the longest real
 * reply, an LHLO's list of extensions, is a few hundred octets.
 */
const REPLY_MAX = 65536;

/**
 * Reads replies, one- or multi-line, as they arrive; the first socket
 * error fails every read after it. It holds at most one reply being
 * read and what one read from the socket brought: replies nobody has
 * asked for yet stop the reading until someone asks. A server that
 * sends without end (a multi-line reply that never ends, 250s while the
 * message is sent) fills its own buffers then, not this process.
 */
class ReplyReader {
  private buffer = '';
  private lines: string[] = [];
  private size = 0;
  private replies: Reply[] = [];
  private waiter: { resolve: (r: Reply) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (data: string) => this.data(data));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('connection closed by the server')));
  }

  private data(data: string): void {
    if (this.failure) return;
    this.buffer += data;
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      const m = /^(\d{3})([ -]?)(.*)$/.exec(line);
      if (!m) return this.fail(new Error(`invalid reply line "${oneLine(line, 100)}"`));
      this.size += line.length;
      if (this.size > REPLY_MAX) return this.fail(new Error(`a reply longer than ${REPLY_MAX} octets`));
      this.lines.push(m[3]!);
      if (m[2] === '-') continue;
      this.replies.push({ code: Number(m[1]), text: this.lines.join(' ').trim() });
      this.lines = [];
      this.size = 0;
      this.deliver();
    }
    if (this.buffer.length > REPLY_MAX) return this.fail(new Error('reply line too long'));
    if (this.replies.length > 0) this.socket.pause();
  }

  private deliver(): void {
    if (!this.waiter) return;
    const reply = this.replies.shift();
    if (reply) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve(reply);
    } else if (this.failure) {
      const w = this.waiter;
      this.waiter = undefined;
      w.reject(this.failure);
    }
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.deliver();
  }

  read(timeoutMs: number): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no reply within ${duration(timeoutMs)}`));
      }, timeoutMs);
      this.waiter = {
        resolve: (r) => { clearTimeout(timer); resolve(r); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
      this.deliver();
      if (this.waiter) this.socket.resume();
    });
  }
}

function connect(destination: LmtpDestination, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = destination.kind === 'unix'
      ? createConnection({ path: destination.path })
      : createConnection({ host: destination.host, port: destination.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`cannot connect within ${duration(timeoutMs)}`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      resolve(socket);
    });
    const onError = (e: Error) => {
      clearTimeout(timer);
      reject(new Error(`cannot connect: ${e.message}`));
    };
    socket.once('error', onError);
  });
}

/** What a reply means for a recipient. */
function replyOutcome(reply: Reply, where: string): DeliveryOutcome {
  const said = oneLine(`${reply.code} ${reply.text}`);
  if (reply.code >= 200 && reply.code < 300) return { result: 'ok', detail: `${where}: ${said}` };
  if (reply.code >= 500 && reply.code < 600) return { result: 'permfail', reason: `${where}: ${said}` };
  return { result: 'tempfail', reason: `${where}: ${said}` };
}

/**
 * Writes, waiting while the socket's buffer is full; fails if the socket
 * closes meanwhile, with the reason it was closed for if it has one (the
 * server took no data for too long, the connection was reset).
 */
async function send(socket: Socket, data: Buffer | string): Promise<void> {
  if (socket.destroyed) throw socket.errored ?? new Error('connection closed');
  if (socket.write(data)) return;
  await new Promise<void>((resolve, reject) => {
    const done = () => { socket.off('drain', done); socket.off('close', gone); resolve(); };
    const gone = () => { socket.off('drain', done); socket.off('close', gone); reject(socket.errored ?? new Error('connection closed while sending')); };
    socket.on('drain', done);
    socket.on('close', gone);
  });
}

// #region lmtp-deliver
/**
 * Delivers one message to the recipients of one transaction and returns
 * an outcome per recipient, in order. Never throws for a delivery problem.
 */
export async function lmtpDeliver(
  destination: LmtpDestination,
  transaction: LmtpTransaction,
  content: AsyncIterable<unknown>,
  timeouts: LmtpTimeouts = {},
): Promise<DeliveryOutcome[]> {
  const name = `lmtp ${formatLmtpDestination(destination)}`;
  const replyMs = timeouts.replyMs ?? 300_000;
  const outcomes: (DeliveryOutcome | undefined)[] = transaction.recipients.map(() => undefined);
  const rest = (outcome: DeliveryOutcome) => outcomes.map((o) => o ?? outcome);
  if (transaction.recipients.length === 0) return [];

  let socket: Socket | undefined;
  let stage = 'connect';
  const totalMs = timeouts.totalMs ?? LMTP_TOTAL_MS;
  const started = Date.now();
  let overall: NodeJS.Timeout | undefined;
  let late = false;
  try {
    socket = await connect(destination, Math.min(timeouts.connectMs ?? 30_000, totalMs));
    overall = setTimeout(() => {
      late = true;
      socket!.destroy(new Error(`no end within ${duration(totalMs)}`));
    }, Math.max(0, totalMs - (Date.now() - started)));
    const replies = new ReplyReader(socket);
    const command = async (line: string): Promise<Reply> => {
      stage = line;
      await send(socket!, `${line}\r\n`);
      return replies.read(replyMs);
    };

    // A refused greeting or LHLO says nothing about the message: the
    // destination is down or is not an LMTP server (a 500 to LHLO is an
    // SMTP server). The administrator must fix it; the mail waits.
    stage = 'greeting';
    const greeting = await replies.read(replyMs);
    if (greeting.code !== 220) return rest(temporary(greeting, `${name}: greeting`));
    const lhlo = await command(`LHLO ${transaction.lhlo}`);
    if (lhlo.code !== 250) return rest(temporary(lhlo, `${name}: LHLO`));
    // An address in UTF-8 (RFC 6531) may go only to a server that says
    // SMTPUTF8, and with that word on MAIL FROM; another server would
    // misread it, or refuse it with a reply about syntax. The store will
    // not learn it while the message waits: the failure is permanent.
    const utf8 = [transaction.mailFrom, ...transaction.recipients].some((a) => /[^\x00-\x7f]/.test(a));
    if (utf8 && !/(^|\s)SMTPUTF8(\s|$)/i.test(lhlo.text)) {
      await quit(socket, replies);
      return rest({ result: 'permfail', reason: `${name}: an address is in UTF-8, and the server does not offer SMTPUTF8 (RFC 6531)` });
    }
    const mailFrom = await command(`MAIL FROM:<${transaction.mailFrom}>${utf8 ? ' SMTPUTF8' : ''}`);
    if (mailFrom.code !== 250) return rest(failed(mailFrom, `${name}: MAIL FROM:<${transaction.mailFrom}>`));
    const accepted: number[] = [];
    for (const [i, rcpt] of transaction.recipients.entries()) {
      const reply = await command(`RCPT TO:<${rcpt}>`);
      if (reply.code >= 200 && reply.code < 300) accepted.push(i);
      else outcomes[i] = failed(reply, `${name}: RCPT TO:<${rcpt}>`);
    }
    if (accepted.length === 0) {
      await quit(socket, replies);
      return rest({ result: 'tempfail', reason: `${name}: no recipient accepted` });
    }
    const data = await command('DATA');
    if (data.code !== 354) return rest(failed(data, `${name}: DATA`));

    // Replies have their own timers; while the message is sent, a server
    // that takes no data for as long has stopped reading.
    stage = 'message';
    socket.setTimeout(replyMs, () => socket!.destroy(new Error(`the server took no data for ${duration(replyMs)}`)));
    for await (const out of encodeLines(content, { eol: '\r\n', dotStuff: true, terminateLastLine: true })) await send(socket, out);
    stage = 'final dot';
    await send(socket, '.\r\n');
    socket.setTimeout(0);
    for (const i of accepted) {
      outcomes[i] = replyOutcome(await replies.read(timeouts.dataReplyMs ?? 600_000), `${name}: after DATA for <${transaction.recipients[i]}>`);
    }
    await quit(socket, replies);
    return rest({ result: 'tempfail', reason: `${name}: no reply` });
  } catch (e) {
    const why = late ? `no end within ${duration(totalMs)}` : (e as Error).message;
    return rest({ result: 'tempfail', reason: `${name}: ${stage}: ${oneLine(why)}` });
  } finally {
    clearTimeout(overall);
    socket?.destroy();
  }
}
// #endregion lmtp-deliver

/** A refusal before the data: 5xx is permanent, anything else (4xx, or a code that makes no sense here) temporary. */
function failed(reply: Reply, where: string): DeliveryOutcome {
  const outcome = replyOutcome(reply, where);
  return outcome.result === 'ok' ? { result: 'tempfail', reason: `${where}: unexpected reply ${reply.code} ${oneLine(reply.text)}` } : outcome;
}

function temporary(reply: Reply, where: string): DeliveryOutcome {
  return { result: 'tempfail', reason: `${where}: ${oneLine(`${reply.code} ${reply.text}`)}` };
}

/** QUIT, politely but without waiting long: the outcomes are already known. */
async function quit(socket: Socket, replies: ReplyReader): Promise<void> {
  try {
    await send(socket, 'QUIT\r\n');
    await replies.read(1000);
  } catch {
    // The server may hang up first; nothing depends on its answer.
  }
}
