/**
 * What the SMTP engine is given: where messages go, the hooks that decide,
 * the listeners' settings and the limits. The daemon builds these from
 * smtpd.conf (see listenerFromDecl and limitsFromConfig); tests write them
 * by hand.
 */
import type { Config, ListenDecl } from '../config/ast.ts';
import type { QueueBackend } from '../queue/backend.ts';
import type { Hooks } from './hooks.ts';
import type { TlsContexts } from './tls.ts';

/** How one listener behaves: the options of its `listen on` line. */
export interface SmtpListener {
  /** TLS offered with STARTTLS, required before MAIL (`tls-require`), or from the first byte (`smtps`). */
  tls?: 'starttls' | 'tls-require' | 'smtps';
  /** AUTH offered (once TLS is up): `auth-optional`, or `auth`, which requires it before MAIL. */
  auth?: 'optional' | 'required';
  /** Offers AUTH without TLS too. Not in OpenSMTPD; for the local socket and for tests. */
  authPlaintext?: boolean;
  tag?: string;
  /** This listener's name in the greeting and the Received: field; the server's by default. */
  hostname?: string;
  /** Adds Date: and Message-ID: when missing; OpenSMTPD does so on the local socket and port 587. */
  submission?: boolean;
  /** `mask-src`: the Received: field does not name the client. */
  maskSource?: boolean;
  /** `received-auth`: the Received: field says who authenticated. */
  receivedAuth?: boolean;
  /** DSN offered (RFC 3461); `no-dsn` turns it off. Default: on. */
  dsn?: boolean;
}

/** The session limits, with OpenSMTPD 6.8's defaults. */
export interface SmtpLimits {
  /** `smtp max-message-size`, in octets; 35 MiB by default. */
  maxMessageSize: number;
  /** `smtp limit max-rcpt`: recipients per message; 1000. */
  maxRecipients: number;
  /**
   * Envelopes per message, recipients after expansion (an alias may stand
   * for many): 1000, what the daemon's queue takes in one commit
   * (proc/channels/queue.ts), whatever max-rcpt says.
   */
  maxEnvelopes: number;
  /** `smtp limit max-mails`: messages per session; 100. */
  maxMessages: number;
  /** A session silent this long is closed; 5 minutes. */
  timeoutMs: number;
  /** A failed AUTH is answered after a random pause up to this long, against timing attacks; 1 s. */
  authFailureDelayMs: number;
}

export const DEFAULT_LIMITS: SmtpLimits = {
  maxMessageSize: 35 * 1024 * 1024,
  maxRecipients: 1000,
  maxEnvelopes: 1000,
  maxMessages: 100,
  timeoutMs: 300_000,
  authFailureDelayMs: 1000,
};

/** Where log lines go; one line per call, without a newline. */
export interface SmtpLogger {
  info(line: string): void;
  warn(line: string): void;
  /**
   * The dialogue, line by line (`smtpd -T smtp`): what the client sent
   * and what the server answered, passwords masked. Absent when nobody
   * asked for it, so that a session formats no trace lines.
   */
  trace?(line: string): void;
}

export interface SmtpServerOptions {
  /** This server's name: the greeting, the HELO reply, Received:, and the domain of `<postmaster>`. */
  hostname: string;
  /** Where accepted messages go; only `createMessage` is used. */
  queue: Pick<QueueBackend, 'createMessage'>;
  /** The settings of sockets that `listen` and `handle` are given without their own. */
  listener?: SmtpListener;
  hooks?: Hooks;
  /** Certificates by server name; without it, no TLS is offered. */
  tls?: TlsContexts;
  /** Checks a user name and password for AUTH; without it, AUTH always fails. */
  authenticate?: (user: string, password: string) => Promise<boolean>;
  limits?: Partial<SmtpLimits>;
  logger?: SmtpLogger;
  /** The name of a client's address (reverse DNS); without it, every client is `<unknown>`. */
  resolveName?: (address: string) => Promise<string | undefined>;
  /** Named in the greeting and in Received: (`220 mx.example.org ESMTP <software>`); `Store and Forward`. */
  software?: string;
  /** The action for recipients that no rcpt-to hook accepted by name. Default `local`. */
  defaultDispatcher?: string;
  /** `queue ttl`: how long an envelope may wait before it bounces, in seconds; 4 days. */
  queueTtl?: number;
  /** The clock, for tests. */
  now?: () => Date;
  /** How many sessions may be open at once, counted with every server that shares this object. Unlimited without it. */
  sessions?: SessionBudget;
}

/**
 * Sessions open, and how many may be: shared by the servers of one
 * process (one per listener), since they share its descriptors.
 */
export interface SessionBudget {
  readonly max: number;
  open: number;
}

/** What every session of a server shares: the options, resolved. */
export interface ServerContext {
  hostname: string;
  software: string;
  queue: SmtpServerOptions['queue'];
  hooks: Hooks;
  tls: TlsContexts | undefined;
  authenticate: SmtpServerOptions['authenticate'];
  limits: SmtpLimits;
  logger: SmtpLogger;
  resolveName: SmtpServerOptions['resolveName'];
  defaultDispatcher: string;
  queueTtl: number;
  now: () => Date;
  /** The server is closing: sessions end at their next command outside a transaction. */
  closing: boolean;
}

/** Builds a listener's settings from its `listen on` declaration. */
export function listenerFromDecl(decl: ListenDecl): SmtpListener {
  const listener: SmtpListener = {
    submission: decl.on.kind === 'socket' || decl.port === 587,
    maskSource: decl.maskSrc,
    receivedAuth: decl.receivedAuth,
    dsn: !decl.noDsn,
  };
  if (decl.tls) listener.tls = decl.tls.mode;
  if (decl.auth) listener.auth = decl.auth.required ? 'required' : 'optional';
  if (decl.on.kind === 'socket') listener.authPlaintext = true;
  if (decl.tag !== undefined) listener.tag = decl.tag;
  if (decl.hostname !== undefined) listener.hostname = decl.hostname;
  return listener;
}

/** The limits set by `smtp max-message-size` and `smtp limit` in smtpd.conf. */
export function limitsFromConfig(config: Config): Partial<SmtpLimits> {
  const limits: Partial<SmtpLimits> = {};
  for (const option of config.options) {
    if (option.kind === 'smtp max-message-size') limits.maxMessageSize = option.bytes;
    if (option.kind !== 'smtp limit') continue;
    for (const { name, value } of option.limits) {
      if (name === 'max-rcpt') limits.maxRecipients = value;
      if (name === 'max-mails') limits.maxMessages = value;
    }
  }
  return limits;
}
