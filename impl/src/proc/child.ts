/**
 * The program every child runs: `child.ts <name>`. It names itself in
 * `ps`, waits for the parent to tell it everything (configuration,
 * sockets, listeners), starts its role, and exits when the parent says
 * so or goes away.
 */
import type { Server, Socket } from 'node:net';
import type { Config } from '../config/index.ts';
import { createLogger } from '../log/index.ts';
import { controlChannel, type PkiMaterial } from './channels/control.ts';
import { parentChannel } from './channels/parent.ts';
import { HandedListener } from './handed-listener.ts';
import { Peer } from './peer.ts';
import { isProcessName, type ProcessName } from './processes.ts';
import type { Role, RoleContext, StartRole } from './role.ts';
import { ChannelRefused, ipcTransport } from './transport.ts';

/** Each role's code is loaded only in its own process: smtp never loads the spool code, nor the queue the SMTP parser. */
const ROLES: Record<ProcessName, () => Promise<StartRole>> = {
  smtp: async () => (await import('./roles/smtp.ts')).startSmtp,
  lookup: async () => (await import('./roles/lookup.ts')).startLookup,
  queue: async () => (await import('./roles/queue.ts')).startQueue,
  scheduler: async () => (await import('./roles/scheduler.ts')).startScheduler,
  dispatcher: async () => (await import('./roles/dispatcher.ts')).startDispatcher,
  crypto: async () => (await import('./roles/idle.ts')).startIdle,
  control: async () => (await import('./roles/idle.ts')).startIdle,
};

const name = process.argv[2];
if (!isProcessName(name) || !process.send) {
  process.stderr.write(`smtpd: ${String(name)}: not a process of the daemon, or not started by it\n`);
  process.exit(1);
}

// #region child-setup
/**
 * `ps` shows `smtpd: queue`, as it does for OpenSMTPD. Node rewrites the
 * process's argv memory, so the title can be no longer than the command
 * line it replaces, which the loader's long path guarantees.
 *
 * A child ignores SIGINT, SIGTERM and SIGHUP: Ctrl-C in `smtpd -d`
 * reaches the whole process group, and if each child died on its own the
 * parent could not drain sessions and stop them in order. The parent
 * decides; a child ends when told to, or when the parent's channel
 * closes, which is also what happens if the parent dies.
 */
process.title = `smtpd: ${name}`;
const log = createLogger({ verbose: 0, trace: new Set(), format: 'foreground' });
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => log.debug(`debug: ${name}: ${signal} ignored; the parent stops this process`));
}
process.on('uncaughtException', (err) => {
  log.crit(`fatal in ${name}: ${err.stack ?? err.message}`);
  process.exit(1);
});
let stopped = false;
process.on('disconnect', () => {
  if (!stopped) log.warn(`warn: ${name}: the parent went away; exiting`);
  process.exit(stopped ? 0 : 1);
});
// #endregion child-setup

let config: Config | undefined;
let spool = '';
let queueBackend = 'fs';
let pkis: PkiMaterial[] = [];
let role: Role | undefined;
const links = new Map<ProcessName, Socket>();
const listeners: HandedListener[] = [];
const agentSockets = new Map<string, Socket>();

const parent = new Peer({
  self: name,
  peer: 'parent',
  transport: ipcTransport(process),
  log,
  calls: parentChannel,
  serves: {
    channel: controlChannel,
    handlers: {
      'proc.init': (msg) => {
        log.configure({ verbose: msg.verbose, trace: new Set(msg.trace), format: msg.format });
        if (msg.name !== name) throw new Error(`this process is ${name}, not ${msg.name}`);
        ({ config, spool, queueBackend, pkis } = msg);
        return { pid: process.pid };
      },
      'proc.link': (msg, handle) => {
        links.set(msg.peer, handle as Socket);
        watchLink(msg.peer, handle as Socket);
        return {};
      },
      'smtp.listener': ({ type: _type, ...info }, handle) => {
        listeners.push(new HandedListener(info, handle as Server));
        return {};
      },
      'proc.agent': ({ token }, handle) => {
        agentSockets.set(token, handle as Socket);
        return {};
      },
      'smtp.connection': ({ listener }, handle) => {
        const handed = listeners[listener];
        if (!handed) throw new Error(`no listener ${listener}`);
        handed.adopt(handle as Socket);
        return {};
      },
      'proc.start': async () => {
        if (!config) throw new Error('proc.start before proc.init');
        const start = await ROLES[name]();
        const takeAgentSocket = (token: string) => {
          const socket = agentSockets.get(token);
          agentSockets.delete(token);
          return socket;
        };
        const toParent = parent as unknown as RoleContext['parent'];
        role = await start({ name, log, config, spool, queueBackend, pkis, links, listeners, parent: toParent, takeAgentSocket });
        log.debug(`debug: ${name} process ready (pid ${process.pid})`);
        return {};
      },
      'proc.ping': () => ({ name, pid: process.pid, uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1, title: process.title }),
      'proc.drain': async (msg) => ({ cut: (await role?.drain?.(msg.deadlineMs)) ?? 0 }),
      'proc.stop': async () => {
        stopped = true;
        await role?.stop();
        return {};
      },
    },
  },
});

/**
 * A link to a neighbour that this process drops, because the neighbour
 * sent what breaks the framing (transport.ts destroys the socket with a
 * ChannelRefused), leaves both processes running and unable to talk:
 * smtp would answer every message 421, or the queue would accept mail
 * the scheduler never hears of, while a monitor sees a live daemon. So
 * it is said in the log and to the parent, which stops the daemon as it
 * does when a child dies. A link the neighbour closes, or whose writes
 * fail (EPIPE), is not reported here: the neighbour is gone or stopping,
 * and the parent knows that already, and names it better.
 */
function watchLink(peer: ProcessName, socket: Socket): void {
  let reported = false;
  socket.on('error', (err) => {
    if (reported || stopped || !(err instanceof ChannelRefused)) return;
    reported = true;
    log.warn(`warn: ${name}: dropped the channel to ${peer}: ${err.message}`);
    parent.notify({ type: 'parent.link.lost', peer, reason: err.message });
  });
}
