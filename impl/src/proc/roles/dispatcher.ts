/**
 * The dispatcher: takes an envelope and its message from the queue and
 * gets it delivered. For a local action, by a delivery agent running as
 * the recipient's user, which the parent starts on request (it is root;
 * the dispatcher is not) and which stays up for the next message to the
 * same user. Relay actions wait for remote delivery, which is not built
 * yet: their envelopes fail temporarily and stay in the queue.
 *
 * The dispatcher never decides whether a command may run: the agent
 * checks that itself, against smtpd.conf as the parent gave it, so a
 * dispatcher with a bug, or an envelope changed on disk, cannot make it.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Config } from '../../config/index.ts';
import { isRelay } from '../../config/index.ts';
import type { UserRecord } from '../../delivery/index.ts';
import { openUserbase, type Userbase } from '../../expand/index.ts';
import type { Logger } from '../../log/index.ts';
import type { Envelope } from '../../queue/types.ts';
import { AGENT_DELIVERY_MS, agentChannel, dispatcherChannel, SLOT_WAIT_MS, type WireOutcome } from '../channels/delivery.ts';
import { fromWire } from '../channels/queue.ts';
import { ContentInbox, sendContent } from '../content-stream.ts';
import { DEFAULT_SLOT_LIMITS, DeliverySlots, SlotUnavailable } from '../delivery-slots.ts';
import { Peer } from '../peer.ts';
import type { Role, RoleContext } from '../role.ts';
import { ChannelRefused, socketTransport } from '../transport.ts';

type AgentPeer = Peer<Record<never, never>, typeof agentChannel['calls']>;

/** Deliveries into a user's own Maildir: see counted(). */
const MAILDIR_SLOT_LIMITS = { total: Infinity, perUser: 100 };
/** An agent with nothing to do for this long is closed; it exits when its socket closes. */
const AGENT_IDLE_MS = 60_000;
/** A delivery may take this long (an mda, an LMTP server) before it counts as a temporary failure. */
export const DELIVERY_TIMEOUT_MS = AGENT_DELIVERY_MS;

export async function startDispatcher(ctx: RoleContext): Promise<Role> {
  const { config, log } = ctx;
  const socket = ctx.links.get('queue');
  if (!socket) throw new Error('dispatcher: no link to the queue');
  const agents = new AgentPool(ctx);
  const slots = new DeliverySlots({ ...DEFAULT_SLOT_LIMITS, waitMs: SLOT_WAIT_MS });
  const maildirSlots = new DeliverySlots({ ...MAILDIR_SLOT_LIMITS, waitMs: SLOT_WAIT_MS });
  const users = new Map<string, Userbase>();
  const fromQueue = socketTransport(socket);
  const inbox = new ContentInbox((ref, bytes) => fromQueue.sendCredit(ref, bytes));
  let nextRef = 1;
  /** Deliveries under way, and who waits for them to be none (see drain). */
  let running = 0;
  let idle: (() => void) | undefined;

  const deliver = async (envelope: Envelope, content: NodeJS.ReadableStream): Promise<WireOutcome> => {
    const action = config.actions.find((a) => a.name === envelope.dispatcher);
    if (!action) return { result: 'tempfail', reason: `no action named "${envelope.dispatcher}" in smtpd.conf` };
    if (isRelay(action)) return { result: 'tempfail', reason: 'remote delivery is not built yet; the message waits in the queue' };
    if (action.method.kind === 'forward-only' || action.method.kind === 'expand-only') {
      return { result: 'permfail', reason: `action "${action.name}" (${action.method.kind}) delivers to no mailbox` };
    }
    const name = envelope.delivery?.user ?? envelope.recipient.user;
    // An alias's or a virtual entry's file or command runs as the action's `user` or the
    // daemon's own account: a system account, looked up with getpwnam as smtpd.conf(5) says
    // of `user`, never in the action's userbase, which holds the mailbox owners.
    const delivery = envelope.delivery;
    const systemAccount = delivery !== undefined && delivery.kind !== 'mailbox' && delivery.source?.kind !== 'forward';
    const user = userbaseOf(config, systemAccount || isRelay(action) ? undefined : action.options.userbase, users).get(name);
    if (!user) return { result: 'permfail', reason: `no such user: ${name}` };
    let slot: () => void;
    try {
      slot = await (counted(action.method.kind, delivery) ? slots : maildirSlots).acquire(user.name);
    } catch (err) {
      if (!(err instanceof SlotUnavailable)) throw err;
      return { result: 'tempfail', reason: err.message };
    }
    let lease: AgentLease;
    try {
      lease = await agents.get(user);
    } catch (err) {
      slot();
      if (!(err instanceof AgentRefused)) throw err;
      return { result: 'permfail', reason: `not allowed to deliver to ${user.name} (uid ${user.uid}): ${err.message}: alias it to an unprivileged user` };
    }
    const { peer: agent, release } = lease;
    try {
      const ref = nextRef++;
      const answer = agent.request(
        { type: 'agent.deliver', ref, envelope: { ...toWireEnvelope(envelope) }, user },
        { timeoutMs: DELIVERY_TIMEOUT_MS },
      );
      await sendContent(agent.transport, ref, content, answer);
      return await answer;
    } finally {
      release();
      slot();
    }
  };

  const queue = new Peer({
    self: 'dispatcher',
    peer: 'queue',
    transport: fromQueue,
    log,
    onChunk: (ref, bytes) => inbox.chunk(ref, bytes),
    onAbandon: (ref) => inbox.abandon(ref),
    onClose: (reason) => inbox.fail(reason),
    serves: {
      channel: dispatcherChannel,
      handlers: {
        'dispatcher.deliver': async ({ ref, envelope: wire }) => {
          const envelope = fromWire(wire);
          const content = inbox.take(ref);
          let outcome: WireOutcome;
          running += 1;
          try {
            outcome = await deliver(envelope, content);
          } catch (err) {
            outcome = { result: 'tempfail', reason: (err as Error).message };
          } finally {
            content.resume(); // whatever the agent did not read is drained, so the stream ends
            running -= 1;
            if (running === 0) idle?.();
          }
          logDelivery(log, envelope, outcome);
          return outcome;
        },
      },
    },
  });

  return {
    /**
     * The daemon is stopping, and the scheduler hands out nothing more:
     * let the deliveries under way end while the queue is still there to
     * record them. One cut off now (an mda halfway, an LMTP transaction)
     * would be tried again after the restart, and perhaps delivered twice.
     */
    drain: async (deadlineMs) => {
      slots.close('the daemon is stopping');
      maildirSlots.close('the daemon is stopping');
      if (running === 0) return 0;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        idle = resolve;
        timer = setTimeout(resolve, deadlineMs);
      });
      clearTimeout(timer);
      idle = undefined;
      return running;
    },
    stop: async () => {
      queue.close();
      agents.close();
    },
  };
}

/**
 * Whether a delivery takes one of the slots OpenSMTPD's limits give (see
 * DeliverySlots): all but a message into the user's own Maildir, which
 * the agent writes itself in about a millisecond, starting no process and
 * opening no connection. Those overlap more freely, and share the fsync
 * of new/: with seven at a time for one user, the benchmark's 100
 * sessions went from about 2,700 to 1,660 messages a second. They have
 * slots of their own, many more (MAILDIR_SLOT_LIMITS), so that a Maildir
 * that hangs (a home on a dead NFS server) holds up at most that many of
 * the scheduler's `max-inflight`, and everyone else's mail goes on.
 */
function counted(method: string, delivery: Envelope['delivery']): boolean {
  return !(method === 'maildir' && (delivery === undefined || delivery.kind === 'mailbox'));
}

/** The envelope as it travels, with its 64-bit id as hex. */
function toWireEnvelope(e: Envelope) {
  return { ...e, id: e.id.toString(16).padStart(16, '0') };
}

/** The userbase named `table` (the system's accounts if undefined), opened once. */
function userbaseOf(config: Config, table: string | undefined, cache: Map<string, Userbase>): Userbase {
  const key = table ?? '';
  let userbase = cache.get(key);
  if (!userbase) {
    userbase = openUserbase(config, table);
    cache.set(key, userbase);
  }
  return userbase;
}

/**
 * One line per delivery, in OpenSMTPD's words, so that tools that read
 * its maillog read ours: `delivery evpid=... from=<...> to=<...>
 * rcpt=<...> user=... delay=... result=Ok|TempFail|PermFail stat=...`.
 */
function logDelivery(log: Logger, e: Envelope, outcome: WireOutcome): void {
  const address = (a: { user: string; domain: string } | null) => (a ? `${a.user}@${a.domain}` : '');
  const result = outcome.result === 'ok' ? 'Ok' : outcome.result === 'tempfail' ? 'TempFail' : 'PermFail';
  const stat = outcome.result === 'ok' ? 'Delivered' : (outcome.reason ?? '');
  const delay = Math.max(0, Math.round(Date.now() / 1000 - e.createdAt));
  const id = e.id.toString(16).padStart(16, '0');
  const line = `${id} mda delivery evpid=${id} from=<${address(e.sender)}> to=<${address(e.originalRecipient)}> ` +
    `rcpt=<${address(e.recipient)}> user=${e.delivery?.user ?? e.recipient.user} delay=${delay}s ` +
    `result=${result} stat=${stat}`;
  if (outcome.result === 'ok') log.info(line);
  else log.warn(line);
  if (outcome.detail !== undefined) log.debug(`debug: mda: envelope ${id}: ${outcome.detail}`);
}

interface AgentEntry {
  peer: Promise<AgentPeer>;
  idle?: NodeJS.Timeout;
  /** When the idle timer started: the agent idle longest goes first when the parent runs as many as it may. */
  idleSince?: number;
  /** Deliveries under way on this agent. */
  busy: number;
}

/** The parent will never start an agent for this user: deliveries to it fail for good. */
export class AgentRefused extends Error {}

/** An agent lent for one delivery; give it back with release() when the delivery has ended. */
interface AgentLease {
  peer: AgentPeer;
  release(): void;
}

/**
 * The agents, one per uid and gid (the virtual users of a userbase often
 * share one: they get one agent, not one each), started through the
 * parent. A request for a user whose agent is being started waits for
 * that start rather than starting a second one.
 */
export class AgentPool {
  private readonly agents = new Map<string, AgentEntry>();

  constructor(
    private readonly ctx: Pick<RoleContext, 'parent' | 'takeAgentSocket' | 'log'>,
    private readonly idleMs = AGENT_IDLE_MS,
  ) {}

  async get(user: UserRecord): Promise<AgentLease> {
    const key = `${user.uid}:${user.gid}`;
    let entry = this.agents.get(key);
    if (entry) {
      const peer = await entry.peer;
      if (!peer.isClosed) return this.lend(key, entry, peer);
      if (this.agents.get(key) === entry) this.agents.delete(key);
    }
    const fresh: AgentEntry = { peer: this.open(user), busy: 0 };
    this.agents.set(key, fresh);
    fresh.peer.catch(() => {
      if (this.agents.get(key) === fresh) this.agents.delete(key);
    });
    return this.lend(key, fresh, await fresh.peer);
  }

  close(): void {
    for (const entry of this.agents.values()) {
      clearTimeout(entry.idle);
      void entry.peer.then((peer) => peer.close(), () => {});
    }
    this.agents.clear();
  }

  /**
   * A delivery starts: the agent is busy, and no idle timer runs. An
   * agent is closed only a minute after its last delivery ended, never
   * while one runs: closing it then would cut off an mda that is still
   * writing, and the retry would deliver the message again. A delivery
   * that takes too long ends by its own time limit.
   */
  private lend(key: string, entry: AgentEntry, peer: AgentPeer): AgentLease {
    clearTimeout(entry.idle);
    entry.idle = undefined;
    entry.idleSince = undefined;
    entry.busy += 1;
    let released = false;
    return {
      peer,
      release: () => {
        if (released) return;
        released = true;
        entry.busy -= 1;
        if (entry.busy > 0 || peer.isClosed || this.agents.get(key) !== entry) return;
        entry.idleSince = Date.now();
        entry.idle = setTimeout(() => {
          if (entry.busy > 0 || this.agents.get(key) !== entry) return;
          this.agents.delete(key);
          peer.close();
        }, this.idleMs);
        entry.idle.unref();
      },
    };
  }

  /**
   * The parent runs as many agents as it may (MAX_AGENTS in
   * parent/services.ts), and the delivery that asked for one more fails
   * for now. The agent idle longest is closed at once rather than at the
   * end of its idle minute, so that the retry finds room: without this,
   * a user's mail would wait while agents nobody needs sat idle.
   */
  private closeIdlest(): void {
    let idlest: [string, AgentEntry] | undefined;
    for (const [key, entry] of this.agents) {
      if (entry.idleSince !== undefined && (idlest === undefined || entry.idleSince < idlest[1].idleSince!)) idlest = [key, entry];
    }
    if (!idlest) return;
    const [key, entry] = idlest;
    clearTimeout(entry.idle);
    this.agents.delete(key);
    void entry.peer.then((peer) => peer.close());
  }

  private async open(user: UserRecord): Promise<AgentPeer> {
    const token = randomBytes(8).toString('hex');
    const { refused, full } = await this.ctx.parent.request({ type: 'parent.agent.open', token, user }, { timeoutMs: 30_000 });
    if (refused !== undefined) throw new AgentRefused(refused);
    if (full !== undefined) {
      this.closeIdlest();
      throw new Error(full);
    }
    const socket: Socket | undefined = this.ctx.takeAgentSocket(token);
    if (!socket) throw new Error(`the parent did not hand over the agent for ${user.name}`);
    // The agent runs as its user, who can write anything to this socket.
    // What breaks the framing makes the transport drop the channel, with a
    // ChannelRefused: the agent exits, and the deliveries under way on it
    // fail for now. The log says so here, once, and whose agent it was.
    socket.on('error', (err) => {
      if (!(err instanceof ChannelRefused)) return;
      this.ctx.log.warn(`warn: dispatcher: dropped the channel to the delivery agent for ${user.name} (uid ${user.uid}): ${err.message}`);
    });
    return new Peer({
      self: 'dispatcher', peer: `agent ${user.name}`, transport: socketTransport(socket), calls: agentChannel, log: this.ctx.log,
    });
  }
}
