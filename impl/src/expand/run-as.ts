/**
 * Who a file or a command runs as. Expansion decides it when the target
 * enters the tree and writes it into the envelope; the lookup process
 * runs nothing, and delivery runs the target as that account.
 */
import type { LocalAction } from '../config/index.ts';
import type { AliasTarget } from '../table/index.ts';
import { asciiLowercase } from '../table/lowercase.ts';
import type { Node, Target } from './tree.ts';

// #region run-as
/**
 * A table's or a file's target as a node. A file or command runs as the
 * user whose ~/.forward named it (the parent found in the userbase), else
 * as the action's `user`, else as the daemon's account (lka_submit()).
 */
export function fromAlias(target: Exclude<AliasTarget, { kind: 'include' }>, parent: Node, action: LocalAction, daemonUser: string): Target {
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
