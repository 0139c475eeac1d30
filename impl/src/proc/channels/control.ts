/**
 * What the parent says to every child over fork()'s IPC channel: set
 * yourself up, here is a socket to a peer, here is a listener, start,
 * ping, drain, stop. What children ask the parent is in parent.ts.
 */
import type { Config } from '../../config/index.ts';
import { channel, type RequestOf } from '../protocol.ts';
import { PROCESS_NAMES } from '../processes.ts';
import {
  array, number, object, oneOf, optional, ProtocolError, string, uint32, type Infer, type Schema,
} from '../schema.ts';
import { TRACE_FLAGS } from '../../log/index.ts';

/**
 * The configuration the parent parsed. A child does not read smtpd.conf
 * itself (as _smtpd it may not be allowed to); the parent sends the
 * parsed tree. It comes from the one process that is trusted anyway, so
 * only its outline is checked: an object whose lists are lists.
 */
const config: Schema<Config> = {
  expected: 'a parsed configuration',
  parse(v, p = '') {
    const keys = ['statements', 'macros', 'tables', 'pkis', 'cas', 'listeners', 'actions', 'wrappers', 'rules', 'filters', 'procs', 'options'];
    if (typeof v !== 'object' || v === null) throw new ProtocolError(p, 'a parsed configuration');
    for (const key of keys) {
      if (!Array.isArray((v as Record<string, unknown>)[key])) throw new ProtocolError(`${p}.${key}`, 'an array');
    }
    return v as Config;
  },
};

const empty = object({});

/** A listener as the smtp process needs it: where, and what the `listen on` line asked for. */
export const listenerInfo = object({
  address: string,
  port: uint32,
  tag: optional(string),
  hostname: optional(string),
  tls: optional(oneOf(['starttls', 'tls-require', 'smtps'])),
  pki: optional(string),
  /** 1-based index of the `listen on` statement, to find the rest of it in the configuration. */
  statement: uint32,
});
export type ListenerInfo = Infer<typeof listenerInfo>;

/**
 * A pki as the parent loaded it (as root: key files are 0600 root), for
 * the process that terminates TLS. PEM text: a KeyObject cannot cross.
 */
export const pkiMaterial = object({
  name: string,
  chain: string,
  key: string,
  keyType: oneOf(['rsa', 'ec']),
  names: array(string),
  dhe: optional(oneOf(['none', 'auto', 'legacy'])),
});
export type PkiMaterial = Infer<typeof pkiMaterial>;

export const controlChannel = channel('control', {
  'proc.init': {
    request: object({
      name: oneOf(PROCESS_NAMES),
      config,
      spool: string,
      queueBackend: string,
      verbose: number,
      trace: array(oneOf(TRACE_FLAGS)),
      format: oneOf(['foreground', 'maillog']),
      pkis: array(pkiMaterial),
    }),
    response: object({ pid: number }),
  },
  /** One end of a socket to a peer child; the handle is the socket. */
  'proc.link': { request: object({ peer: oneOf(PROCESS_NAMES) }), response: empty, handle: 'socket' },
  /** A bound, listening socket for smtp; the handle is the net.Server. */
  'smtp.listener': { request: listenerInfo, response: empty, handle: 'server' },
  /** A client the parent accepted on listener number `listener` (0-based, in the order sent) before smtp was ready. */
  'smtp.connection': { request: object({ listener: uint32 }), response: empty, handle: 'socket' },
  /** The dispatcher's end of a socket to a delivery agent it asked for (`parent.agent.open` with this token). */
  'proc.agent': { request: object({ token: string }), response: empty, handle: 'socket' },
  /** Everything has arrived: begin work, and answer when ready. */
  'proc.start': { request: empty, response: empty },
  'proc.ping': {
    request: empty,
    response: object({ name: string, pid: number, uid: number, gid: number, title: string }),
  },
  /**
   * Take no new work, let what is under way finish until the deadline;
   * answers how many had to be cut (smtp: sessions; the scheduler: hands
   * out nothing more; the dispatcher: deliveries).
   */
  'proc.drain': { request: object({ deadlineMs: number }), response: object({ cut: number }) },
  /** Release everything and answer; the child exits right after. */
  'proc.stop': { request: empty, response: empty },
});

export type ControlRequest = RequestOf<typeof controlChannel['calls']>;
