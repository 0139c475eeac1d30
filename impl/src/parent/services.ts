/**
 * What the parent does for its children, as root (see
 * proc/channels/parent.ts): open a user's ~/.forward for lookup, and
 * start a delivery agent as a user for the dispatcher. Each request is
 * answered only for the child whose role needs it: smtp, the process
 * that talks to strangers, can ask for neither. An agent may ask for
 * one thing, the lock of its own system mailbox (parent/mailbox.ts).
 */
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/index.ts';
import { isRelay } from '../config/index.ts';
import type { UserRecord } from '../delivery/index.ts';
import { oneLine } from '../delivery/failure.ts';
import { openUserbase, readForwardFile, type Userbase } from '../expand/index.ts';
import type { Logger, TraceFlag } from '../log/index.ts';
import { systemLocalNames } from '../lookup/index.ts';
import type { parentChannel } from '../proc/channels/parent.ts';
import { agentControlChannel, agentParentChannel } from '../proc/channels/delivery.ts';
import { Peer } from '../proc/peer.ts';
import type { Handlers } from '../proc/protocol.ts';
import { spawnWithSockets } from '../proc/spawn.ts';
import type { ParentHandlers } from '../proc/supervisor.ts';
import { socketTransport } from '../proc/transport.ts';
import type { Supervisor } from '../proc/supervisor.ts';
import { socketPair } from './links.ts';
import { mailboxService } from './mailbox.ts';

const AGENT_ENTRY = fileURLToPath(new URL('../proc/agent.ts', import.meta.url));

export interface ServiceOptions {
  config: Config;
  log: Logger;
  verbose: number;
  trace: ReadonlySet<TraceFlag>;
  foreground: boolean;
  supervisor: () => Supervisor;
  /** Deliver to uid 0 with any method (the embedded default, run by root); OpenSMTPD allows root only mbox. */
  allowRootDelivery?: boolean;
  /** The most delivery agents alive at once, MAX_AGENTS by default: tests start fewer. */
  maxAgents?: number;
}

export function parentServices(options: ServiceOptions): ParentHandlers {
  const { log } = options;
  const root = process.getuid?.() === 0;
  const refuse = (child: string, what: string) => {
    throw new Error(`${child} may not ask the parent to ${what}`);
  };
  /**
   * The parent does not take the dispatcher's word for who a user is: it
   * looks the name up again in the userbases smtpd.conf names (the
   * system's accounts, and each action's `userbase <table>`), and forks
   * only as an account one of them gives, with the same uid, gid and
   * home. Root is refused unless some action may deliver to it (OpenSMTPD
   * lets root receive mail by mbox only) or the embedded default allows it.
   */
  let userbases: Userbase[] | undefined;
  const locals = options.config.actions.filter((a) => !isRelay(a));
  const known = (user: UserRecord): boolean => {
    userbases ??= [
      openUserbase(options.config),
      ...[...new Set(locals.flatMap((a) => (isRelay(a) || !a.options.userbase ? [] : [a.options.userbase])))]
        .map((table) => openUserbase(options.config, table)),
    ];
    return userbases.some((base) => {
      const found = base.get(user.name);
      return found !== undefined && found.uid === user.uid && found.gid === user.gid && found.home === user.home;
    });
  };
  const vouch = (user: UserRecord): { doubt: string; permanent?: true } | undefined => {
    if (!known(user)) return { doubt: 'no userbase of smtpd.conf has this account' };
    const rootMayReceive = options.allowRootDelivery || locals.some((a) => a.method.kind === 'mbox');
    // Permanent, as the agent's own refusal of root is, and forkmda()'s MDA_PERMFAIL: no retry will change it.
    if (user.uid === 0 && !rootMayReceive) return { doubt: 'root receives mail by mbox only, and no action delivers by mbox', permanent: true };
    return undefined;
  };

  const admitAgent = agentCounter(log, options.maxAgents ?? MAX_AGENTS);

  return (child: string): Handlers<typeof parentChannel['calls']> => ({
    'parent.forward.open': async ({ user }) => {
      if (child !== 'lookup') refuse(child, 'open a ~/.forward');
      // The same doubt as for an agent: lookup's word is not enough to read a file as root.
      if (!known(user)) {
        log.warn(`warn: smtpd: refusing to read ~/.forward of ${user.name} (uid ${user.uid}, home ${user.home}): no userbase of smtpd.conf has this account`);
        throw new Error(`no userbase of smtpd.conf has the account ${user.name} (uid ${user.uid}, home ${user.home})`);
      }
      const file = await readForwardFile(user);
      if (file.status === 'refused' || file.status === 'error') {
        log.warn(`warn: smtpd: ${file.path}: ${file.reason}`);
      }
      return file;
    },

    // #region agent-open
    /**
     * A delivery agent for one user: started as that user when the daemon
     * runs as root (as OpenSMTPD's parent forks an MDA), as the daemon's
     * own user otherwise. It gets two sockets: one to the parent, for its
     * start and its mailbox locks, and one to the dispatcher, whose other
     * end goes to the dispatcher. The parent keeps neither of the second
     * pair, and reads none of the mail that crosses it. No Node IPC
     * channel: the user can write anything to the agent's end (see
     * spawnWithSockets).
     */
    'parent.agent.open': async ({ token, user }) => {
      if (child !== 'dispatcher') refuse(child, 'start a delivery agent');
      const refusal = vouch(user);
      if (refusal) {
        log.warn(`warn: smtpd: refusing a delivery agent for ${user.name} (uid ${user.uid}): ${refusal.doubt}`);
        if (refusal.permanent) return { refused: refusal.doubt };
        throw new Error(`no delivery agent for ${user.name}: ${refusal.doubt}`);
      }
      const dispatcher = options.supervisor().get('dispatcher');
      if (!dispatcher) throw new Error('no dispatcher');
      const admitted = admitAgent(user); // throws past MAX_AGENTS_PER_ACCOUNT for this uid and gid
      if ('full' in admitted) return admitted; // past MAX_AGENTS in all: the dispatcher tries later
      const { leave } = admitted;
      const [[forParent, toParent], [forDispatcher, forAgent]] = await Promise.all([socketPair(), socketPair()])
        .catch((err: unknown) => { leave(); throw err; });
      const agent = spawnWithSockets(AGENT_ENTRY, 'agent', [toParent, forAgent], {
        ...(root && { credentials: { user: user.name, uid: user.uid, gid: user.gid } }),
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...(process.env.SMTPD_NAMESERVERS && { SMTPD_NAMESERVERS: process.env.SMTPD_NAMESERVERS }) },
      });
      toParent.destroy();
      forAgent.destroy();
      // The agent runs as the user, and cannot create files in a
      // root:mail /var/mail: the parent takes its mailbox's lock for it.
      const mailbox = mailboxService(user, known);
      agent.on('error', (err) => {
        if (agent.pid === undefined) leave(); // never started: no exit to wait for
        log.warn(`warn: smtpd: delivery agent for ${user.name}: ${err.message}`);
      });
      agent.on('exit', (code, signal) => {
        leave();
        void mailbox.releaseAll();
        if (code !== 0) log.debug(`debug: smtpd: delivery agent for ${user.name} ended (${signal ?? code})`);
      });
      // The agent exits when this socket closes: on a malformed frame from
      // it, and when its start fails, as well as when the parent goes.
      const control = new Peer({
        self: 'parent', peer: `agent ${user.name}`, transport: socketTransport(forParent), calls: agentControlChannel, log,
        serves: { channel: agentParentChannel, handlers: mailbox.handlers },
        onClose: (reason) => {
          if (reason !== 'socket closed') log.warn(`warn: smtpd: delivery agent for ${user.name}: channel to the parent closed: ${reason}`);
        },
      });
      forParent.resume(); // socketPair() hands out its ends paused
      let pid: number;
      try {
        ({ pid } = await control.request({
          type: 'agent.start', user, actions: options.config.actions, wrappers: options.config.wrappers.map(({ name, command }) => ({ name, command })),
          hostname: systemLocalNames().hostname, subaddressDelimiter: subaddressDelimiter(options.config),
          allowRoot: options.allowRootDelivery ?? false, verbose: options.verbose, trace: [...options.trace],
          format: options.foreground ? 'foreground' : 'maillog',
        }, { timeoutMs: 30_000 }));
      } catch (err) {
        control.close();
        forDispatcher.destroy();
        throw err;
      }
      await dispatcher.control.request({ type: 'proc.agent', token }, { handle: forDispatcher });
      forDispatcher.destroy();
      log.debug(`debug: smtpd: delivery agent for ${user.name} started (pid ${pid})`);
      return { pid: String(pid) };
    },
    // #endregion agent-open

    'parent.link.lost': ({ peer, reason }) => {
      options.supervisor().lost(child, `dropped its channel to ${peer} (${oneLine(reason, 200)})`);
      return {};
    },
  });
}

/**
 * How many delivery agents may live at once for one uid and gid. The
 * dispatcher keeps one per uid and gid; a second may start while the
 * first, closed after its idle minute, is still on its way out. Without
 * a bound, a dispatcher in an attacker's hands could ask the root parent
 * for agent after agent for one user.
 */
export const MAX_AGENTS_PER_ACCOUNT = 2;

/**
 * How many delivery agents may live at once in all, whoever they are
 * for: the bound that MAX_AGENTS_PER_ACCOUNT is not when the dispatcher
 * (taken over, or delivering to many users at once) asks for agents for
 * user after user. An agent is a Node process of about 90 MB resident,
 * about 45 MB of it its own (the rest is Node's code, shared with the
 * other agents), so 64 of them cost some 3 GB at most. An honest
 * dispatcher runs at most 50 deliveries at once besides Maildir ones
 * (OpenSMTPD's MDA_MAXSESS, see delivery-slots.ts), each needing an agent
 * of its own at worst: 64 leaves room for agents in their idle minute.
 * Past it, the request fails for now, and the dispatcher lets one of its
 * idle agents go, so that the retry finds room.
 */
export const MAX_AGENTS = 64;

/**
 * Counts the live agents, per uid and gid and in all: admit() throws
 * past MAX_AGENTS_PER_ACCOUNT, answers `full` past `max`, and otherwise
 * gives what to call, once, when that agent has exited. Each refusal is
 * one warning.
 */
function agentCounter(log: Logger, max: number): (user: UserRecord) => { leave: () => void } | { full: string } {
  const live = new Map<string, number>();
  let total = 0;
  return (user) => {
    const key = `${user.uid}:${user.gid}`;
    const count = live.get(key) ?? 0;
    if (count >= MAX_AGENTS_PER_ACCOUNT) {
      log.warn(`warn: smtpd: refusing a delivery agent for ${user.name} (uid ${user.uid}, gid ${user.gid}): ${count} already run for that uid and gid`);
      throw new Error(`no delivery agent for ${user.name}: ${count} already run for uid ${user.uid} and gid ${user.gid}`);
    }
    if (total >= max) {
      log.warn(`warn: smtpd: refusing a delivery agent for ${user.name} (uid ${user.uid}, gid ${user.gid}): ${total} delivery agents already run, the most there may be`);
      return { full: `no delivery agent for ${user.name} for now: ${total} already run, the most there may be` };
    }
    live.set(key, count + 1);
    total += 1;
    let left = false;
    return {
      leave: () => {
        if (left) return;
        left = true;
        total -= 1;
        const now = (live.get(key) ?? 1) - 1;
        if (now > 0) live.set(key, now);
        else live.delete(key);
      },
    };
  };
}

/** `smtp sub-addr-delim`, `+` by default; the last one written counts. */
function subaddressDelimiter(config: Config): string {
  const option = config.options.findLast((o) => o.kind === 'smtp sub-addr-delim');
  return option?.kind === 'smtp sub-addr-delim' ? option.delimiter : '+';
}
