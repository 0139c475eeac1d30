/**
 * Expansion's vocabulary. One RCPT TO goes in; out come the envelopes it
 * becomes (an alias with three members is three envelopes), or the
 * reason it cannot be accepted, as an SMTP reply and a log line.
 */
import type { SessionInfo } from '../lookup/index.ts';
import type { LocalDelivery, MailAddress } from '../queue/types.ts';

/** One envelope that a recipient expanded to. */
export interface ExpandedRecipient {
  /** The final address: the recipient itself, or where an alias or a virtual map sent it. */
  recipient: MailAddress;
  /** The action that delivers it (the rule that matched the final address). */
  dispatcher: string;
  /** Absent for a relay action: the address goes on as it is. */
  delivery?: LocalDelivery;
}

/**
 * The answer for one RCPT TO. `tempfail` and `permfail` carry the reply
 * the client sees (`451 4.7.1 ...`, `550 5.1.1 ...`) and a log line that
 * names the file or table line responsible, which the client must not see.
 */
export type Expansion =
  | { result: 'ok'; recipients: ExpandedRecipient[] }
  | { result: 'tempfail' | 'permfail'; code: number; enhanced: string; reply: string; log: string };

/** What an expansion asks about: the session (for the rules) and the address the client sent. */
export interface ExpandRequest {
  session: SessionInfo;
  mailFrom: string;
  rcptTo: string;
}

/**
 * A ~/.forward file as the parent read it for lookup: the parent runs as
 * root and can open a user's home, lookup cannot. `missing` is the normal
 * case (no file: deliver to the mailbox); `refused` means the file exists
 * but fails the checks (owner, mode, symlink), which is a temporary failure
 * so that the user can fix it without losing mail.
 */
export type ForwardFile =
  | { status: 'ok'; path: string; content: string }
  | { status: 'missing' }
  | { status: 'refused' | 'error'; path: string; reason: string };
