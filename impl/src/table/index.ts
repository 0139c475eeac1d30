/**
 * The table subsystem: lists and mappings that smtpd.conf declares and the
 * lookup process asks. See table.ts for the questions, backend.ts for where
 * entries live, types.ts for the answers.
 */
export type { BackendName, TableBackend, TableSource } from './backend.ts';
export { openTable, tableSource } from './open.ts';
export { Table, type LookupTrace, type TableOptions, type TraceHook } from './table.ts';
export { lookupTraceLine } from './trace-line.ts';
export * from './types.ts';
export { hostnameMatch } from './match-domain.ts';
export { mailaddrMatch, parseMailAddr } from './match-mailaddr.ts';
export { netaddrMatch, parseNetAddr } from './match-netaddr.ts';
export { hasControlCharacter, notATarget, parseAliasTarget, parseAliasValue } from './alias-targets.ts';
export { parseRelayHost } from './parse-value.ts';
