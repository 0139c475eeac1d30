/**
 * The SMTP server engine: sessions, the protocol state machine, and the
 * hooks through which filters and rules decide. See server.ts to start.
 */
export { createSmtpServer, type SmtpServer } from './server.ts';
export {
  DEFAULT_LIMITS, limitsFromConfig, listenerFromDecl,
  type SessionBudget, type SmtpLimits, type SmtpListener, type SmtpLogger, type SmtpServerOptions,
} from './options.ts';
export type { TlsContexts, TlsInfo } from './tls.ts';
export { PHASES, type Hook, type HookContext, type HookDecision, type Hooks, type Phase, type Reply, type SessionState } from './hooks.ts';
export { formatReply } from './replies.ts';
export { parsePath, type PathOptions, type PathResult } from './address.ts';
