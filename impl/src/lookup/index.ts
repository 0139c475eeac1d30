/**
 * The lookup process's rule matcher: which action handles a recipient,
 * or why it is refused. See ruleset.ts for the decision, criteria.ts for
 * each criterion, session.ts for what a session and an envelope tell it.
 */
export {
  Ruleset, RulesetError,
  type Accepted, type Decision, type Rejection, type RuleTrace, type RuleTraceHook, type RulesetOptions,
} from './ruleset.ts';
export { QUESTION_ORDER, type Check, type CheckKind } from './criteria.ts';
export { localTables, systemLocalNames, type LocalNames } from './local-names.ts';
export { mailKey, recipientDomain, sourceKey, type EnvelopeInfo, type SessionInfo } from './session.ts';
