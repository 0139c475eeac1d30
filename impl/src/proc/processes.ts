/**
 * The processes of the daemon, who they run as, and which of them talk to
 * each other directly. Everything else about the split (forking, the
 * order of start and stop, the channels) is read from this one table.
 */

// #region process-table
/**
 * The children, in the order they start; they stop in the reverse order.
 * The scheduler and the dispatcher start before the queue, which hands
 * the scheduler, while starting, every envelope it finds in the spool,
 * and the scheduler may at once ask for deliveries. smtp starts last, so that the
 * first client it accepts finds lookup and queue ready, and stops first,
 * so that no session is left whose queue has already gone. The parent is not in the list: it is the one that
 * reads this table.
 *
 * `user` is the account the child runs as when the daemon starts as
 * root. The queue alone runs as _smtpq and alone can read the spool; a
 * bug in the process that parses what the Internet sends (smtp, as
 * _smtpd) cannot open a queued message, only hand new ones to the queue.
 */
export const PROCESSES = [
  { name: 'crypto', user: 'smtpd', owns: 'nothing yet: Node cannot sign a TLS handshake for another process' },
  { name: 'control', user: 'smtpd', owns: 'the smtpctl socket (not built yet)' },
  { name: 'lookup', user: 'smtpd', owns: 'the rules and tables: which action takes a recipient' },
  { name: 'scheduler', user: 'smtpd', owns: 'the envelopes waiting for delivery, in memory' },
  { name: 'dispatcher', user: 'smtpd', owns: 'deliveries: hands each envelope to an agent running as its user' },
  { name: 'queue', user: 'smtpq', owns: 'the spool: messages and envelopes on disk' },
  { name: 'smtp', user: 'smtpd', owns: 'the listening sockets, the SMTP sessions, the TLS keys' },
] as const satisfies readonly { name: string; user: 'smtpd' | 'smtpq'; owns: string }[];

export type ProcessName = (typeof PROCESSES)[number]['name'];
export const PROCESS_NAMES: readonly ProcessName[] = PROCESSES.map((p) => p.name);

/** The system accounts, as OpenSMTPD names them. */
export const ACCOUNTS = { smtpd: '_smtpd', smtpq: '_smtpq' } as const;

/**
 * The pairs of children that get a socket of their own, both ends made by
 * the parent. The rest goes through the parent, which is rare enough
 * (start, stop, ping) not to matter. The first of each pair sends the
 * requests; the second answers, except between queue and scheduler,
 * where each asks the other: the queue says what it committed, the
 * scheduler says what to deliver.
 */
export const LINKS = [
  ['smtp', 'lookup'],
  ['smtp', 'queue'],
  ['queue', 'scheduler'],
  ['queue', 'dispatcher'],
  ['queue', 'lookup'],
] as const satisfies readonly (readonly [ProcessName, ProcessName])[];
// #endregion process-table

export function isProcessName(word: unknown): word is ProcessName {
  return typeof word === 'string' && (PROCESS_NAMES as readonly string[]).includes(word);
}
