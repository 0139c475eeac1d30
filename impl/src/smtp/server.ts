/**
 * The SMTP engine as the daemon sees it: something to hand sockets to.
 * The parent process binds the ports (it alone may, as root) and passes
 * the listening net.Server, or single connections, to the smtp process,
 * which calls `listen` or `handle`. The engine never opens a port itself.
 */
import type { Server, Socket } from 'node:net';
import { DEFAULT_LIMITS, type ServerContext, type SmtpListener, type SmtpServerOptions } from './options.ts';
import { formatReply, R } from './replies.ts';
import { Session } from './session.ts';

/** Refused connections are logged once, then at most once in this long, with their count. */
const REFUSED_LOG_MS = 60_000;

export interface SmtpServer {
  /** Serves every connection `server` accepts from now on, with `listener`'s settings (else the options'). */
  listen(server: Server, listener?: SmtpListener): void;
  /** Serves one connection; resolves when it has closed. */
  handle(socket: Socket, listener?: SmtpListener): Promise<void>;
  /**
   * Stops accepting (the servers given to `listen` are closed), tells idle
   * sessions `421` at once and busy ones after their transaction, and
   * resolves when the last session has closed. Sessions still open after
   * `graceMs` (if given) are closed wherever they are.
   */
  close(graceMs?: number): Promise<void>;
  /** Sessions open now. */
  readonly sessions: number;
}

const NO_LOG = { info: () => {}, warn: () => {} };

export function createSmtpServer(options: SmtpServerOptions): SmtpServer {
  const ctx: ServerContext = {
    hostname: options.hostname,
    software: options.software ?? 'Store and Forward',
    queue: options.queue,
    hooks: options.hooks ?? {},
    tls: options.tls,
    authenticate: options.authenticate,
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    logger: options.logger ?? NO_LOG,
    resolveName: options.resolveName,
    defaultDispatcher: options.defaultDispatcher ?? 'local',
    queueTtl: options.queueTtl ?? 4 * 24 * 3600,
    now: options.now ?? (() => new Date()),
    closing: false,
  };
  const sessions = new Set<Session>();
  const servers = new Map<Server, (socket: Socket) => void>();
  const budget = options.sessions;
  const refused = { count: 0, loggedAt: -Infinity };

  function handle(socket: Socket, listener = options.listener ?? {}): Promise<void> {
    if (ctx.closing) {
      socket.destroy();
      return Promise.resolve();
    }
    if (budget && budget.open >= budget.max) {
      refuse(socket);
      return Promise.resolve();
    }
    if (budget) budget.open += 1;
    const session = new Session(ctx, socket, listener);
    sessions.add(session);
    void session.start();
    return session.closed.then(() => {
      sessions.delete(session);
      if (budget) budget.open -= 1;
    });
  }

  // #region too-many-sessions
  /**
   * A connection over the budget: one line, 421, and closed. Each
   * session holds a descriptor, and a process that runs out of them
   * cannot open the files and sockets its other sessions need; past its
   * limit, the kernel's accept fails and libuv closes the connection
   * without a word, to the client or to the log. So the budget stops
   * short of the limit, and the client hears why and comes back later.
   */
  function refuse(socket: Socket): void {
    socket.on('error', () => {});
    socket.end(formatReply(R.tooManySessions(ctx.hostname)));
    socket.destroySoon();
    refused.count += 1;
    const now = Date.now();
    if (now - refused.loggedAt < REFUSED_LOG_MS) return;
    const limit = budget?.max ?? 0;
    ctx.logger.warn(`warn: smtp: ${limit} sessions open, the most allowed: refused ${refused.count} connection(s) with 421, the last from ${socket.remoteAddress ?? 'unknown'}; raise the descriptor limit (ulimit -n) to allow more`);
    refused.count = 0;
    refused.loggedAt = now;
  }
  // #endregion too-many-sessions

  return {
    listen(server, listener) {
      const onConnection = (socket: Socket) => void handle(socket, listener);
      servers.set(server, onConnection);
      server.on('connection', onConnection);
    },
    handle,
    async close(graceMs) {
      ctx.closing = true;
      for (const [server, onConnection] of servers) {
        server.off('connection', onConnection);
        server.close();
      }
      servers.clear();
      const open = [...sessions];
      for (const session of open) session.shutdown(false);
      const timer = graceMs === undefined ? undefined : setTimeout(() => {
        for (const session of sessions) session.shutdown(true);
      }, graceMs);
      await Promise.all(open.map((s) => s.closed));
      clearTimeout(timer);
    },
    get sessions() {
      return sessions.size;
    },
  };
}
