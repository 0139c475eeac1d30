/**
 * The parent process: reads nothing from the network and parses nothing
 * a client sent. It holds the configuration, binds the listeners as
 * root, forks the children as their users, wires them together, and
 * then waits: for a signal to stop, or for a child to die, which stops
 * everything.
 *
 *     const status = await runDaemon({ config, spool, foreground: true, verbose: 0, trace: new Set() });
 */
import type { Socket } from 'node:net';
import { authWithoutTable, type Config } from '../config/index.ts';
import { loadPkis } from '../crypto/index.ts';
import { createLogger, type Logger, type TraceFlag } from '../log/index.ts';
import type { PkiMaterial } from '../proc/channels/control.ts';
import { resolveAccounts, type Accounts } from '../proc/privileges.ts';
import { LINKS, PROCESSES, type ProcessName } from '../proc/processes.ts';
import { Supervisor, type Child } from '../proc/supervisor.ts';
import { QUEUE_THREADPOOL_SIZE } from '../queue/index.ts';
import { closeInheritedDescriptors } from './descriptors.ts';
import { bindListeners, type BoundListener } from './listeners.ts';
import { socketPair } from './links.ts';
import { parentServices } from './services.ts';
import { prepareSpool } from './spool.ts';
import { lockSpool, type SpoolLock } from './spool-lock.ts';

export interface DaemonOptions {
  config: Config;
  spool: string;
  /** The queue backend, by name (`-B queue=NAME`); `fs` by default. */
  queueBackend?: string;
  /** -d: bare lines on stderr; otherwise maillog lines (still on stderr). */
  foreground: boolean;
  verbose: number;
  trace: ReadonlySet<TraceFlag>;
  /** How long SIGTERM lets open sessions run before cutting them; 10 s by default. */
  drainMs?: number;
  /** Deliver to root with any method, not only mbox: the embedded default, started by root, delivers to root's Maildir. */
  allowRootDelivery?: boolean;
  /** Called once the daemon is up, with the number of listeners (the CLI prints the pid then). */
  ready?: () => void;
}

const START_TIMEOUT_MS = 60_000;

/** Runs the daemon until it stops; resolves with the exit status: 0 after SIGTERM, 1 after a failure. */
export async function runDaemon(options: DaemonOptions): Promise<number> {
  const log = createLogger({
    verbose: options.verbose, trace: new Set(options.trace), format: options.foreground ? 'foreground' : 'maillog',
  });
  process.title = 'smtpd: parent';
  const inherited = closeInheritedDescriptors();
  log.info('info: OpenSMTPD-compatible smtpd starting');
  if (inherited.length > 0) log.debug(`debug: smtpd: closed descriptor${inherited.length > 1 ? 's' : ''} ${inherited.join(', ')}, inherited from what started smtpd`);
  const refused = authWithoutTable(options.config);
  if (refused.length > 0) {
    for (const line of refused) log.crit(`smtpd: ${line}`);
    return 1;
  }
  let listeners: BoundListener[];
  let accounts: Accounts;
  let pkis: PkiMaterial[];
  let lock: SpoolLock | undefined;
  try {
    accounts = resolveAccounts(log);
    await prepareSpool(options.spool, accounts, log);
    lock = await lockSpool(options.spool);
    pkis = readPkis(options.config);
    listeners = await bindListeners(options.config, log);
  } catch (err) {
    log.crit(`smtpd: ${(err as Error).message}`);
    await lock?.release();
    return 1;
  }
  try {
    return await new Daemon(options, log, accounts, listeners, pkis).run();
  } finally {
    await lock.release();
  }
}

/** The pkis, read as root: the key files are usually readable by root alone. */
function readPkis(config: Config): PkiMaterial[] {
  return [...loadPkis(config).values()].map((p) => ({
    name: p.name, chain: p.chain, key: p.key, keyType: p.keyType, names: p.names, ...(p.dhe && { dhe: p.dhe }),
  }));
}

class Daemon {
  private readonly supervisor: Supervisor;
  /** Clients the parent accepted before smtp was ready, by listener index. */
  private readonly early: { listener: number; socket: Socket }[] = [];
  private stopping: Promise<number> | undefined;
  private finish: (status: number) => void = () => {};

  constructor(
    private readonly options: DaemonOptions,
    private readonly log: Logger,
    private readonly accounts: Accounts,
    private readonly listeners: BoundListener[],
    private readonly pkis: PkiMaterial[],
  ) {
    const { config, verbose, trace, foreground } = options;
    const services = parentServices({
      config, log, verbose, trace, foreground, supervisor: () => this.supervisor,
      ...(options.allowRootDelivery && { allowRootDelivery: true }),
    });
    this.supervisor = new Supervisor(log, (name, how) => this.lost(name, how), services);
    listeners.forEach(({ server }, listener) => server.on('connection', (socket: Socket) => this.early.push({ listener, socket })));
  }

  run(): Promise<number> {
    const done = new Promise<number>((resolve) => (this.finish = resolve));
    this.handleSignals();
    this.start().catch((err: Error) => {
      if (this.stopping) return; // a child died during start-up: lost() has said so
      this.log.crit(`smtpd: cannot start: ${err.message}`);
      void this.shutdown(1, false);
    });
    return done;
  }

  /**
   * Forks every child as its user, then, in order: tells each what it
   * needs (the parsed configuration, the spool's path, the log settings;
   * the TLS keys to smtp alone), gives each pair of LINKS its socket,
   * hands the listeners to smtp and closes the parent's copies, and starts
   * the children in the table's order, each answering once ready. Only
   * then are the clients the parent held during start-up passed to smtp.
   */
  private async start(): Promise<void> {
    const children = new Map<ProcessName, Child>();
    for (const spec of PROCESSES) {
      const credentials = this.accounts[spec.user];
      const env = spec.name === 'queue' ? { ...process.env, UV_THREADPOOL_SIZE: String(QUEUE_THREADPOOL_SIZE) } : process.env;
      children.set(spec.name, this.supervisor.spawn(spec.name, { credentials, env }));
    }
    const child = (name: ProcessName) => children.get(name)!;
    const { config, spool, verbose, trace, foreground } = this.options;
    await Promise.all(PROCESSES.map(({ name }) => child(name).control.request({
      type: 'proc.init', name, config, spool, queueBackend: this.options.queueBackend ?? 'fs', verbose, trace: [...trace],
      format: foreground ? 'foreground' : 'maillog', pkis: name === 'smtp' ? this.pkis : [],
    }, { timeoutMs: START_TIMEOUT_MS })));

    for (const [a, b] of LINKS) {
      const [endA, endB] = await socketPair();
      await child(a).control.request({ type: 'proc.link', peer: b }, { handle: endA });
      await child(b).control.request({ type: 'proc.link', peer: a }, { handle: endB });
    }
    for (const { info, server } of this.listeners) {
      await child('smtp').control.request({ type: 'smtp.listener', ...info }, { handle: server });
      server.close();
    }
    for (const { name } of PROCESSES) {
      if (this.stopping) return;
      await child(name).control.request({ type: 'proc.start' }, { timeoutMs: START_TIMEOUT_MS });
    }
    const early = this.early.splice(0);
    for (const { listener, socket } of early) {
      await child('smtp').control.request({ type: 'smtp.connection', listener }, { handle: socket });
    }
    if (early.length > 0) this.log.debug(`debug: smtpd: ${early.length} client(s) held during start-up handed to smtp`);
    this.log.debug(`debug: smtpd: ${PROCESSES.length} processes started, ${this.listeners.length} listener(s)`);
    this.options.ready?.();
  }

  // #region lost-child
  /**
   * A child that exits while the daemon is not stopping takes the daemon
   * down: a daemon without its queue would accept mail it cannot store,
   * one without smtp would look alive to a monitor that only checks the
   * parent's pid. The log line names the child and how it ended; the
   * others are stopped in order, and the parent exits 1, for a service
   * manager to notice and restart.
   */
  private lost(name: string, how: string): void {
    this.log.crit(`smtpd: ${name} process ${how}; shutting down`);
    void this.shutdown(1, false);
  }
  // #endregion lost-child

  /**
   * SIGTERM, and SIGINT (Ctrl-C in `smtpd -d`), drain: smtp stops
   * accepting, open sessions get until the deadline to finish, the
   * scheduler hands out nothing more and the deliveries under way get
   * until the deadline too, then the children stop in reverse start
   * order and the parent exits 0. The
   * children ignore these signals themselves (child.ts), so Ctrl-C,
   * which the terminal sends to the whole process group, stops them in
   * this order too. SIGHUP would reload the configuration; not yet.
   *
   * The same Ctrl-C often arrives twice: from the terminal, and again
   * from a wrapper that passes signals on to its child (pnpm does). A
   * repeat within a second is that echo, and goes to the debug log; a
   * later one is someone pressing again, and is told we are on it.
   */
  private handleSignals(): void {
    let first = 0;
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.on(signal, () => {
        if (this.stopping) {
          const line = `${signal} received: already stopping`;
          return Date.now() - first < 1000 ? this.log.debug(`debug: ${line}`) : this.log.info(`info: ${line}`);
        }
        first = Date.now();
        this.log.info(`info: ${signal} received: stopping`);
        void this.shutdown(0, true);
      });
    }
    process.on('SIGHUP', () => this.log.info('info: SIGHUP received: reloading is not supported yet; nothing changed'));
  }

  private shutdown(status: number, drain: boolean): Promise<number> {
    this.stopping ??= this.stop(status, drain).then((final) => {
      this.log.info('info: smtpd exiting');
      this.finish(final);
      return final;
    });
    return this.stopping;
  }

  /** Asks one child to drain (see Role.drain), within the drain deadline; logs what had to be cut. */
  private async drain(name: 'smtp' | 'scheduler' | 'dispatcher', cutText: string): Promise<void> {
    const child = this.supervisor.get(name);
    if (!child || child.process.exitCode !== null) return;
    const deadlineMs = this.options.drainMs ?? 10_000;
    try {
      const { cut } = await child.control.request({ type: 'proc.drain', deadlineMs }, { timeoutMs: deadlineMs + 5_000 });
      if (cut > 0) this.log.info(`info: smtpd: ${cut} ${cutText}`);
    } catch (err) {
      this.log.warn(`warn: smtpd: ${name} did not drain: ${(err as Error).message}`);
    }
  }

  private async stop(status: number, drain: boolean): Promise<number> {
    this.supervisor.expectExits();
    for (const { server } of this.listeners) if (server.listening) server.close();
    for (const { socket } of this.early.splice(0)) socket.destroy();
    if (drain) {
      // Sessions first; then the scheduler hands out nothing more, and the deliveries under way may
      // finish while the queue is still up to record them: one cut off would be delivered again later.
      await this.drain('smtp', 'session(s) still open at the deadline were closed');
      await this.drain('scheduler', '');
      await this.drain('dispatcher', 'delivery(ies) still running at the deadline were cut off, and will be tried again');
    }
    await this.supervisor.stopAll([...PROCESSES].reverse().map((p) => p.name));
    return status;
  }
}
