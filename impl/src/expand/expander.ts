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
 */
import { isRelay, type Config, type LocalAction } from '../config/index.ts';
import type { UserRecord } from '../delivery/types.ts';
import { silentLogger, type Logger } from '../log/index.ts';
import type { Rejection, Ruleset } from '../lookup/index.ts';
import { ACCOUNTS } from '../proc/processes.ts';
import type { ExpansionSource, MailAddress } from '../queue/types.ts';
import { splitTargets } from '../table/alias-targets.ts';
import { asciiLowercase } from '../table/lowercase.ts';
import { openTable, parseAliasTarget, parseMailAddr, TableError, tableSource, type AliasTarget, type Table } from '../table/index.ts';
import { targetLines } from './forward-file.ts';
import type { ExpandedRecipient, Expansion, ExpandRequest, ForwardFile } from './types.ts';
import type { Getpwnam } from './userbase.ts';

// #region expansion-limits
/** A node this deep is refused: OpenSMTPD's EXPAND_DEPTH (lka_session.c). The recipient itself is depth 0. */
export const EXPAND_DEPTH = 10;
/**
 * At most this many nodes per RCPT (ours: OpenSMTPD 6.8 has no overall
 * limit). Large enough for a mailing list kept in an alias, small enough
 * that one RCPT cannot make the lookup process build an unbounded tree.
 * Over it, the same permanent error as a tree too deep: both mean the
 * aliases are built wrong, and retrying will not change them.
 */
export const MAX_EXPANSION_NODES = 1000;
/**
 * A ~/.forward may add at most this many nodes: OpenSMTPD's MAX_EXPAND_NODES
 * (forward.c). There it counts every node of the expansion so far, so a
 * .forward read late in a big alias fails; here it counts the file's own.
 */
export const MAX_FORWARD_NODES = 100;
// #endregion expansion-limits

/** A reply's parts; the client sees `code enhanced text: <rcpt>`. */
interface Status {
  code: number;
  enhanced: string;
  text: string;
}

// The replies OpenSMTPD's lookup sends (lka_session.c); the first two carry no enhanced code.
const INVALID: Status = { code: 550, enhanced: '', text: 'Invalid recipient' };
const TEMPORARY: Status = { code: 451, enhanced: '', text: 'Temporary failure' };
const EXPANSION_TEMP: Status = { code: 424, enhanced: '4.2.4', text: 'Mailing list expansion problem' };
const EXPANSION_PERM: Status = { code: 524, enhanced: '5.2.4', text: 'Mailing list expansion problem' };
// #region exec-refused
/**
 * A file or command target without `allow-exec` (ours). 451, "local error
 * in processing": the fault is this host's configuration, which its
 * administrator or the user can fix while the sender's server retries
 * (a 5xx would bounce mail over a setting). 4.7.0, "other security or
 * policy status": a security policy refused it; 4.7.1 would tell the
 * sender that they are not authorized, which is not the case. The text
 * names no file, table or command: those are for the log.
 */
const EXEC_REFUSED: Status = { code: 451, enhanced: '4.7.0', text: 'Recipient expansion refused by local policy' };
// #endregion exec-refused

/** What ends an expansion: the status the client gets, and the log line that says why. */
class Failure extends Error {
  constructor(readonly status: Status, readonly log: string, readonly reply?: string) {
    super(log);
  }
}

/** Where a node came from, and whether it may be a file or a command. */
interface Origin extends ExpansionSource {
  allowExec: boolean;
  /** The option that would allow it, for the log: `alias <aliases> allow-exec`. */
  option: string;
}

type Target =
  | { kind: 'address'; address: MailAddress }
  | { kind: 'username'; user: string }
  | { kind: 'file'; path: string; runAs: string }
  | { kind: 'command'; command: string; runAs: string }
  | { kind: 'error'; code: number; message: string };

/** One node of the tree (OpenSMTPD's struct expandnode). */
interface Node {
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

/** The state of one expansion. */
interface Run {
  req: ExpandRequest;
  queue: Node[];
  seen: Set<string>;
  nodes: number;
  recipients: ExpandedRecipient[];
  delivered: Set<string>;
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
  /** Reads the file of an `:include:/path` alias target. */
  readInclude: (path: string) => Promise<string>;
  log?: Logger;
  /** The account alias files and commands run as when the action has no `user`: OpenSMTPD's SMTPD_USER. */
  daemonUser?: string;
}

export class Expander {
  private readonly delimiter: string;
  private readonly systemUserbases: Set<string>;
  private readonly log: Logger;
  private readonly daemonUser: string;

  constructor(config: Config, private readonly options: ExpanderOptions) {
    const delim = config.options.filter((o) => o.kind === 'smtp sub-addr-delim').at(-1);
    this.delimiter = delim?.kind === 'smtp sub-addr-delim' ? delim.delimiter : '+';
    // `table users getpwnam` names the system's accounts, which are not a Table here.
    this.systemUserbases = new Set(config.tables.filter((t) => t.backend === 'getpwnam').map((t) => t.name));
    this.log = options.log ?? silentLogger;
    this.daemonUser = options.daemonUser ?? ACCOUNTS.smtpd;
    for (const action of config.actions) {
      if (isRelay(action)) continue;
      for (const name of actionTables(action)) {
        if (!options.tables.has(name) && !this.systemUserbases.has(name)) {
          throw new Error(`${action.loc.file}:${action.loc.line}: action "${action.name}": table ${name} is not open`);
        }
      }
    }
  }

  // #region expand-walk
  /**
   * Expands one recipient, breadth first as lka_resume() does. The first
   * failure ends the whole expansion: the client gets one answer for the
   * RCPT, and no envelope is made for the targets that did expand.
   */
  async expand(req: ExpandRequest): Promise<Expansion> {
    const run: Run = { req, queue: [], seen: new Set(), nodes: 0, recipients: [], delivered: new Set() };
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
        return this.external(run, node, target);
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
      const found = this.virtualLookup(action, asciiLowercase(address.user), asciiLowercase(address.domain));
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
      const found = o.alias ? this.aliasLookup(action, user) : this.virtualLookup(action, user, '');
      if (found) return this.insertTargets(run, node, action, found.targets, found.origin, true);
    }
    const cut = user.indexOf(this.delimiter);
    const account = cut >= 0 ? user.slice(0, cut) : user;
    const subaddress = cut >= 0 && cut + 1 < user.length ? user.slice(cut + 1) : undefined;
    const record = await this.userRecord(action, account);
    node.account = account;
    if (node.sameuser && node.parent?.forwarded) return this.mailbox(run, node, account, subaddress, 'own mailbox listed in ~/.forward');
    node.forwarded = true;
    const forward: ForwardFile = o.forwardFile ? await this.forwardOf(record) : { status: 'missing' };
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

  /** The user's ~/.forward as the parent read it; a parent that cannot answer is a temporary failure too. */
  private async forwardOf(user: UserRecord): Promise<ForwardFile> {
    try {
      return await this.options.readForward(user);
    } catch (err) {
      return { status: 'error', path: `${user.home}/.forward`, reason: messageOf(err) };
    }
  }

  /** The user's account, or the failure: unknown is permanent, a userbase that cannot answer temporary. */
  private async userRecord(action: LocalAction, name: string): Promise<UserRecord> {
    const base = action.options.userbase;
    const table = base === undefined || this.systemUserbases.has(base) ? undefined : this.options.tables.get(base);
    const where = table ? `userbase <${base}>` : 'the system accounts';
    let record: UserRecord | undefined;
    try {
      record = await this.options.getpwnam(name, table);
    } catch (err) {
      throw new Failure(TEMPORARY, `user ${name}: ${where} could not answer: ${messageOf(err)}`);
    }
    if (!record) throw new Failure(INVALID, `user ${name}: not in ${where}`);
    return record;
  }

  /**
   * The lines of a ~/.forward, inserted under the user. `:include:` is
   * ignored there, as forwards_get() ignores it. Returns how many nodes
   * were new: none means deliver to the mailbox, as for a missing file.
   */
  private forwardTargets(run: Run, node: Node, action: LocalAction, path: string, content: string): number {
    const allowExec = action.options.forwardFile?.allowExec ?? false;
    let added = 0;
    for (const { line, text } of targetLines(content)) {
      const where = `${path} line ${line}`;
      const origin: Origin = { kind: 'forward', where, allowExec, option: 'forward-file allow-exec' };
      for (const target of lineTargets(text, where)) {
        if (target.kind === 'include') {
          this.log.trace('expand', `expand: ${where}: :include: ignored in ~/.forward`);
          continue;
        }
        if (this.insert(run, node, fromAlias(target, node, action, this.daemonUser), action, origin)) added++;
      }
      if (added > MAX_FORWARD_NODES) throw new Failure(EXPANSION_TEMP, `${path}: more than ${MAX_FORWARD_NODES} targets`);
    }
    return added;
  }

  // #region file-or-command
  /**
   * A file or a command: delivered only if the table or file it came from
   * may name them (`allow-exec`). An alias's runs as the action's `user`,
   * else as the daemon's own account, as in OpenSMTPD; a .forward's as
   * its owner, even when the action has `user` (6.8 would run it as that
   * user, letting anyone with a .forward run commands as a shared account).
   */
  private external(run: Run, node: Node, target: Extract<Target, { kind: 'file' | 'command' }>): void {
    const action = node.action as LocalAction;
    const origin = node.origin as Origin;
    if (action.method.kind === 'forward-only') {
      throw new Failure(TEMPORARY, `${origin.where}: ${target.kind} target on forward-only action "${action.name}"`);
    }
    if (!origin.allowExec) {
      throw new Failure(EXEC_REFUSED, `${origin.where}: ${target.kind} target refused: action "${action.name}" has no ${origin.option}`);
    }
    if (target.kind === 'command' && target.runAs === this.daemonUser) {
      this.log.warn(`warn: ${origin.where}: commands executed from aliases run with ${this.daemonUser} privileges`);
    }
    const value = target.kind === 'file' ? target.path : target.command;
    this.deliver(run, {
      recipient: addressOf(node),
      dispatcher: action.name,
      delivery: { user: target.runAs, kind: target.kind, target: value, source: sourceOf(origin) },
    });
  }
  // #endregion file-or-command

  /** `error:550 text`: the RCPT gets that reply, 4xx or 5xx. */
  private error(node: Node, target: Extract<Target, { kind: 'error' }>): never {
    const action = node.action as LocalAction;
    const where = node.origin?.where ?? `action "${action.name}"`;
    if (action.method.kind === 'forward-only') {
      throw new Failure(TEMPORARY, `${where}: error target on forward-only action "${action.name}"`);
    }
    const { code, message } = target;
    // An enhanced code is recognised only in the class of the reply code.
    const enhanced = new RegExp(`^(${String(code).charAt(0)}\\.\\d{1,3}\\.\\d{1,3})(?: |$)`).exec(message)?.[1] ?? '';
    const text = message.slice(enhanced.length).trim();
    throw new Failure({ code, enhanced, text }, `${where}: error target: ${code} ${message}`);
  }

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
        await this.include(run, parent, action, target.path, origin);
      } else {
        this.log.trace('expand', `expand: ${origin.where}: nested :include:${target.path} ignored`);
      }
    }
  }

  /**
   * `:include:/path`: the file's lines are more targets of the same entry,
   * with the same right to name files and commands. A file that cannot be
   * read is a temporary failure (OpenSMTPD logs it and goes on without its
   * members, which silently drops them).
   */
  private async include(run: Run, parent: Node, action: LocalAction, path: string, origin: Origin): Promise<void> {
    let content: string;
    try {
      content = await this.options.readInclude(path);
    } catch (err) {
      throw new Failure(EXPANSION_TEMP, `${origin.where}: cannot read ${path}: ${messageOf(err)}`);
    }
    for (const { line, text } of targetLines(content)) {
      const where = `${path} line ${line}, included from ${origin.where}`;
      await this.insertTargets(run, parent, action, lineTargets(text, where), { ...origin, where }, false);
    }
  }

  // #region lookup-order
  /**
   * aliases_get(): a tagged user (`bob+lists`) is looked up as it is,
   * then without its tag; an untagged one as it is.
   */
  private aliasLookup(action: LocalAction, user: string): Found | undefined {
    const spec = action.options.alias as NonNullable<LocalAction['options']['alias']>;
    const cut = user.indexOf(this.delimiter);
    const keys = cut >= 0 ? [user, user.slice(0, cut)] : [user];
    return this.lookup('alias', spec, action, keys);
  }

  /**
   * aliases_virtual_get(), in its order: `user+tag@domain`, `user@domain`,
   * `user+tag`, `user`, then the catch-alls `@domain` and `@`. A user
   * that a virtual entry produced has no domain, and no catch-all.
   */
  private virtualLookup(action: LocalAction, user: string, domain: string): Found | undefined {
    const spec = action.options.virtual as NonNullable<LocalAction['options']['virtual']>;
    const cut = user.indexOf(this.delimiter);
    const base = cut >= 0 ? user.slice(0, cut) : user;
    const tagged = cut >= 0 ? user : undefined;
    const keys = domain === ''
      ? [tagged, base]
      : [tagged && `${tagged}@${domain}`, `${base}@${domain}`, tagged, base, `@${domain}`, '@'];
    return this.lookup('virtual', spec, action, keys.filter((k): k is string => k !== undefined));
  }
  // #endregion lookup-order

  /** The first key with a non-empty entry; a table that cannot answer is a temporary failure. */
  private lookup(kind: 'alias' | 'virtual', spec: { table: string; allowExec: boolean }, action: LocalAction, keys: string[]): Found | undefined {
    const table = this.options.tables.get(spec.table) as Table;
    for (const key of keys) {
      let targets: AliasTarget[] | undefined;
      try {
        targets = table.lookup('alias', key);
      } catch (err) {
        if (!(err instanceof TableError)) throw err;
        throw new Failure(EXPANSION_TEMP, `table ${spec.table}, key ${key}: ${err.message}`);
      }
      if (!targets || targets.length === 0) continue;
      const where = `table ${spec.table}, key ${key}`;
      this.log.trace('expand', `expand: action "${action.name}": ${kind} ${where}`);
      return { targets, origin: { kind, where, allowExec: spec.allowExec, option: `${kind} <${spec.table}> allow-exec` } };
    }
    return undefined;
  }
}

interface Found {
  targets: AliasTarget[];
  origin: Origin;
}

/**
 * Opens the tables the local actions name (alias, virtual, userbase),
 * each once, with the configuration's sub-address delimiter. A
 * `getpwnam` userbase is the system's accounts and is not opened.
 * Throws, naming the action, if one cannot be opened.
 */
export function openActionTables(config: Config): Map<string, Table> {
  const declared = new Map(config.tables.map((t) => [t.name, t]));
  const delim = config.options.filter((o) => o.kind === 'smtp sub-addr-delim').at(-1);
  const subaddressDelimiter = delim?.kind === 'smtp sub-addr-delim' ? delim.delimiter : '+';
  const tables = new Map<string, Table>();
  for (const action of config.actions) {
    if (isRelay(action)) continue;
    for (const name of actionTables(action)) {
      const decl = declared.get(name);
      if (tables.has(name) || decl?.backend === 'getpwnam') continue;
      const at = `${action.loc.file}:${action.loc.line}: action "${action.name}"`;
      if (!decl) throw new Error(`${at}: no table named ${name}`);
      try {
        tables.set(name, openTable(name, tableSource(decl), { subaddressDelimiter }));
      } catch (err) {
        for (const t of tables.values()) t.close();
        throw new Error(`${at}: ${messageOf(err)}`);
      }
    }
  }
  return tables;
}

function actionTables(action: LocalAction): string[] {
  const o = action.options;
  return [o.alias?.table, o.virtual?.table, o.userbase].filter((n): n is string => n !== undefined);
}

/**
 * The targets of one line of a ~/.forward or an included file; a line
 * that is not a list of targets is a temporary failure naming it, as a
 * parse error in a .forward is in forwards_get().
 */
function lineTargets(text: string, where: string): AliasTarget[] {
  const items = splitTargets(text);
  if (items === undefined) throw new Failure(EXPANSION_TEMP, `${where}: unbalanced quote or trailing backslash`);
  return items.map((item) => {
    const target = parseAliasTarget(item);
    if (!target) throw new Failure(EXPANSION_TEMP, `${where}: cannot read ${JSON.stringify(item)} as a target`);
    return target;
  });
}

// #region run-as
/**
 * A table's or a file's target as a node. A file or command runs as the
 * user whose ~/.forward named it (the parent found in the userbase), else
 * as the action's `user`, else as the daemon's account (lka_submit()).
 */
function fromAlias(target: Exclude<AliasTarget, { kind: 'include' }>, parent: Node, action: LocalAction, daemonUser: string): Target {
  const runAs = parent.account ?? action.options.user ?? daemonUser;
  switch (target.kind) {
    case 'username':
      return { kind: 'username', user: asciiLowercase(target.user) };
    case 'address':
      return { kind: 'address', address: { user: target.user, domain: target.domain } };
    case 'file':
      return { kind: 'file', path: target.path, runAs };
    case 'command':
      return { kind: 'command', command: target.command, runAs };
    case 'error':
      return target;
  }
}
// #endregion run-as

/** What makes two nodes the same: an address compared without case, a file or command with who runs it. */
function nodeKey(target: Target): string {
  if (target.kind === 'address') return asciiLowercase(show(target));
  if (target.kind === 'file' || target.kind === 'command') return `${show(target)} as ${target.runAs}`;
  return show(target);
}

/** A node for people: `address:bob@example.org`, `username:bob`. */
function show(target: Target): string {
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
function addressOf(node: Node): MailAddress {
  for (let n: Node | undefined = node; n; n = n.parent) if (n.target.kind === 'address') return n.target.address;
  throw new Error('expansion node without an address above it');
}

function originOf(node: Node): string {
  return node.origin ? `${node.origin.where}: ` : '';
}

function sourceOf(origin: Origin): ExpansionSource {
  return { kind: origin.kind, where: origin.where };
}

/** Why the rules refused an address, for the log. */
function rejection(r: Rejection): string {
  if (r.reason === 'reject rule') return `rejected by rule ${r.number}`;
  if (r.reason === 'no rule matched') return 'no rule matched';
  return `rule ${r.number}: ${r.error?.message ?? 'table error'}`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
