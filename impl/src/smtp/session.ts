/**
 * One SMTP session: a socket, the state of the conversation, and the loop
 * that reads the client's input and answers it. What each command does is
 * in commands.ts, transaction.ts and auth.ts; this file is the machinery
 * they share: reading, replying, asking the hooks, TLS, and closing.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ExpandedTarget, HookDecision, Phase, Reply, SessionState } from './hooks.ts';
import { continueAuth, type AuthExchange } from './auth.ts';
import { COMMANDS } from './commands.ts';
import { asciiUpper, decodeLine, InputBuffer, lineLimit, TOO_LONG } from './input.ts';
import type { ServerContext, SmtpListener } from './options.ts';
import { formatReply, R, replyText, visible } from './replies.ts';
import { serverTls, tlsInfo } from './tls.ts';
import { readMessage, type Transaction } from './transaction.ts';

/**
 * Where a session is. `greeting`: connected, greeting not sent yet (any
 * input now is an early talker). `command`: reading commands. `auth`:
 * reading a reply to a 334 challenge. `data`: reading a message. `tls`:
 * in a TLS handshake. `closing`: the last reply is on its way.
 */
export type Stage = 'greeting' | 'command' | 'auth' | 'data' | 'tls' | 'closing' | 'closed';

/** Above this many unread octets, the socket is paused until the engine catches up. */
const HIGH_WATER = 256 * 1024;
/**
 * Above this many octets of replies the client has not taken yet, the
 * engine stops reading its commands until it does: a client that sends
 * and never reads would otherwise grow them without end (HELP turns six
 * octets into seventy).
 */
const OUT_HIGH_WATER = 64 * 1024;
const PROCEED: HookDecision = { decision: 'proceed' };

export class Session {
  /** 64 random bits in hex, as OpenSMTPD's session ids. */
  readonly id = randomBytes(8).toString('hex');
  /** What hooks see; the engine keeps it up to date. */
  readonly state: SessionState;
  readonly hostname: string;
  stage: Stage = 'greeting';
  /** The transaction from MAIL to the end of DATA. */
  tx: Transaction | undefined;
  /** Messages accepted in this session, for `max-mails`. */
  mailCount = 0;
  /** The command being answered, for the logs. */
  command = '';
  /** An AUTH exchange in progress. */
  auth: AuthExchange | undefined;
  readonly input = new InputBuffer();
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>;

  private socket: Socket;
  private out = '';
  private busy = false;
  private paused = false;
  /** Reading waits for the client to take its replies (see OUT_HIGH_WATER). */
  private waitingForDrain = false;
  private closeReason = 'disconnect';
  private resolveClosed!: () => void;

  /** The client's name from reverse DNS, or `<unknown>`, as logs and the Received: field write it. */
  get clientName(): string {
    return this.state.rdns ?? '<unknown>';
  }

  constructor(readonly ctx: ServerContext, socket: Socket, readonly listener: SmtpListener) {
    this.socket = socket;
    this.hostname = listener.hostname ?? ctx.hostname;
    const mapped = (a: string | undefined) => (a === undefined ? 'local' : a.startsWith('::ffff:') ? a.slice(7) : a);
    this.state = {
      localAddress: mapped(socket.localAddress),
      localPort: socket.localPort ?? 0,
      clientAddress: mapped(socket.remoteAddress),
      clientPort: socket.remotePort ?? 0,
      esmtp: false,
      recipients: [],
    };
    if (listener.tag !== undefined) this.state.tag = listener.tag;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    // On smtps the client speaks first, its ClientHello, while the name
    // lookup and the connect hooks run: that is not early talk, and it is
    // left unread in the socket until startTls() reads it.
    this.attach(socket, listener.tls !== 'smtps');
  }

  /**
   * From connection to greeting: the client's name, the connect hooks,
   * TLS first on an smtps listener, then `220`. The greeting is not
   * delayed: a client that talks before it has not waited for it, which
   * only spam software does, and gets 554 (see onData).
   */
  async start(): Promise<void> {
    try {
      const name = await this.ctx.resolveName?.(this.state.clientAddress);
      if (name) this.state.rdns = name;
      this.log(`connected address=${this.state.clientAddress} host=${this.clientName}`);
      const decision = await this.gate('connect', this.state.clientAddress);
      if (!decision || this.isClosing()) return this.quit('filter');
      if (this.listener.tls === 'smtps') return this.startTls();
      this.greet();
    } catch (err) {
      this.fail(err);
    }
  }

  private greet(): void {
    if (this.ctx.closing) {
      this.queueReply(R.shuttingDown(this.hostname));
      return this.quit('shutdown');
    }
    this.stage = 'command';
    this.reply(R.greeting(this.hostname, this.ctx.software));
    this.flush();
  }

  // #region read-loop
  /**
   * Input from the client. Chunks are appended to the input buffer and
   * the read loop runs, unless it is already running: it may be waiting
   * for a hook or for the queue, and will find the new input when it
   * resumes. If too much piles up meanwhile, the socket is paused.
   */
  private onData = (chunk: Buffer): void => {
    if (this.stage === 'closing' || this.stage === 'closed' || this.stage === 'tls') return;
    if (this.stage === 'greeting') return this.badInput(R.earlyTalker);
    this.input.push(chunk);
    if (this.input.length > HIGH_WATER && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    if (!this.busy) void this.pump();
  };

  /**
   * Reads and answers everything the client has sent, in order: one
   * command after another, or the message after DATA. Replies collect in
   * `out` and go out in one write when the input runs dry, so a pipelined
   * batch of commands gets its replies in one packet (RFC 2920 3.2).
   * Message content may arrive while its last piece is being written to
   * the queue; the loop then reads on, or the end of the message would
   * wait in the buffer for input that never comes.
   */
  private async pump(): Promise<void> {
    this.busy = true;
    try {
      while (this.stage === 'command' || this.stage === 'auth' || this.stage === 'data') {
        if (this.out.length + this.socket.writableLength > OUT_HIGH_WATER) {
          this.flush();
          if (this.socket.writableNeedDrain) {
            this.waitForDrain();
            break;
          }
        }
        if (this.stage === 'data') {
          const received = this.input.received;
          if (!(await readMessage(this)) && this.input.received === received) break;
          continue;
        }
        const line = this.input.takeLine();
        if (line === undefined) break;
        if (line === TOO_LONG) {
          this.ctx.logger.trace?.(`smtp: ${this.id}: <<< [line over the limit]`);
          return this.badInput(R.lineTooLong);
        }
        if (this.stage === 'auth') {
          this.ctx.logger.trace?.(`smtp: ${this.id}: <<< ********`);
          await continueAuth(this, line);
        } else await this.execute(line);
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.busy = false;
      if (this.ctx.closing) this.shutdown(false);
      this.flush();
      if (this.paused && this.stage !== 'closed' && !this.waitingForDrain) {
        this.paused = false;
        this.socket.resume();
      }
    }
  }

  /** Stops reading until the socket has passed the replies on; then reads on. */
  private waitForDrain(): void {
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    if (this.waitingForDrain) return;
    this.waitingForDrain = true;
    this.socket.once('drain', () => {
      this.waitingForDrain = false;
      if (!this.busy && !this.isClosing()) void this.pump();
    });
  }
  // #endregion read-loop

  // #region execute
  /**
   * One command line. The checks that need no knowledge of the command
   * come first: NUL (no place in a command), encoding, length. Then
   * pipelining: a command that
   * changes what the client may say next (EHLO, DATA, STARTTLS...) must
   * be the last of a batch (RFC 2920 3.1), and without EHLO there is no
   * pipelining at all; a client that sent more after it did not wait for
   * the reply, and is refused before the command runs. OpenSMTPD 6.8 does
   * not offer PIPELINING and refuses any input after any command this way.
   */
  private async execute(raw: Buffer): Promise<void> {
    this.command = '';
    const nul = raw.includes(0);
    const text = nul ? undefined : decodeLine(raw);
    const seen = text ?? raw.toString('latin1');
    const space = seen.indexOf(' ');
    const verb = asciiUpper(space < 0 ? seen : seen.slice(0, space));
    const args = space < 0 ? '' : seen.slice(space + 1).trim();
    // The initial response of AUTH is the password in base64: never in a log line, whatever separates it.
    const blank = args.search(/[ \t]/);
    const shown = verb === 'AUTH' && blank >= 0 ? `AUTH ${args.slice(0, blank)} ********` : seen;
    this.ctx.logger.trace?.(`smtp: ${this.id}: <<< ${visible(shown)}`);
    if (nul) return this.reply(R.nulInCommand);
    if (text === undefined) return this.reply(R.notUtf8);
    this.command = shown;
    if (raw.length + 2 > lineLimit(verb)) return this.reply(R.lineTooLong);
    const command = COMMANDS[verb];
    if (command === undefined) return this.reply(R.unknown);
    if (this.input.length > 0 && !(command.pipelining && this.state.esmtp)) return this.badInput(R.pipelining(verb));
    if (this.ctx.closing && !this.tx && verb !== 'QUIT') {
      this.reply(R.shuttingDown(this.hostname));
      return this.quit('shutdown');
    }
    await command.run(this, args);
  }
  // #endregion execute

  /** Queues a reply; failures are logged as OpenSMTPD logs them. */
  reply(r: Reply): void {
    if (r.code >= 400) {
      this.log(`failed-command command="${visible(this.command)}" result="${visible(replyText(r))}"`);
    }
    this.queueReply(r);
  }

  /** Adds a reply to what the next flush sends, and to the trace. */
  private queueReply(r: Reply): void {
    const text = formatReply(r);
    const trace = this.ctx.logger.trace;
    if (trace) for (const line of text.split('\r\n').slice(0, -1)) trace(`smtp: ${this.id}: >>> ${line}`);
    this.out += text;
  }

  /** Sends what is queued. */
  flush(): void {
    if (this.out === '' || this.stage === 'closing' || this.stage === 'closed') return;
    this.socket.write(this.out);
    this.out = '';
  }

  /** Bad input: one clear reply, then the session ends. */
  badInput(r: Reply): void {
    this.log(`bad-input result="${visible(replyText(r))}"`);
    this.queueReply(r);
    this.quit('bad-input');
  }

  /** Sends the last replies and closes; whatever the client sends from now on is ignored. */
  quit(reason: string): void {
    if (this.isClosing()) return;
    this.stage = 'closing';
    this.closeReason = reason;
    this.input.clear();
    this.socket.end(this.out);
    this.out = '';
  }

  isClosing(): boolean {
    return this.stage === 'closing' || this.stage === 'closed';
  }

  /** An error the engine did not expect (a hook or the queue threw): 421, as OpenSMTPD answers its internal errors. */
  private fail(err: unknown): void {
    this.ctx.logger.warn(`warn: ${this.id} smtp internal error: ${err instanceof Error ? err.message : String(err)}`);
    if (this.isClosing()) return;
    this.queueReply(R.tempError);
    this.quit('error');
  }

  // #region gate
  /**
   * Asks the phase's hooks, in order; the first that does not proceed
   * decides. Returns the parameter to go on with (rewritten, perhaps) and
   * the action an rcpt-to hook chose, or `undefined` if a hook refused:
   * its reply is then sent, and for `disconnect` (or any 421, as
   * OpenSMTPD does for its filters) the session ends. That includes the
   * 421 of an alias's `error:421`, which 6.8 answers without closing:
   * RFC 5321 says 421 closes the channel (see Expander.error()). A
   * hook's reply that is not a 4xx or 5xx is not trusted, and becomes
   * `421 Internal server error`.
   */
  async gate(
    phase: Phase, param: string,
  ): Promise<{ param: string; dispatcher?: string; expanded?: ExpandedTarget[] } | undefined> {
    const decision = await this.decide(phase, param);
    switch (decision.decision) {
      case 'proceed':
        return { param };
      case 'accept':
        return { param, dispatcher: decision.dispatcher, ...(decision.expanded && { expanded: decision.expanded }) };
      case 'rewrite':
        return { param: decision.value };
      case 'reject':
      case 'disconnect': {
        const valid = decision.reply.code >= 400 && decision.reply.code < 600;
        const reply = valid ? decision.reply : R.hookInvalid;
        this.reply(reply);
        if (decision.decision === 'disconnect' || reply.code === 421) this.quit('filter');
        return undefined;
      }
    }
  }

  /** The phase's decision, without acting on it (data-line hooks are answered at the end of DATA). */
  async decide(phase: Phase, param: string): Promise<HookDecision> {
    const hooks = this.ctx.hooks[phase];
    if (hooks === undefined) return PROCEED;
    for (const hook of hooks) {
      const decision = await hook({ sessionId: this.id, phase, param, session: this.state });
      if (decision.decision !== 'proceed') return decision;
    }
    return PROCEED;
  }
  // #endregion gate

  // #region start-tls
  /**
   * Moves the session onto TLS, after `220 Ready to start TLS` (or at
   * connect, on an smtps listener). The plain socket's reader is detached
   * first: the client may send nothing more in clear, and the pipelining
   * check in execute() has already refused a STARTTLS followed by more
   * input, so no clear text can be taken as if it came over TLS
   * (CVE-2011-0411). Once secure, everything the client said before is
   * forgotten (RFC 3207 4.2): it must say EHLO again.
   */
  startTls(): void {
    this.flush();
    this.stage = 'tls';
    const plain = this.socket;
    const contexts = this.ctx.tls;
    if (!contexts) return this.fail(new Error('TLS listener without certificates (no `tls` option)'));
    plain.off('data', this.onData);
    void serverTls(plain, contexts, this.hostname).then((upgrade) => {
      if (this.isClosing()) return;
      if (!upgrade && plain.readableEnded) return; // the client left before its hello: onEnd has said so
      if (!upgrade) return this.fail(new Error(`no TLS context for ${this.hostname}`));
      this.detach(plain);
      this.attach(upgrade.tls);
      this.socket = upgrade.tls;
      upgrade.tls.once('secure', () => this.secured(upgrade.tls, upgrade.sni));
    });
  }

  private secured(socket: TLSSocket, sni: string | undefined): void {
    const tls = tlsInfo(socket, sni);
    this.log(`tls ciphers=${tls.protocol}:${tls.cipher}:${tls.bits}`);
    this.state.tls = tls;
    this.state.esmtp = false;
    delete this.state.helo;
    delete this.state.authUser;
    this.resetTransaction();
    if (this.listener.tls === 'smtps') return this.greet();
    this.stage = 'command';
  }
  // #endregion start-tls

  /** Ends the transaction, if any, dropping its message from the queue if one was started. */
  resetTransaction(): void {
    const tx = this.tx;
    if (tx === undefined) return;
    this.tx = undefined;
    delete this.state.sender;
    this.state.recipients = [];
    if (tx.writer && !tx.committing) void tx.writer.abort();
  }

  log(message: string): void {
    this.ctx.logger.info(`${this.id} smtp ${message}`);
  }

  /**
   * Closes the session for a server shutdown: now if it is idle (or if
   * `force`), else at its next command outside a transaction. The 421 is
   * not logged as a failed command (no command failed: the session ends,
   * and `disconnected reason=shutdown` says why). With `force`, at the
   * deadline, the connection is closed whole once the reply is written,
   * even if the client holds its end open after ours: a client must not
   * keep the daemon from stopping.
   */
  shutdown(force: boolean): void {
    if (!this.isClosing() && (force || (this.stage === 'command' && !this.busy && !this.tx))) {
      this.queueReply(R.shuttingDown(this.hostname));
      this.quit('shutdown');
    }
    if (force) this.socket.destroySoon();
  }

  private attach(socket: Socket, read = true): void {
    socket.setTimeout(this.ctx.limits.timeoutMs);
    if (read) socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('timeout', this.onTimeout);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  private detach(socket: Socket): void {
    socket.setTimeout(0);
    socket.off('data', this.onData);
    socket.off('end', this.onEnd);
    socket.off('timeout', this.onTimeout);
    socket.off('error', this.onError);
    socket.off('close', this.onClose);
  }

  private onEnd = (): void => {
    if (!this.isClosing()) this.closeReason = 'disconnect';
    this.socket.end();
  };

  private onTimeout = (): void => {
    this.closeReason = 'timeout';
    this.socket.destroy();
  };

  private onError = (err: Error): void => {
    // OpenSSL's messages end with a line feed, and may hold anything: escaped, as all client-caused text in a log line.
    if (!this.isClosing()) this.closeReason = `"io-error: ${visible(err.message.trim())}"`;
    this.socket.destroy();
  };

  private onClose = (): void => {
    if (this.stage === 'closed') return;
    const reason = this.closeReason;
    this.stage = 'closed';
    this.resetTransaction();
    this.log(`disconnected reason=${reason}`);
    this.resolveClosed();
  };
}
