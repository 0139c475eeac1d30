/**
 * The commands the engine knows, as one table (OpenSMTPD keeps the same
 * kind of table in smtp_session.c): what each does, and whether a client
 * may send more after it without waiting for the reply (RFC 2920).
 * MAIL, RCPT and DATA are in transaction.ts, AUTH in auth.ts.
 */
import type { Reply } from './hooks.ts';
import { isDomain } from './address.ts';
import { startAuth } from './auth.ts';
import { R } from './replies.ts';
import type { Session } from './session.ts';
import { data, mailFrom, rcptTo } from './transaction.ts';

export interface Command {
  run(session: Session, args: string): void | Promise<void>;
  /**
   * May be followed by more commands in the same batch. RFC 2920 3.1
   * names the commands that must end a batch because their reply changes
   * what comes next: EHLO, DATA, VRFY, EXPN, TURN, QUIT and NOOP; RFC 3207
   * and RFC 4954 add STARTTLS and AUTH. HELO is one of them too: a client
   * that says HELO has not been offered PIPELINING.
   */
  pipelining: boolean;
}

// #region command-table
export const COMMANDS: Readonly<Record<string, Command>> = {
  HELO: { run: (s, args) => hello(s, args, false), pipelining: false },
  EHLO: { run: (s, args) => hello(s, args, true), pipelining: false },
  STARTTLS: { run: startTls, pipelining: false },
  AUTH: { run: startAuth, pipelining: false },
  MAIL: { run: mailFrom, pipelining: true },
  RCPT: { run: rcptTo, pipelining: true },
  DATA: { run: data, pipelining: false },
  RSET: { run: reset, pipelining: true },
  NOOP: { run: (s) => s.reply(R.ok), pipelining: false },
  HELP: { run: (s) => s.reply(R.help(s.ctx.software)), pipelining: true },
  VRFY: { run: (s) => s.reply(R.disabled('VRFY')), pipelining: false },
  EXPN: { run: (s) => s.reply(R.disabled('EXPN')), pipelining: false },
  QUIT: { run: quit, pipelining: false },
};
// #endregion command-table

/**
 * HELO and EHLO. The name must be a domain or an address literal, as
 * OpenSMTPD requires. Saying EHLO again later is allowed and resets the
 * transaction, as RFC 5321 4.1.4 asks (6.8 answers `503 Already
 * identified`).
 */
async function hello(s: Session, args: string, esmtp: boolean): Promise<void> {
  if (args === '') return s.reply(R.heloRequired(esmtp ? 'EHLO' : 'HELO'));
  if (!isDomain(args)) return s.reply(R.invalidDomain);
  const gate = await s.gate(esmtp ? 'ehlo' : 'helo', args);
  if (!gate) return;
  if (!isDomain(gate.param)) return s.reply(R.invalidDomain);
  s.resetTransaction();
  s.state.helo = gate.param;
  s.state.esmtp = esmtp;
  s.reply(esmtp ? ehloReply(s) : R.hello(s.hostname, gate.param, s.state.clientAddress));
}

/** The EHLO reply: the greeting line, then one line per extension offered. */
function ehloReply(s: Session): Reply {
  const first = R.hello(s.hostname, s.state.helo ?? '', s.state.clientAddress).lines[0]!;
  const lines = [first, '8BITMIME', 'ENHANCEDSTATUSCODES', `SIZE ${s.ctx.limits.maxMessageSize}`];
  if (s.listener.dsn !== false) lines.push('DSN');
  lines.push('PIPELINING', 'SMTPUTF8');
  if (offersTls(s) && !s.state.tls) lines.push('STARTTLS');
  if (offersAuth(s)) lines.push('AUTH PLAIN LOGIN');
  lines.push('HELP');
  return { code: 250, lines };
}

// #region offers
/** STARTTLS is offered on `tls` and `tls-require` listeners, when there are certificates. */
export function offersTls(s: Session): boolean {
  return (s.listener.tls === 'starttls' || s.listener.tls === 'tls-require') && s.ctx.tls !== undefined;
}

/** AUTH is offered once TLS is up (or on a listener that allows it in clear), until it succeeds. */
export function offersAuth(s: Session): boolean {
  return s.listener.auth !== undefined && s.state.authUser === undefined &&
    (s.state.tls !== undefined || s.listener.authPlaintext === true);
}
// #endregion offers

async function startTls(s: Session, args: string): Promise<void> {
  if (s.state.helo === undefined || s.tx) return s.reply(R.badSequence);
  if (!offersTls(s)) return s.reply(R.notSupported);
  if (s.state.tls) return s.reply(R.alreadySecure);
  if (args !== '') return s.reply(R.noTlsParams);
  if (!s.ctx.tls!(s.hostname)) return s.reply(R.tlsUnavailable);
  if (!(await s.gate('starttls', ''))) return;
  // execute() refused input that came with STARTTLS; this is input that
  // came while the hooks decided. Taken after the handshake, it would
  // pass for what the client said over TLS (CVE-2011-0411).
  if (s.input.length > 0) return s.badInput(R.pipelining('STARTTLS'));
  s.reply(R.startTls);
  s.startTls();
}

/**
 * RSET. It needs no HELO first: RFC 5321 4.1.4 lets RSET (like NOOP,
 * HELP, VRFY and EXPN) come at any time, and asks servers not to answer
 * it with 503 before EHLO, which 6.8 does.
 */
function reset(s: Session, args: string): void {
  if (args !== '') return s.reply(R.noParams);
  s.resetTransaction();
  s.reply(R.reset);
}

function quit(s: Session, args: string): void {
  if (args !== '') return s.reply(R.noParams);
  s.reply(R.bye);
  s.quit('quit');
}
