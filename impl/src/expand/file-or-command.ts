/**
 * The second gate for files and commands, at RCPT time (the first is the
 * grammar of `allow-exec`, the third the delivery agent's own check): a
 * file or command target becomes a delivery only if the table or file it
 * came from may name one. Refused, it ends the whole expansion.
 */
import type { LocalAction } from '../config/index.ts';
import type { Logger } from '../log/index.ts';
import { checkFormat } from '../delivery/mda-format.ts';
import { DELIVERY_LIMITS } from '../queue/envelope-format.ts';
import { EXPANSION_TEMP, Failure, TEMPORARY, type Status } from './failure.ts';
import { addressOf, sourceOf, type Node, type Origin, type Target } from './tree.ts';
import type { ExpandedRecipient } from './types.ts';

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

// #region file-or-command
/**
 * A file or a command: delivered only if the table or file it came from
 * may name them (`allow-exec`). An alias's runs as the action's `user`,
 * else as the daemon's own account, as in OpenSMTPD; a .forward's as
 * its owner, even when the action has `user` (6.8 would run it as that
 * user, letting anyone with a .forward run commands as a shared account).
 */
export function fileOrCommand(
  node: Node, target: Extract<Target, { kind: 'file' | 'command' }>, daemonUser: string, log: Logger,
): ExpandedRecipient {
  const action = node.action as LocalAction;
  const origin = node.origin as Origin;
  if (action.method.kind === 'forward-only') {
    throw new Failure(TEMPORARY, `${origin.where}: ${target.kind} target on forward-only action "${action.name}"`);
  }
  if (!origin.allowExec) {
    throw new Failure(EXEC_REFUSED, `${origin.where}: ${target.kind} target refused: action "${action.name}" has no ${origin.option}`);
  }
  if (origin.execRefused !== undefined) {
    throw new Failure(EXEC_REFUSED, `${origin.where}: ${target.kind} target refused: ${origin.execRefused}`);
  }
  // A command's %{...} are filled in at delivery; one that can never be is an error in the table, found now.
  const badFormat = target.kind === 'command' ? checkFormat(target.command) : undefined;
  if (badFormat !== undefined) throw new Failure(EXPANSION_TEMP, `${origin.where}: ${badFormat}`);
  if (target.kind === 'command' && target.runAs === daemonUser) {
    log.warn(`warn: ${origin.where}: commands executed from aliases run with ${daemonUser} privileges`);
  }
  const value = target.kind === 'file' ? target.path : target.command;
  // The queue would refuse the envelope at the commit, and with it the whole message: refuse this recipient now.
  if (value.length > DELIVERY_LIMITS.target) {
    throw new Failure(EXPANSION_TEMP, `${origin.where}: ${target.kind} target of ${value.length} characters, longer than the ${DELIVERY_LIMITS.target} an envelope holds`);
  }
  return {
    recipient: addressOf(node),
    dispatcher: action.name,
    delivery: { user: target.runAs, kind: target.kind, target: value, source: sourceOf(origin) },
  };
}
// #endregion file-or-command
