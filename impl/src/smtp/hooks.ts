/**
 * The phases of an SMTP session, and the one hook type the engine calls
 * at each of them. Filters (builtin or OpenSMTPD's filter protocol), the
 * rules in the lookup process, and tests all plug in here; the engine
 * itself has no policy.
 *
 * Like a web framework's request hooks: one table of phases, one
 * signature, one way to answer early.
 */
import type { LocalDelivery, MailAddress } from '../queue/types.ts';

export const PHASES = [
  'connect', 'helo', 'ehlo', 'starttls', 'auth', 'mail-from', 'rcpt-to', 'data', 'data-line', 'commit',
] as const;
export type Phase = (typeof PHASES)[number];

/** An SMTP reply: code, optional enhanced status code (RFC 3463), text lines. */
export interface Reply {
  code: number;
  enhanced?: string;
  lines: string[];
}

/**
 * What a hook decides. `proceed` lets the engine continue as it would;
 * `reject` answers with the reply (a 4xx or 5xx) and refuses this command;
 * `disconnect` answers and closes the session; `rewrite` replaces the
 * phase's parameter (an address, a data line) and continues; `accept`
 * (rcpt-to only) takes the recipient and names the smtpd.conf action that
 * will deliver it: it is how the rules answer; with `expanded`, the
 * envelopes the recipient expanded to. At other phases the engine
 * reads `accept` as `proceed`.
 */
export type HookDecision =
  | { decision: 'proceed' }
  | { decision: 'accept'; dispatcher: string; expanded?: ExpandedTarget[] }
  | { decision: 'reject'; reply: Reply }
  | { decision: 'disconnect'; reply: Reply }
  | { decision: 'rewrite'; value: string };

/**
 * One envelope a recipient became, when an `accept` comes with expansion
 * (aliases, virtual maps, ~/.forward): the engine then commits one
 * envelope per target instead of one for the address the client sent.
 */
export interface ExpandedTarget {
  address: MailAddress;
  dispatcher: string;
  delivery?: LocalDelivery;
}

/** What a hook sees of the session (read-only), plus the phase's parameter. */
export interface HookContext {
  sessionId: string;
  phase: Phase;
  /** The phase's parameter: the HELO name, the address, the data line... empty for connect, data and commit. */
  param: string;
  session: Readonly<SessionState>;
}

export interface SessionState {
  localAddress: string;
  localPort: number;
  clientAddress: string;
  clientPort: number;
  /** The client's name from reverse DNS; absent when its address has none (or no resolver was given). */
  rdns?: string;
  /** Listener tag from smtpd.conf. */
  tag?: string;
  helo?: string;
  esmtp: boolean;
  tls?: { protocol: string; cipher: string; bits: number; sni?: string };
  authUser?: string;
  /** Current transaction; undefined outside MAIL ... end of DATA. */
  sender?: string;
  recipients: string[];
}

export type Hook = (ctx: HookContext) => HookDecision | Promise<HookDecision>;
/** Several hooks may run for a phase, in order; the first that does not proceed decides. */
export type Hooks = Partial<Record<Phase, Hook[]>>;
