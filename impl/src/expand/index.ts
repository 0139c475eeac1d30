/**
 * Expansion: what one RCPT TO becomes (aliases, virtual maps, ~/.forward),
 * decided in the lookup process at RCPT time. See expander.ts for the
 * walk and the modules it names for its parts, tables.ts for opening the
 * tables, userbase.ts for who the users are, forward-file.ts for reading
 * a ~/.forward safely in the root parent, types.ts for the answers.
 */
export { Expander, type ExpanderOptions } from './expander.ts';
export { EXPAND_DEPTH, MAX_EXPANSION_NODES, MAX_FORWARD_NODES } from './failure.ts';
export { openActionTables } from './tables.ts';
export { MAX_FORWARD_SIZE, readForwardFile, targetLines, type TargetLine } from './forward-file.ts';
export { openUserbase, PasswdFile, parsePasswd, userbaseLookup, type Getpwnam, type Userbase } from './userbase.ts';
export type { ExpandedRecipient, Expansion, ExpandRequest, ForwardFile } from './types.ts';
