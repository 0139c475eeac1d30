/**
 * The expansion tree: what one node holds, where it came from, and how
 * it is named in log lines and told apart from the others.
 */
import type { LocalAction } from '../config/index.ts';
import type { ExpansionSource, MailAddress } from '../queue/types.ts';
import { DELIVERY_LIMITS } from '../queue/envelope-format.ts';
import { asciiLowercase } from '../table/lowercase.ts';

/** Where a node came from, and whether it may be a file or a command. */
export interface Origin extends ExpansionSource {
  allowExec: boolean;
  /** The option that would allow it, for the log: `alias <aliases> allow-exec`. */
  option: string;
  /** Why this source may name no file or command, whatever `allow-exec` says: an included file others could write. */
  execRefused?: string;
}

/** What a node stands for; an `:include:` is not one, its file's lines are. */
export type Target =
  | { kind: 'address'; address: MailAddress }
  | { kind: 'username'; user: string }
  | { kind: 'file'; path: string; runAs: string }
  | { kind: 'command'; command: string; runAs: string }
  | { kind: 'error'; code: number; message: string };

/** One node of the tree (OpenSMTPD's struct expandnode). */
export interface Node {
  target: Target;
  parent: Node | undefined;
  depth: number;
  /** The local action it is expanded under; unused by an address, which the rules match afresh. */
  action: LocalAction | undefined;
  origin: Origin | undefined;
  /** A user listed under itself (`bob: \bob, ...`, or `bob` in bob's .forward): deliver, do not look up again. */
  sameuser: boolean;
  /** This user's ~/.forward has been looked at. */
  forwarded: boolean;
  /** Set when the user was found in the userbase: the account delivered to (the name without its sub-address). */
  account?: string;
}

/** What makes two nodes the same: an address compared without case, a file or command with who runs it. */
export function nodeKey(target: Target): string {
  if (target.kind === 'address') return asciiLowercase(show(target));
  if (target.kind === 'file' || target.kind === 'command') return `${show(target)} as ${target.runAs}`;
  return show(target);
}

/** A node for people: `address:bob@example.org`, `username:bob`. */
export function show(target: Target): string {
  switch (target.kind) {
    case 'address':
      return `address:${target.address.user}@${target.address.domain}`;
    case 'username':
      return `username:${target.user}`;
    case 'file':
      return `file:${target.path}`;
    case 'command':
      return `command:${target.command}`;
    case 'error':
      return `error:${target.code} ${target.message}`;
  }
}

/** The address a local delivery is for: the nearest address above the node (lka_find_ancestor()). */
export function addressOf(node: Node): MailAddress {
  for (let n: Node | undefined = node; n; n = n.parent) if (n.target.kind === 'address') return n.target.address;
  throw new Error('expansion node without an address above it');
}

/** `table aliases, key team: `, the start of a log line about the node; empty for the recipient itself. */
export function originOf(node: Node): string {
  return node.origin ? `${node.origin.where}: ` : '';
}

/**
 * The origin as the envelope keeps it, without what only expansion needs,
 * and cut to the length the queue takes (a long include path could pass
 * it): it only names the line for the log.
 */
export function sourceOf(origin: Origin): ExpansionSource {
  const max = DELIVERY_LIMITS.where;
  return { kind: origin.kind, where: origin.where.length > max ? `${origin.where.slice(0, max - 3)}...` : origin.where };
}
