/**
 * The delivery path, as OpenSMTPD's imsgs run it (scheduler.c, queue.c,
 * mda.c): the scheduler decides when; the queue, the only process that
 * reads the spool, loads the envelope and sends it with the message's
 * content to the dispatcher; the dispatcher hands it to a delivery agent
 * running as the recipient's user; the outcome comes back the same way,
 * and the queue writes it to disk before the scheduler hears of it.
 *
 *     scheduler --queue.deliver--> queue --dispatcher.deliver + content--> dispatcher
 *     dispatcher --agent.deliver + content--> agent (as the user)
 */
import type { ActionDecl } from '../../config/index.ts';
import { TRACE_FLAGS } from '../../log/index.ts';
import { channel, type RequestOf } from '../protocol.ts';
import { array, boolean, hex, number, object, oneOf, optional, ProtocolError, string, uint32, type Infer, type Schema } from '../schema.ts';
import { wireEnvelope } from './queue.ts';

/*
 * The time limits of the delivery path, each inside the one above it, so
 * that an answer one process has given up on is never still on its way
 * below it: a delivery that succeeded after the queue had written "failed
 * for now" would be made a second time by the retry.
 */
/** dispatcher: the longest a delivery waits for a slot (proc/delivery-slots.ts). */
export const SLOT_WAIT_MS = 5 * 60_000;
/** dispatcher -> agent: one delivery (an mda, an LMTP transaction, a large message). */
export const AGENT_DELIVERY_MS = 10 * 60_000;
/** queue -> dispatcher: a slot, then the delivery. */
export const DISPATCH_MS = SLOT_WAIT_MS + AGENT_DELIVERY_MS + 30_000;
/** scheduler -> queue: the dispatch, then the outcome written to disk. */
export const QUEUE_DELIVER_MS = DISPATCH_MS + 30_000;

/** How a delivery ended: the DeliveryOutcome of delivery/types.ts, flattened for the wire. */
export const outcome = object({
  result: oneOf(['ok', 'tempfail', 'permfail']),
  reason: optional(string),
  detail: optional(string),
});
export type WireOutcome = Infer<typeof outcome>;

/** What the scheduler hears back about one envelope it asked the queue to deliver. */
const delivered = object({
  result: oneOf(['ok', 'tempfail', 'permfail', 'gone']),
  reason: optional(string),
  /** After a tempfail: the envelope's attempts as now on disk. */
  attempts: optional(uint32),
});
export type Delivered = Infer<typeof delivered>;

/** An envelope as the scheduler keeps it: enough to decide when, never what. */
export const scheduledEntry = object({
  id: hex(16),
  messageId: uint32,
  dispatcher: string,
  createdAt: number,
  expiresAt: number,
  attempts: uint32,
  lastTryAt: optional(number),
  warnings: optional(uint32),
  bounce: optional(oneOf(['yes'])),
  notifyDelay: optional(oneOf(['no'])),
});
export type ScheduledEntry = Infer<typeof scheduledEntry>;

/** queue -> scheduler: envelopes now on disk (committed, or found at start-up), to be scheduled. */
export const schedulerChannel = channel('scheduler', {
  'scheduler.envelopes.add': {
    request: object({ envelopes: array(scheduledEntry, 100_000) }),
    response: object({ scheduled: uint32 }),
  },
});
export type SchedulerRequest = RequestOf<typeof schedulerChannel['calls']>;

/**
 * scheduler -> queue: deliver this envelope now; bounce these (they
 * failed for good, or their time ran out: `reason` says which); warn
 * their senders of the delay. The queue writes each outcome to disk
 * before it answers.
 */
export const queueDeliveryChannel = channel('queue-delivery', {
  'queue.deliver': { request: object({ id: hex(16) }), response: delivered },
  'queue.bounce': {
    request: object({ ids: array(hex(16), 10_000), reason: oneOf(['permfail', 'expired']) }),
    response: object({ removed: uint32 }),
  },
  'queue.warn': { request: object({ ids: array(hex(16), 10_000) }), response: object({ warned: uint32 }) },
});
export type QueueDeliveryRequest = RequestOf<typeof queueDeliveryChannel['calls']>;

/**
 * queue -> dispatcher: one envelope and its message. The content follows
 * the request as chunk frames tagged with `ref`, then an empty chunk
 * marks its end; the answer comes once the agent has finished.
 */
export const dispatcherChannel = channel('dispatcher', {
  'dispatcher.deliver': { request: object({ ref: uint32, envelope: wireEnvelope }), response: outcome },
});
export type DispatcherRequest = RequestOf<typeof dispatcherChannel['calls']>;

/** The account a delivery agent runs as, as the dispatcher looked it up. */
export const userRecord = object({ name: string, uid: uint32, gid: uint32, home: string, shell: optional(string) });

/** dispatcher -> agent: the same, with the user resolved. The agent decides on its own what the action allows. */
export const agentChannel = channel('agent', {
  'agent.deliver': { request: object({ ref: uint32, envelope: wireEnvelope, user: userRecord }), response: outcome },
});
export type AgentRequest = RequestOf<typeof agentChannel['calls']>;

/**
 * The actions of smtpd.conf, as the parent parsed them. They come from
 * the one process that is trusted anyway, so only their outline is
 * checked (as control.ts does for the whole configuration).
 */
const actionList: Schema<ActionDecl[]> = {
  expected: 'a list of actions',
  parse(v, p = '') {
    if (!Array.isArray(v)) throw new ProtocolError(p, 'a list of actions');
    v.forEach((a: unknown, i) => {
      const ok = typeof a === 'object' && a !== null && typeof (a as Record<string, unknown>)['name'] === 'string'
        && typeof (a as Record<string, unknown>)['method'] === 'object' && typeof (a as Record<string, unknown>)['options'] === 'object';
      if (!ok) throw new ProtocolError(`${p}[${i}]`, 'an action');
    });
    return v as ActionDecl[];
  },
};

/**
 * parent -> agent, once, over the agent's socket to the parent: who it
 * is, and the configuration it checks commands against. Its socket to
 * the dispatcher came with it at start (descriptor 4).
 */
export const agentControlChannel = channel('agent-control', {
  'agent.start': {
    request: object({
      user: userRecord,
      actions: actionList,
      wrappers: array(object({ name: string, command: string }), 1_000),
      hostname: string,
      subaddressDelimiter: string,
      allowRoot: boolean,
      verbose: number,
      trace: array(oneOf(TRACE_FLAGS)),
      format: oneOf(['foreground', 'maillog']),
    }),
    response: object({ pid: number }),
  },
});

/**
 * agent -> parent, over the same socket: the dot lock of a system
 * mailbox, taken and released by the parent, which also creates the
 * mailbox if it is missing (parent/mailbox.ts). `user` is the account
 * the delivery is for (one agent serves every account with its uid and
 * gid), `path` what the agent will append to; the parent refuses an
 * account of another uid or gid, or one no userbase has, and any path
 * but the one it makes from the account.
 */
export const agentParentChannel = channel('agent-parent', {
  'parent.mbox.lock': { request: object({ user: userRecord, path: string }), response: object({ lock: uint32 }) },
  'parent.mbox.unlock': { request: object({ lock: uint32 }), response: object({}) },
});
