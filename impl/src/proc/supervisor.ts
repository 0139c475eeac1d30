/**
 * The parent's view of its children: forks them, keeps a control channel
 * to each, notices when one goes away, and stops them in order.
 */
import type { ChildProcess } from 'node:child_process';
import type { Logger } from '../log/index.ts';
import { controlChannel } from './channels/control.ts';
import { parentChannel } from './channels/parent.ts';
import type { Handlers } from './protocol.ts';
import { Peer } from './peer.ts';
import { forkChild, type ForkOptions } from './spawn.ts';
import { ipcTransport } from './transport.ts';

type ControlCalls = typeof controlChannel['calls'];
type ParentCalls = typeof parentChannel['calls'];

/** The parent's answers to what a child asks (parent.ts); each handler knows which child is asking. */
export type ParentHandlers = (child: string) => Handlers<ParentCalls>;

/** A running child, as the parent holds it. */
export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  /** The parent's end of the control channel: the parent sends, the child answers. */
  readonly control: Peer<ParentCalls, ControlCalls>;
  /** Resolves when the process has exited, with how. */
  readonly exited: Promise<string>;
}

/** How a child ended, in the words of the log line: `exited with status 1`, `killed by signal SIGKILL`. */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by signal ${signal}` : `exited with status ${code ?? 0}`;
}

export class Supervisor {
  private readonly children = new Map<string, Child>();
  private stopping = false;

  /**
   * `onLost` is called once for each child that ends while the daemon is
   * not stopping: the parent's cue to bring everything down.
   */
  constructor(
    private readonly log: Logger,
    private readonly onLost: (name: string, how: string) => void,
    private readonly answers?: ParentHandlers,
  ) {}

  spawn(name: string, options: ForkOptions = {}): Child {
    const proc = forkChild(name, options);
    const control = new Peer<ParentCalls, ControlCalls>({
      self: 'parent', peer: name, transport: ipcTransport(proc), calls: controlChannel, log: this.log,
      ...(this.answers && { serves: { channel: parentChannel, handlers: this.answers(name) } }),
    });
    const exited = new Promise<string>((resolve) => {
      proc.once('exit', (code, signal) => {
        const how = describeExit(code, signal);
        this.log.debug(`debug: ${name} process (pid ${proc.pid}) ${how}`);
        if (!this.stopping) this.onLost(name, how);
        resolve(how);
      });
    });
    // A failed fork (ENOENT, EPERM on uid) is reported as 'error' and then 'exit'.
    proc.on('error', (err) => this.log.warn(`warn: ${name} process: ${err.message}`));
    const child: Child = { name, process: proc, control, exited };
    this.children.set(name, child);
    return child;
  }

  /**
   * A child that still runs says it cannot go on (see `parent.link.lost`):
   * the same cue as its exit, `how` saying what happened.
   */
  lost(name: string, how: string): void {
    if (!this.stopping) this.onLost(name, how);
  }

  get(name: string): Child | undefined {
    return this.children.get(name);
  }

  all(): Child[] {
    return [...this.children.values()];
  }

  /**
   * Stops the children one by one, in the order given. Each is asked to
   * stop and answers once it has released what it holds (the queue
   * finishes its commits); the parent then closes the channel, which the
   * child takes as the signal to exit. A child that does not answer, or
   * does not exit, within `graceMs` is killed: a stuck child must not keep
   * the daemon from stopping. From the first call on, an exit is expected
   * and no longer reported as lost.
   */
  async stopAll(order: readonly string[], graceMs = 5_000): Promise<void> {
    this.stopping = true;
    for (const name of order) {
      const child = this.children.get(name);
      if (!child || child.process.exitCode !== null || child.process.signalCode !== null) continue;
      try {
        await child.control.request({ type: 'proc.stop' }, { timeoutMs: graceMs });
      } catch (err) {
        this.log.warn(`warn: ${name} process did not stop cleanly: ${(err as Error).message}`);
      }
      child.control.close();
      const timer = setTimeout(() => child.process.kill('SIGKILL'), graceMs);
      await child.exited;
      clearTimeout(timer);
    }
  }

  /** Marks the daemon as stopping without stopping anything yet: exits from now on are expected. */
  expectExits(): void {
    this.stopping = true;
  }
}
