/**
 * Local delivery: the agents that put a message where a local recipient
 * reads it, and the one entry point that chooses among them.
 *
 *     const outcome = await deliverLocal(request, content);
 *     // { result: 'ok' } | { result: 'tempfail' | 'permfail', reason }
 *
 * The agents are usable on their own (a test, a benchmark, a future
 * `smtpctl` command): deliverMaildir(), appendMbox(), runCommand(),
 * lmtpDeliver().
 */
export type { DeliveryOutcome, DeliveryRequest, UserRecord } from './types.ts';
export { deliverLocal, deliveryHeaders, mayRunAs, mayRunCommand, SYSTEM_MAIL_DIR, type CommandPolicy, type DeliverOptions } from './deliver.ts';
export { acquireDotlock, DotlockError, type Dotlock, type DotlockOptions } from './dotlock.ts';
export { LineEncoder, type LineEncoderOptions } from './lines.ts';
export {
  formatLmtpDestination, LMTP_DEFAULT_PORT, lmtpDeliver, parseLmtpDestination,
  type LmtpDestination, type LmtpTimeouts, type LmtpTransaction,
} from './lmtp.ts';
export { deliverMaildir, ensureMaildir, isSpamHeader, maildirUniqueName, type MaildirOptions } from './maildir.ts';
export { appendMbox, asctime, mboxFromLine, type MboxOptions } from './mbox.ts';
export {
  checkFormat, expandFormat, FORMAT_MODIFIERS, FORMAT_VARIABLES, FormatError, parseFormat,
  type FormatContext, type FormatModifier, type FormatPart, type FormatValues, type FormatVariable,
} from './mda-format.ts';
export {
  commandInput, commandOutcome, MDA_PATH, mdaCommandLine, mdaEnvironment, runCommand, SYSEXITS,
  type CommandExit, type CommandOptions, type MdaEnvironmentInput,
} from './mda.ts';
