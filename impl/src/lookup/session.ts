/**
 * What the rule matcher is told about a recipient: the SMTP session it
 * arrived in, and the envelope being built for it. The SMTP process fills
 * these in and sends them to the lookup process with every RCPT TO, as
 * OpenSMTPD's smtp_tx() copies the session's facts into `struct envelope`
 * before asking the lookup process (smtp_session.c).
 */
import { isIPv6 } from 'node:net';
import { parseMailAddr } from '../table/index.ts';

/** The facts of one SMTP session that a match rule can test. */
export interface SessionInfo {
  /**
   * The session came in over the local enqueuer's Unix socket (`listen on
   * socket`: sendmail, mail(1)), not over the network. Such a session has
   * no client address; OpenSMTPD calls its source `local`.
   */
  local: boolean;
  /** The client's IP address (`192.0.2.7`, `2001:db8::7`); ignored for a local session. */
  address?: string;
  /** The name the client's address resolves back to; absent when it has none. */
  rdns?: string;
  /** The `tag` of the listener the session arrived on, if it has one. */
  tag?: string;
  /** The user the client authenticated as (AUTH); absent when it did not. */
  authUser?: string;
  /** The name the client gave in HELO or EHLO. */
  helo: string;
  /** The session is encrypted (STARTTLS done, or an smtps listener). */
  tls: boolean;
}

/** The transaction's addresses, as the SMTP process has checked them. */
export interface EnvelopeInfo {
  /** MAIL FROM, `user@domain`; the empty string for the null sender `<>` of a bounce. */
  mailFrom: string;
  /**
   * RCPT TO, `user@domain`. Always has both parts: the SMTP process adds
   * its own name to a bare `<postmaster>` before asking, as smtp_mailaddr()
   * does, so the domain a `for` criterion compares is never empty.
   */
  rcptTo: string;
  /**
   * The address was not sent by a client but produced on this host, by an
   * alias or a ~/.forward file (EF_INTERNAL in OpenSMTPD). Such envelopes
   * are matched again, and every `from` criterion sees them as coming
   * from `local`.
   */
  internal?: boolean;
}

/**
 * The text a `from` criterion compares: `local` for the Unix socket (and
 * for internal envelopes), an IPv4 address as is, an IPv6 address in
 * brackets — the forms ss_to_text() (to.c) gives, which are the forms the
 * entries of `<localhost>` and a `regex` table are written against.
 */
export function sourceKey(session: SessionInfo, envelope: EnvelopeInfo): string {
  if (session.local || envelope.internal) return 'local';
  const address = session.address ?? '';
  return isIPv6(address) ? `[${address}]` : address;
}

/** The text a `mail-from` or `rcpt-to` criterion compares: `user@domain`, or `@` for the null sender. */
export function mailKey(address: string): string {
  const { user, domain } = parseMailAddr(address);
  return `${user}@${domain}`;
}

/** The domain a `for` criterion compares: what follows the last `@`. */
export function recipientDomain(envelope: EnvelopeInfo): string {
  return parseMailAddr(envelope.rcptTo).domain;
}
