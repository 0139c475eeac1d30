/**
 * Expansion: what one RCPT TO becomes. OpenSMTPD does this in its lookup
 * process at RCPT time (lka_session.c): the recipient is a node in a tree;
 * the rules choose its action; a local action turns it into a user, whom
 * an alias, a virtual map or ~/.forward may turn into more addresses,
 * users, files, commands or an error, each expanded in turn until only
 * deliveries are left. The client learns at once whether the recipient is
 * accepted, and the queue gets one envelope per delivery.
 *
 *     const expander = new Expander(config, { ruleset, tables, getpwnam, readForward, readInclude });
 *     const expansion = await expander.expand({ session, mailFrom, rcptTo });
 *
 * This file is the walk over the tree (tree.ts). The tables are asked in
 * lookups.ts, ~/.forward and `:include:` files read in target-files.ts,
 * files and commands checked in file-or-command.ts; failure.ts has the
 * limits and the replies.
 */
import { isRelay, type Config, type LocalAction } from '../config/index.ts';
import type { UserRecord } from '../delivery/types.ts';
import { silentLogger, type Logger } from '../log/index.ts';
import type { Rejection, Ruleset } from '../lookup/index.ts';
import { ACCOUNTS } from '../proc/processes.ts';
import type { MailAddress } from '../queue/types.ts';
import { asciiLowercase } from '../table/lowercase.ts';
import { parseMailAddr, type AliasTarget, type Table } from '../table/index.ts';
import {
  EXPAND_DEPTH, EXPANSION_PERM, EXPANSION_TEMP, Failure, INVALID, MAX_EXPANSION_NODES, MAX_FORWARD_NODES, TEMPORARY,
} from './failure.ts';
import { fileOrCommand } from './file-or-command.ts';
import { Lookups } from './lookups.ts';
import { fromAlias } from './run-as.ts';
import { subaddressDelimiter } from './tables.ts';
import { forwardLines, includeBudget, readForwardOf, readIncluded, readIncludeFile, type IncludeBudget, type IncludedFile } from './target-files.ts';
import { addressOf, nodeKey, originOf, show, sourceOf, type Node, type Origin, type Target } from './tree.ts';
import type { ExpandedRecipient, Expansion, ExpandRequest, ForwardFile } from './types.ts';
import type { Getpwnam } from './userbase.ts';

/** The state of one expansion. */
interface Run {
  req: ExpandRequest;
  queue: Node[];
  seen: Set<string>;
  nodes: number;
  recipients: ExpandedRecipient[];
  delivered: Set<string>;
  /** What is left to read from `:include:` files. */
  included: IncludeBudget;
}

export interface ExpanderOptions {
  /** The rules of the same configuration: every address is matched against them, aliases' too. */
  ruleset: Ruleset;
  /** Every table an action names for alias, virtual or userbase, opened (openActionTables()). */
  tables: ReadonlyMap<string, Table>;
  /** The userbase: the action's `userbase` table, or the system's accounts when there is none. */
  getpwnam: Getpwnam;
  /** Opens a user's ~/.forward; in the daemon, a request to the root parent. */
  readForward: (user: UserRecord) => Promise<ForwardFile>;
  /** Reads the file of an `:include:/path` alias target; readIncludeFile() unless a test says otherwise. */
  readInclude?: (path: string) => Promise<IncludedFile>;
  log?: Logger;
  /** The account alias files and commands run as when the action has no `user`: OpenSMTPD's SMTPD_USER. */
  daemonUser?: string;
}

export class Expander {
  private readonly delimiter: string;
  private readonly log: Logger;
  private readonly daemonUser: string;
  private readonly lookup: Lookups;

  constructor(config: Config, private readonly options: ExpanderOptions) {
    this.delimiter = subaddressDelimiter(config);
    this.log = options.log ?? silentLogger;
    this.daemonUser = options.daemonUser ?? ACCOUNTS.smtpd;
    this.lookup = new Lookups(config, options.tables, options.getpwnam, this.log);
  }

  // #region expand-walk
  /**
   * Expands one recipient, breadth first as lka_resume() does. The first
   * failure ends the whole expansion: the client gets one answer for the
   * RCPT, and no envelope is made for the targets that did expand.
   */
  async expand(req: ExpandRequest): Promise<Expansion> {
    const run: Run = { req, queue: [], seen: new Set(), nodes: 0, recipients: [], delivered: new Set(), included: includeBudget() };
    const { user, domain } = parseMailAddr(req.rcptTo);
    try {
      this.insert(run, undefined, { kind: 'address', address: { user, domain } }, undefined, undefined);
      for (let node = run.queue.shift(); node; node = run.queue.shift()) await this.step(run, node);
      if (run.recipients.length === 0) throw new Failure(EXPANSION_PERM, `<${req.rcptTo}>: expanded to no delivery at all`);
    } catch (err) {
      if (!(err instanceof Failure)) throw err;
      const { code, enhanced, text } = err.status;
      const reply = err.reply ?? `${[String(code), enhanced, text].filter((s) => s !== '').join(' ')}: <${req.rcptTo}>`;
      this.log.trace('expand', `expand: <${req.rcptTo}>: ${reply}: ${err.log}`);
      return { result: code >= 500 ? 'permfail' : 'tempfail', code, enhanced, reply, log: err.log };
    }
    return { result: 'ok', recipients: run.recipients };
  }

  private async step(run: Run, node: Node): Promise<void> {
    if (node.depth >= EXPAND_DEPTH) {
      throw new Failure(EXPANSION_PERM, `${originOf(node)}${show(node.target)}: expansion deeper than ${EXPAND_DEPTH} levels`);
    }
    const { target } = node;
    switch (target.kind) {
      case 'address':
        return this.address(run, node, target.address);
      case 'username':
        return this.username(run, node, target.user);
      case 'file':
      case 'command':
        return this.deliver(run, fileOrCommand(node, target, this.daemonUser, this.log));
      case 'error':
        return this.error(node, target);
    }
  }
  // #endregion expand-walk

  // #region address-node
  /**
   * An address goes through the rules, as internal (from local) when an
   * alias or a .forward produced it. A relay action delivers it as it is;
   * a `virtual` action replaces it with its entry, which must exist; any
   * other local action hands it to the user named by its local part.
   */
  private async address(run: Run, node: Node, address: MailAddress): Promise<void> {
    const rcptTo = `${address.user}@${address.domain}`;
    const envelope = { mailFrom: run.req.mailFrom, rcptTo, ...(node.parent && { internal: true }) };
    const decision = this.options.ruleset.match(run.req.session, envelope);
    if ('reject' in decision) {
      const r = decision.reject;
      // The client sees the address it sent, never one an alias produced.
      throw new Failure(r.code === 451 ? TEMPORARY : INVALID, `${originOf(node)}<${rcptTo}>: ${rejection(r)}`, node.parent ? undefined : r.reply);
    }
    const { action } = decision;
    if (isRelay(action)) return this.deliver(run, { recipient: address, dispatcher: action.name });
    if (action.options.virtual) {
      const found = this.lookup.virtual(action, asciiLowercase(address.user), asciiLowercase(address.domain));
      if (!found) throw new Failure(EXPANSION_PERM, `<${rcptTo}>: no entry in virtual table ${action.options.virtual.table}`);
      return this.insertTargets(run, node, action, found.targets, found.origin, true);
    }
    this.insert(run, node, { kind: 'username', user: asciiLowercase(address.user) }, action, node.origin);
  }
  // #endregion address-node

  // #region username-node
  /**
   * A user: its alias (or virtual entry) if it has one, else it must be
   * in the userbase; then its ~/.forward if the action reads those, else
   * its mailbox. `bob+lists` is looked up as an alias first, then as
   * `bob`; the mailbox is bob's, with `lists` as the sub-address.
   */
  private async username(run: Run, node: Node, user: string): Promise<void> {
    const action = node.action as LocalAction;
    const o = action.options;
    if (!node.sameuser && (o.alias || o.virtual)) {
      const found = o.alias ? this.lookup.alias(action, user) : this.lookup.virtual(action, user, '');
      if (found) return this.insertTargets(run, node, action, found.targets, found.origin, true);
    }
    const cut = user.indexOf(this.delimiter);
    const account = cut >= 0 ? user.slice(0, cut) : user;
    // The delimiter is one character, which may be two UTF-16 units (`sub-addr-delim "😀"`).
    const tag = cut >= 0 ? user.slice(cut + this.delimiter.length) : '';
    const subaddress = tag !== '' ? tag : undefined;
    const record = await this.lookup.user(action, account, node.origin?.where);
    node.account = account;
    if (node.sameuser && node.parent?.forwarded) return this.mailbox(run, node, account, subaddress, 'own mailbox listed in ~/.forward');
    node.forwarded = true;
    const forward: ForwardFile = o.forwardFile ? await readForwardOf(this.options.readForward, record) : { status: 'missing' };
    if (forward.status === 'missing') {
      return this.mailbox(run, node, account, subaddress, o.forwardFile ? 'no ~/.forward' : 'forward-file is off');
    }
    if (forward.status !== 'ok') {
      const what = forward.status === 'refused' ? 'refused' : 'cannot be read';
      throw new Failure(EXPANSION_TEMP, `${forward.path}: ${what}: ${forward.reason}`);
    }
    if (this.forwardTargets(run, node, action, forward.path, forward.content) === 0) {
      return this.mailbox(run, node, account, subaddress, 'empty ~/.forward');
    }
  }
  // #endregion username-node

  /**
   * The lines of a ~/.forward, inserted under the user. `:include:` is
   * ignored there, as forwards_get() ignores it. Returns how many nodes
   * were new: none means deliver to the mailbox, as for a missing file.
   */
  private forwardTargets(run: Run, node: Node, action: LocalAction, path: string, content: string): number {
    const allowExec = action.options.forwardFile?.allowExec ?? false;
    let added = 0;
    for (const { origin, targets } of forwardLines(path, content, allowExec)) {
      for (const target of targets) {
        if (target.kind === 'include') {
          this.log.trace('expand', `expand: ${origin.where}: :include: ignored in ~/.forward`);
          continue;
        }
        if (this.insert(run, node, fromAlias(target, node, action, this.daemonUser), action, origin)) added++;
      }
      if (added > MAX_FORWARD_NODES) throw new Failure(EXPANSION_TEMP, `${path}: more than ${MAX_FORWARD_NODES} targets`);
    }
    return added;
  }

  // #region error-node
  /**
   * `error:550 text`: the RCPT gets that reply, 4xx or 5xx. A 421 ends
   * the session as well, where OpenSMTPD 6.8 answers it and reads the
   * next command. RFC 5321 gives 421 one meaning, "Service not
   * available, closing transmission channel" (4.2.2), and makes it the
   * one reply after which a server may close on its own (3.8); a client
   * that hears it stops, and will send the whole transaction again
   * later. A server that says 421 and stays open has said something
   * false, and a client may act on either half of it. So ours keeps the
   * promise: the engine's gate (smtp/session.ts) closes after any 421,
   * and this only passes the code on. An entry that means "not now" for
   * this recipient alone should say 450 or 451.
   *
   * Closing the session drops every recipient after this one, so only
   * the administrator's tables may ask for it. A 421 from a ~/.forward,
   * or from an included file others than root can change, is answered
   * as 450: its author may refuse their own mail, not the mail of the
   * people listed with them in the same transaction (ours; 6.8 keeps
   * the session open after any 421).
   */
  private error(node: Node, target: Extract<Target, { kind: 'error' }>): never {
    const action = node.action as LocalAction;
    const where = node.origin?.where ?? `action "${action.name}"`;
    if (action.method.kind === 'forward-only') {
      throw new Failure(TEMPORARY, `${where}: error target on forward-only action "${action.name}"`);
    }
    const { message } = target;
    const userWritten = node.origin?.kind === 'forward' || node.origin?.execRefused !== undefined;
    const code = target.code === 421 && userWritten ? 450 : target.code;
    const answered = code === target.code ? '' : ` (answered as ${code}: a user's file may not close the session)`;
    // An enhanced code is recognised only in the class of the reply code.
    const enhanced = new RegExp(`^(${String(code).charAt(0)}\\.\\d{1,3}\\.\\d{1,3})(?: |$)`).exec(message)?.[1] ?? '';
    const text = message.slice(enhanced.length).trim();
    throw new Failure({ code, enhanced, text }, `${where}: error target: ${target.code} ${message}${answered}`);
  }
  // #endregion error-node

  /**
   * The user's mailbox, through the action's method. A forward-only action
   * has no mailbox to deliver to (temporary, so the user can add a
   * .forward); an expand-only action has no default (permanent), as in
   * lka_session_forward_reply(). A `\user` line in a .forward is refused
   * the same way on those actions, where 6.8 would queue it for a
   * mailbox the action cannot deliver to.
   */
  private mailbox(run: Run, node: Node, account: string, subaddress: string | undefined, why: string): void {
    const action = node.action as LocalAction;
    const method = action.method.kind;
    if (method === 'forward-only' || method === 'expand-only') {
      const status = method === 'forward-only' ? EXPANSION_TEMP : EXPANSION_PERM;
      throw new Failure(status, `user ${account}: ${why}, and action "${action.name}" is ${method}`);
    }
    this.log.trace('expand', `expand: user ${account}: ${why}, delivering to the mailbox`);
    this.deliver(run, {
      recipient: addressOf(node),
      dispatcher: action.name,
      delivery: {
        user: account, kind: 'mailbox',
        ...(node.origin && { source: sourceOf(node.origin) }),
        ...(subaddress !== undefined && { subaddress }),
      },
    });
  }

  /** Adds a delivery unless the same one is already there (same action, account, kind and target). */
  private deliver(run: Run, r: ExpandedRecipient): void {
    const d = r.delivery;
    const key = d
      ? JSON.stringify([r.dispatcher, d.kind, d.user, d.target ?? '', d.subaddress ?? ''])
      : JSON.stringify([r.dispatcher, asciiLowercase(`${r.recipient.user}@${r.recipient.domain}`)]);
    if (run.delivered.has(key)) return;
    run.delivered.add(key);
    run.recipients.push(r);
  }

  // #region insert-node
  /**
   * Queues a node unless one like it is already in this expansion
   * (expand_insert()): that is how an alias that reaches itself stops,
   * and how a user listed twice is delivered once. Unlike OpenSMTPD,
   * nodes are alike regardless of the address they descend from, so an
   * address loop stops at its second turn instead of at the depth limit.
   */
  private insert(run: Run, parent: Node | undefined, target: Target, action: LocalAction | undefined, origin: Origin | undefined): boolean {
    const sameuser = target.kind === 'username' && parent?.target.kind === 'username'
      && (parent.account ?? parent.target.user) === target.user;
    const key = JSON.stringify([action?.name ?? '', sameuser, nodeKey(target)]);
    if (run.seen.has(key)) {
      this.log.trace('expand', `expand: ${show(target)}: already in the expansion, discarded`);
      return false;
    }
    run.seen.add(key);
    if (++run.nodes > MAX_EXPANSION_NODES) {
      throw new Failure(EXPANSION_PERM, `${origin ? `${origin.where}: ` : ''}more than ${MAX_EXPANSION_NODES} nodes in one expansion`);
    }
    const depth = parent ? parent.depth + 1 : 0;
    run.queue.push({ target, parent, depth, action, origin, sameuser, forwarded: false });
    this.log.trace('expand', `expand: inserted ${show(target)} [depth=${depth}${sameuser ? ', sameuser' : ''}]`);
    return true;
  }
  // #endregion insert-node

  /** An entry's targets under `parent`; `:include:` files are read now, and their own includes ignored. */
  private async insertTargets(
    run: Run, parent: Node, action: LocalAction, targets: AliasTarget[], origin: Origin, includes: boolean,
  ): Promise<void> {
    for (const target of targets) {
      if (target.kind !== 'include') {
        this.insert(run, parent, fromAlias(target, parent, action, this.daemonUser), action, origin);
      } else if (includes) {
        for (const line of await readIncluded(this.options.readInclude ?? readIncludeFile, target.path, origin, run.included)) {
          await this.insertTargets(run, parent, action, line.targets, line.origin, false);
        }
      } else {
        this.log.trace('expand', `expand: ${origin.where}: nested :include:${target.path} ignored`);
      }
    }
  }
}

/** Why the rules refused an address, for the log. */
function rejection(r: Rejection): string {
  if (r.reason === 'reject rule') return `rejected by rule ${r.number}`;
  if (r.reason === 'no rule matched') return 'no rule matched';
  return `rule ${r.number}: ${r.error?.message ?? 'table error'}`;
}
