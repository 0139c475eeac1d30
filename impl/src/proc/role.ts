/**
 * What a child process does, behind one small interface: child.ts sets
 * up every child the same way (title, signals, the parent's channel) and
 * then hands over to the role named on its command line.
 */
import type { Socket } from 'node:net';
import type { Config } from '../config/index.ts';
import type { parentChannel } from './channels/parent.ts';
import type { Peer } from './peer.ts';
import type { Logger } from '../log/index.ts';
import type { PkiMaterial } from './channels/control.ts';
import type { HandedListener } from './handed-listener.ts';
import type { ProcessName } from './processes.ts';

/** Everything a role starts from; all of it came from the parent. */
export interface RoleContext {
  name: ProcessName;
  log: Logger;
  config: Config;
  /** The spool directory; only the queue opens it. */
  spool: string;
  /** The queue's storage, by backend name (`-B queue=NAME`; `fs` by default). */
  queueBackend: string;
  /** Certificates and keys, for the process that terminates TLS (smtp); empty elsewhere. */
  pkis: readonly PkiMaterial[];
  /** Sockets to peer children (see processes.ts LINKS), by peer name. */
  links: ReadonlyMap<ProcessName, Socket>;
  /** Listening sockets bound by the parent; smtp's only. */
  listeners: readonly HandedListener[];
  /** The channel to the parent, for what needs root (parent.ts): lookup's ~/.forward, the dispatcher's agents. */
  parent: Peer<Record<never, never>, typeof parentChannel['calls']>;
  /** Sockets the parent handed over with `proc.agent`, by token; taking one removes it. */
  takeAgentSocket(token: string): Socket | undefined;
}

export interface Role {
  /**
   * Take no new work and wait, until the deadline, for what is under way
   * (smtp: sessions; scheduler: nothing to wait for; dispatcher:
   * deliveries); resolves with how many were cut.
   */
  drain?(deadlineMs: number): Promise<number>;
  /** Releases everything: closes sockets, finishes writes. The process exits afterwards. */
  stop(): Promise<void>;
}

/** Starts the role once everything has arrived; resolves when it is ready for work. */
export type StartRole = (ctx: RoleContext) => Promise<Role>;
