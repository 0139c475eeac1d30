/**
 * Expansion: what one RCPT TO becomes (aliases, virtual maps, ~/.forward),
 * decided in the lookup process at RCPT time. See expander.ts for the
 * walk, userbase.ts for who the users are, forward-file.ts for reading a
 * ~/.forward safely in the root parent, types.ts for the answers.
 */
export {
  EXPAND_DEPTH, Expander, MAX_EXPANSION_NODES, MAX_FORWARD_NODES, openActionTables, type ExpanderOptions,
} from './expander.ts';
export { MAX_FORWARD_SIZE, readForwardFile, targetLines, type TargetLine } from './forward-file.ts';
export { openUserbase, PasswdFile, parsePasswd, userbaseLookup, type Getpwnam, type Userbase } from './userbase.ts';
export type { ExpandedRecipient, Expansion, ExpandRequest, ForwardFile } from './types.ts';
