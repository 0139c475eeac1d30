/**
 * One local delivery, start to end: check that it may happen at all,
 * put the delivery headers on top, and hand the message to the agent the
 * envelope and the action call for.
 *
 *     envelope.delivery.kind   method        agent
 *     mailbox                  mbox          mbox.ts, /var/mail/USER
 *     mailbox                  maildir       maildir.ts
 *     mailbox                  mda           mda.ts, the action's command
 *     mailbox                  lmtp          lmtp.ts
 *     mailbox                  forward-only, expand-only: refused
 *     file                     (any)         mbox.ts, the alias's file
 *     command                  (any)         mda.ts, the alias's command, if allowed
 *
 * deliverLocal() never throws for a delivery problem: every way it can
 * end is a DeliveryOutcome with a one-line reason.
 */
import { Readable } from 'node:stream';
import type { LocalAction } from '../config/index.ts';
import { readForwardFile } from '../expand/forward-file.ts';
import { forwardLines } from '../expand/target-files.ts';
import type { ForwardFile } from '../expand/types.ts';
import { ACCOUNTS } from '../proc/processes.ts';
import type { Envelope, LocalDelivery, MailAddress } from '../queue/types.ts';
import type { Dotlock, DotlockOptions } from './dotlock.ts';
import { oneLine } from './failure.ts';
import { bufferChunks } from './lines.ts';
import { formatLmtpDestination, lmtpDeliver, parseLmtpDestination, type LmtpTimeouts } from './lmtp.ts';
import { deliverMaildir } from './maildir.ts';
import { appendMbox } from './mbox.ts';
import { expandFormat, FormatError, type FormatValues } from './mda-format.ts';
import { commandInput, mdaCommandLine, mdaEnvironment, runCommand } from './mda.ts';
import type { DeliveryOutcome, DeliveryRequest, UserRecord } from './types.ts';

/** Where the `mbox` method's mailboxes are: /var/mail/USER, as for mail.local. */
export const SYSTEM_MAIL_DIR = '/var/mail';

export interface DeliverOptions {
  /** Where the `mbox` method's mailboxes are. Default SYSTEM_MAIL_DIR. */
  mailDir?: string;
  /**
   * Takes the dot lock of the `mbox` method's mailbox, and creates the
   * mailbox if it is missing. The agent asks the root parent for both
   * (parent/mailbox.ts): /var/mail is often writable by root and the
   * mail group only. Without it, appendMbox() does both itself.
   */
  lockMailbox?: (path: string) => Promise<Dotlock>;
  /** The time limit of an mda or a command. Default 300 000 (OpenSMTPD's 5 minutes). */
  commandTimeoutMs?: number;
  /** Between SIGTERM and SIGKILL when that limit is reached. Default 2000. */
  killGraceMs?: number;
  /** Dot-locking of mbox files. */
  lock?: DotlockOptions;
  lmtp?: LmtpTimeouts;
  /**
   * Deliver as uid 0 with any method. OpenSMTPD refuses every method but
   * mbox for root (forkmda(): "not allowed to deliver to"); this is for
   * tests and single-user setups that run everything as one account.
   */
  allowRoot?: boolean;
}

// #region may-run-command
/** The safety net's answer. */
export type CommandPolicy = { allowed: true } | { allowed: false; reason: string };

/**
 * The safety net: may this delivery run a command, or append to a file?
 * Only `command` and `file` deliveries are in question: a file named by
 * an alias can be a user's ~/.profile, and what is appended there runs
 * at the next login, so expansion asks `allow-exec` of both, and so does
 * this. Either runs only if it came from a source the action marks
 * `allow-exec`: `alias <t> allow-exec`, `virtual <t> allow-exec`,
 * `forward-file allow-exec`. One of unknown origin, or from a source the
 * action does not have, is refused. The action's own `mda "command"` is
 * a `mailbox` delivery and always allowed: the administrator wrote it.
 */
export function mayRunCommand(action: Pick<LocalAction, 'name' | 'options'>, delivery: LocalDelivery | undefined): CommandPolicy {
  if (delivery?.kind !== 'command' && delivery?.kind !== 'file') return { allowed: true };
  const what = `"${oneLine(delivery.target ?? '', 80)}" for ${delivery.user}`;
  const source = delivery.source;
  if (!source) return { allowed: false, reason: `${what} does not say where it came from (alias, virtual or forward-file)` };
  const refuse = (why: string): CommandPolicy => ({ allowed: false, reason: `${what} from ${source.where}: ${why}` });
  const options = action.options;
  switch (source.kind) {
    case 'alias':
      if (!options.alias) return refuse(`action "${action.name}" has no alias table`);
      if (!options.alias.allowExec) return refuse(`alias <${options.alias.table}> of action "${action.name}" is not marked allow-exec`);
      return { allowed: true };
    case 'virtual':
      if (!options.virtual) return refuse(`action "${action.name}" has no virtual table`);
      if (!options.virtual.allowExec) return refuse(`virtual <${options.virtual.table}> of action "${action.name}" is not marked allow-exec`);
      return { allowed: true };
    case 'forward':
      if (!options.forwardFile) return refuse(`action "${action.name}" does not read ~/.forward files`);
      if (!options.forwardFile.allowExec) return refuse(`forward-file of action "${action.name}" is not marked allow-exec`);
      return { allowed: true };
    default:
      return refuse('unknown source');
  }
}

/**
 * The safety net's second question: does the account the command or file
 * runs as belong to where it says it came from? mayRunCommand() trusts
 * the envelope's source and user, and the envelope is written by smtp, a
 * process that talks to the network: taken over, it could name a
 * `forward` command running as any account of the userbase. So the agent
 * checks both against what it can see for itself, before anything runs:
 *
 *   forward         the target must be in the user's ~/.forward now: the
 *                   agent runs as that user, so it reads the file itself,
 *                   with the parent's checks (readForwardFile());
 *   alias, virtual  the account must be the one expansion gives them
 *                   (run-as.ts): the action's `user`, else the daemon's.
 *
 * Call it only once mayRunCommand() has allowed the delivery.
 */
export async function mayRunAs(
  action: Pick<LocalAction, 'name' | 'options'>, delivery: LocalDelivery | undefined, user: UserRecord,
  { daemonUser = ACCOUNTS.smtpd, readForward = readForwardFile }: { daemonUser?: string; readForward?: (user: UserRecord) => Promise<ForwardFile> } = {},
): Promise<CommandPolicy> {
  if ((delivery?.kind !== 'command' && delivery?.kind !== 'file') || !delivery.source) return { allowed: true };
  const target = delivery.target ?? '';
  const source = delivery.source;
  const refuse = (why: string): CommandPolicy => ({ allowed: false, reason: `"${oneLine(target, 80)}" for ${delivery.user} from ${source.where}: ${why}` });
  if (source.kind !== 'forward') {
    const runAs = action.options.user ?? daemonUser;
    if (delivery.user === runAs) return { allowed: true };
    const table = (source.kind === 'alias' ? action.options.alias : action.options.virtual)?.table ?? '?';
    return refuse(`${source.kind} <${table}> of action "${action.name}" runs its ${delivery.kind}s as ${runAs}, not as ${delivery.user}`);
  }
  const file = await readForward(user);
  if (file.status === 'missing') return refuse(`${delivery.user} has no ~/.forward now`);
  if (file.status !== 'ok') return refuse(`${file.path} ${file.status === 'refused' ? 'is refused' : 'cannot be read'}: ${file.reason}`);
  try {
    for (const { targets } of forwardLines(file.path, file.content, true)) {
      for (const t of targets) {
        if (t.kind === delivery.kind && (t.kind === 'file' ? t.path : t.kind === 'command' ? t.command : undefined) === target) return { allowed: true };
      }
    }
  } catch (e) {
    return refuse(oneLine((e as Error).message));
  }
  return refuse(`${file.path} does not list it now`);
}
// #endregion may-run-command

const address = (a: MailAddress) => `${a.user}@${a.domain}`;

// #region delivery-headers
/**
 * The headers a local delivery puts on top, as OpenSMTPD's mda.c does:
 * `Return-Path` with the envelope sender, and `Delivered-To` with the
 * recipient as the client gave it (mda.c writes the RCPT TO address, not
 * the address after expansion). For the null sender mda.c writes no
 * Return-Path; RFC 5321 4.4 asks for `Return-Path: <>`, which is what
 * this writes.
 */
export function deliveryHeaders(envelope: Envelope): string {
  const sender = envelope.sender ? address(envelope.sender) : '';
  return `Return-Path: <${sender}>\r\nDelivered-To: ${address(envelope.originalRecipient)}\r\n`;
}
// #endregion delivery-headers

/** How much of the message is read to look for a loop: headers longer than this are not searched further. */
const HEADER_SCAN_LIMIT = 256 * 1024;

/**
 * Reads the header section (or its first 256 KiB) off the message, says
 * whether it already carries one of our Delivered-To lines (a mail loop,
 * OpenSMTPD's mda_check_loop()), and gives back the whole message with
 * the delivery headers on top. mda.c compares Delivered-To with the
 * address after expansion while it writes the RCPT TO address; either
 * one found means the message has been here for this recipient before.
 */
async function prepareContent(content: AsyncIterable<unknown>, envelope: Envelope): Promise<{ loop?: string; message: AsyncIterable<Buffer> }> {
  const source = bufferChunks(content)[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let size = 0;
  let header = '';
  for (;;) {
    const next = await source.next();
    if (next.done) break;
    head.push(next.value);
    size += next.value.length;
    header += next.value.toString('latin1');
    if (/\r?\n\r?\n/.test(header) || size > HEADER_SCAN_LIMIT) break;
  }
  const end = header.search(/\r?\n\r?\n/);
  const ours = new Set([address(envelope.originalRecipient), address(envelope.recipient)].map((a) => a.toLowerCase()));
  let loop: string | undefined;
  for (const line of (end < 0 ? header : header.slice(0, end)).split(/\r?\n/)) {
    const m = /^delivered-to:\s*(.*?)\s*$/i.exec(line);
    if (m && ours.has(m[1]!.toLowerCase())) loop = m[1];
  }
  const prefix = Buffer.from(deliveryHeaders(envelope), 'utf8');
  async function* message() {
    try {
      yield prefix;
      for (const chunk of head) yield chunk;
      for (;;) {
        const next = await source.next();
        if (next.done) return;
        yield next.value;
      }
    } finally {
      await source.return?.(undefined);
    }
  }
  return { ...(loop !== undefined && { loop }), message: message() };
}

// #region refusal
/** A refusal that needs no look at the message. */
function refusal(request: DeliveryRequest, delivery: LocalDelivery, options: DeliverOptions): DeliveryOutcome | undefined {
  const { method, action } = request;
  if (method.kind === 'forward-only' && delivery.kind === 'mailbox') {
    return { result: 'permfail', reason: `action "${action}" is forward-only: ${delivery.user} must forward to a remote address, not to a mailbox` };
  }
  if (method.kind === 'forward-only') {
    return { result: 'permfail', reason: `action "${action}" is forward-only: it does not deliver to ${delivery.kind === 'file' ? 'files' : 'commands'}` };
  }
  if (method.kind === 'expand-only' && delivery.kind === 'mailbox') {
    return { result: 'permfail', reason: `action "${action}" is expand-only: ${delivery.user} has no alias or .forward that says where to deliver` };
  }
  if (delivery.kind === 'command' || delivery.kind === 'file') {
    const policy = mayRunCommand({ name: action, options: request.actionOptions ?? {} }, delivery);
    if (!policy.allowed) return { result: 'tempfail', reason: `${delivery.kind} refused: ${policy.reason}` };
  }
  const mbox = delivery.kind === 'mailbox' && method.kind === 'mbox';
  if (request.user.uid === 0 && !mbox && !options.allowRoot) {
    return { result: 'permfail', reason: `not allowed to deliver to ${request.user.name} (uid 0) with ${delivery.kind === 'mailbox' ? method.kind : delivery.kind}: alias it to an unprivileged user` };
  }
  return undefined;
}
// #endregion refusal

/** Delivers one envelope locally. Never throws for a delivery problem. */
export async function deliverLocal(
  request: DeliveryRequest,
  content: Readable | AsyncIterable<unknown>,
  options: DeliverOptions = {},
): Promise<DeliveryOutcome> {
  const delivery: LocalDelivery = request.envelope.delivery ?? { user: request.user.name, kind: 'mailbox' };
  try {
    const refused = refusal(request, delivery, options);
    if (refused) return refused;
    let prepared;
    try {
      prepared = await prepareContent(content, request.envelope);
    } catch (e) {
      return { result: 'tempfail', reason: `error reading the message: ${oneLine((e as Error).message)}` };
    }
    if (prepared.loop) return { result: 'permfail', reason: `mail loop: the message was already delivered to ${prepared.loop} (Delivered-To)` };
    return await dispatch(request, delivery, prepared.message, options);
  } catch (e) {
    if (e instanceof FormatError) return { result: e.kind === 'config' ? 'tempfail' : 'permfail', reason: oneLine(e.message) };
    return { result: 'tempfail', reason: `local delivery failed: ${oneLine((e as Error)?.message ?? String(e))}` };
  } finally {
    // Whatever the agent did not read is not needed any more.
    if (content instanceof Readable && !content.destroyed) content.destroy();
  }
}

async function dispatch(request: DeliveryRequest, delivery: LocalDelivery, message: AsyncIterable<Buffer>, options: DeliverOptions): Promise<DeliveryOutcome> {
  const { envelope, user, method } = request;
  const values: FormatValues = {
    sender: envelope.sender,
    rcpt: envelope.originalRecipient,
    dest: envelope.recipient,
    user: { username: user.name, directory: user.home },
    ...(request.subaddressDelimiter && { subaddressDelimiter: request.subaddressDelimiter }),
  };
  const mboxFrom = envelope.sender ? address(envelope.sender) : 'MAILER-DAEMON';
  const runShell = (template: string, label: string) => {
    const commandLine = mdaCommandLine(template, values, request.wrapper);
    const env = mdaEnvironment({
      user, sender: envelope.sender, rcpt: envelope.originalRecipient, dest: envelope.recipient,
      ...(delivery.subaddress && { subaddress: delivery.subaddress }),
    });
    return runCommand(commandLine, commandInput(message), {
      env, cwd: user.home, label,
      ...(options.commandTimeoutMs !== undefined && { timeoutMs: options.commandTimeoutMs }),
      ...(options.killGraceMs !== undefined && { killGraceMs: options.killGraceMs }),
    });
  };

  if (delivery.kind === 'file') {
    const target = delivery.target ?? '';
    if (!target.startsWith('/')) return { result: 'permfail', reason: `file delivery for ${delivery.user}: "${oneLine(target, 80)}" is not an absolute path` };
    return appendMbox(target, message, { from: mboxFrom, ...(options.lock && { lock: options.lock }) });
  }
  if (delivery.kind === 'command') {
    if (!delivery.target) return { result: 'permfail', reason: `command delivery for ${delivery.user} has no command` };
    return runShell(delivery.target, 'command');
  }

  // The wrapper wraps shell commands; the built-in agents are not
  // commands here (OpenSMTPD would wrap its mail.local, mail.maildir and
  // mail.lmtp helpers), so it does not apply to them.
  switch (method.kind) {
    case 'mbox': {
      if (!user.name || user.name.includes('/') || user.name === '.' || user.name === '..') {
        return { result: 'permfail', reason: `user name "${oneLine(user.name, 80)}" cannot name a mailbox` };
      }
      const path = `${(options.mailDir ?? SYSTEM_MAIL_DIR).replace(/\/+$/, '')}/${user.name}`;
      return appendMbox(path, message, {
        from: mboxFrom, owner: { uid: user.uid, gid: user.gid }, strict: true,
        ...(options.lock && { lock: options.lock }), ...(options.lockMailbox && { takeLock: options.lockMailbox }),
      });
    }
    case 'maildir': {
      const dir = method.path ? expandFormat(method.path, values, 'path') : `${user.home}/Maildir`;
      return deliverMaildir(dir, message, { junk: method.junk, ...(delivery.subaddress && { folder: delivery.subaddress }) });
    }
    case 'mda':
      return runShell(method.command, 'mda');
    case 'lmtp': {
      let destination;
      try {
        destination = parseLmtpDestination(expandFormat(method.destination, values, 'path'));
      } catch (e) {
        if (e instanceof FormatError) throw e;
        return { result: 'tempfail', reason: oneLine((e as Error).message) };
      }
      // Without rcpt-to, mail.lmtp sends the local user name (its -u);
      // with it, the recipient after expansion (its -r).
      const rcpt = method.rcptTo ? address(envelope.recipient) : user.name;
      const [outcome] = await lmtpDeliver(destination, {
        lhlo: request.hostname,
        mailFrom: envelope.sender ? address(envelope.sender) : '',
        recipients: [rcpt],
      }, message, options.lmtp);
      return outcome ?? { result: 'tempfail', reason: `${formatLmtpDestination(destination)}: no outcome` };
    }
    case 'forward-only':
    case 'expand-only':
      return { result: 'permfail', reason: `action "${request.action}" is ${method.kind}: nothing is delivered to a mailbox` };
  }
}
