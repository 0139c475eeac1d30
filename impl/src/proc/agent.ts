/**
 * A delivery agent: the program the parent forks, already as the
 * recipient's user, when the dispatcher asks for one (OpenSMTPD forks a
 * child per delivery and drops to the user in it; a Node process costs
 * too much to start per message, so an agent lives on and delivers
 * every message for its user until the dispatcher closes its socket).
 *
 * It gets its configuration from the parent, never from the dispatcher,
 * and this is the safety net of allow-exec: before it runs a command it
 * checks, against that configuration, that the action named by the
 * envelope allows commands from where this one came from, and that the
 * account it runs as is the one that source gives. An envelope changed
 * on disk, or committed by a taken-over smtp, is refused here.
 */
import { Socket } from 'node:net';
import type { LocalAction } from '../config/index.ts';
import { isRelay } from '../config/index.ts';
import { deliverLocal, mayRunAs, mayRunCommand, type DeliveryOutcome, type Dotlock, type UserRecord } from '../delivery/index.ts';
import { createLogger } from '../log/index.ts';
import { agentChannel, agentControlChannel, agentParentChannel } from './channels/delivery.ts';
import { fromWire } from './channels/queue.ts';
import { ContentInbox } from './content-stream.ts';
import { Peer } from './peer.ts';
import { socketTransport } from './transport.ts';

const log = createLogger({ verbose: 0, trace: new Set(), format: 'foreground' });
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {});

/** The two sockets the parent started this process with (see spawnWithSockets): to the parent, to the dispatcher. */
const PARENT_FD = 3;
const DISPATCHER_FD = 4;

// When the parent's socket closes (the parent is gone, or it closed the
// channel because of something this process sent), there is no one left
// to answer to.
const parent = new Peer({
  self: 'agent',
  peer: 'parent',
  transport: socketTransport(new Socket({ fd: PARENT_FD, readable: true, writable: true })),
  log,
  calls: agentParentChannel,
  onClose: () => process.exit(0),
  serves: {
    channel: agentControlChannel,
    handlers: {
      'agent.start': (msg) => {
        log.configure({ verbose: msg.verbose, trace: new Set(msg.trace), format: msg.format });
        process.title = `smtpd: delivery agent for ${msg.user.name}`;
        const dispatcher = new Socket({ fd: DISPATCHER_FD, readable: true, writable: true });
        serve(dispatcher, msg.user, msg.actions.filter((a): a is LocalAction => !isRelay(a)), msg);
        return { pid: process.pid };
      },
    },
  },
});

interface AgentSettings {
  hostname: string;
  wrappers: { name: string; command: string }[];
  subaddressDelimiter: string;
  allowRoot: boolean;
}

function serve(socket: Socket, self: UserRecord, actions: LocalAction[], settings: AgentSettings): void {
  const transport = socketTransport(socket);
  const inbox = new ContentInbox((ref, bytes) => transport.sendCredit(ref, bytes));
  const peer = new Peer({
    self: `agent ${self.name}`,
    peer: 'dispatcher',
    transport,
    log,
    onChunk: (ref, bytes) => inbox.chunk(ref, bytes),
    onAbandon: (ref) => inbox.abandon(ref),
    onClose: () => process.exit(0),
    serves: {
      channel: agentChannel,
      handlers: {
        'agent.deliver': async ({ ref, envelope: wire, user }) => {
          const content = inbox.take(ref);
          try {
            return flatten(await deliverOne(fromWire(wire), user, content));
          } finally {
            content.resume();
          }
        },
      },
    },
  });
  void peer;

  // #region safety-net
  /**
   * The last check before anything runs, made by the process that would
   * run it. The action comes from smtpd.conf as the parent sent it; the
   * envelope says only which action and where its command came from, and
   * the configuration decides whether that source may run commands; then
   * the account is checked against that source: a ~/.forward's command
   * must be in the user's ~/.forward, read here as the user, and an
   * alias's must run as the action's `user` or the daemon's account.
   */
  async function deliverOne(envelope: ReturnType<typeof fromWire>, user: UserRecord, content: NodeJS.ReadableStream): Promise<DeliveryOutcome> {
    const id = envelope.id.toString(16).padStart(16, '0');
    if (user.uid !== self.uid || user.gid !== self.gid) {
      return { result: 'tempfail', reason: `agent for ${self.name} asked to deliver as ${user.name}` };
    }
    const action = actions.find((a) => a.name === envelope.dispatcher);
    if (!action) return { result: 'tempfail', reason: `no local action named "${envelope.dispatcher}"` };
    let verdict = mayRunCommand(action, envelope.delivery);
    if (verdict.allowed) verdict = await mayRunAs(action, envelope.delivery, user);
    if (!verdict.allowed) {
      const kind = envelope.delivery?.kind === 'file' ? 'file' : 'command';
      log.warn(`warn: agent: envelope ${id}: refusing to ${kind === 'file' ? 'append to a file' : 'run a command'}: ${verdict.reason}`);
      return { result: 'tempfail', reason: `${kind} refused: ${verdict.reason}` };
    }
    const wrapper = action.options.wrapper ? settings.wrappers.find((w) => w.name === action.options.wrapper)?.command : undefined;
    return deliverLocal(
      {
        envelope, action: action.name, method: action.method, actionOptions: action.options, user,
        hostname: settings.hostname, subaddressDelimiter: settings.subaddressDelimiter,
        ...(wrapper !== undefined && { wrapper }),
      },
      content as import('node:stream').Readable,
      { allowRoot: settings.allowRoot, lockMailbox: (path) => lockMailbox(user, path) },
    );
  }
  // #endregion safety-net
}

/**
 * The dot lock of a user's system mailbox, taken by the parent, which
 * creates the mailbox too if it is missing: this process runs as the
 * user, and /var/mail may be writable by root and the mail group only.
 * `user` is the account of the delivery: this agent serves every
 * account with its uid and gid.
 */
async function lockMailbox(user: UserRecord, path: string): Promise<Dotlock> {
  const { lock } = await parent.request({ type: 'parent.mbox.lock', user, path }, { timeoutMs: 30_000 });
  return {
    path: `${path}.lock`,
    release: async () => {
      await parent.request({ type: 'parent.mbox.unlock', lock }).catch((e: Error) => log.warn(`warn: agent: ${path}.lock: ${e.message}`));
    },
  };
}

function flatten(outcome: DeliveryOutcome) {
  return outcome.result === 'ok'
    ? { result: 'ok' as const, ...(outcome.detail !== undefined && { detail: outcome.detail }) }
    : { result: outcome.result, reason: outcome.reason };
}
