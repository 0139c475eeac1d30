/**
 * The SMTP engine as the daemon sees it: something to hand sockets to.
 * The parent process binds the ports (it alone may, as root) and passes
 * the listening net.Server, or single connections, to the smtp process,
 * which calls `listen` or `handle`. The engine never opens a port itself.
 */
import type { Server, Socket } from 'node:net';
import { DEFAULT_LIMITS, type ServerContext, type SmtpListener, type SmtpServerOptions } from './options.ts';
import { Session } from './session.ts';

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

  function handle(socket: Socket, listener = options.listener ?? {}): Promise<void> {
    if (ctx.closing) {
      socket.destroy();
      return Promise.resolve();
    }
    const session = new Session(ctx, socket, listener);
    sessions.add(session);
    void session.start();
    return session.closed.then(() => {
      sessions.delete(session);
    });
  }

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
