/**
 * Mail addresses for the `mailaddr` service (`match mail-from <table>`,
 * `match rcpt-to <table>`) and for checking a `senders <table>` answer.
 */
import { asciiLowercase } from './lowercase.ts';
import { hostnameMatch } from './match-domain.ts';
import type { MailAddr } from './types.ts';

/**
 * Splits an address at its *last* `@`, as text_to_mailaddr() (to.c) does:
 * `user` has no domain, `@example.org` no user, `user@` an empty domain,
 * and `@` neither — the catch-all.
 */
export function parseMailAddr(text: string): MailAddr {
  const at = text.lastIndexOf('@');
  if (at < 0) return { user: text, domain: '' };
  return { user: text.slice(0, at), domain: text.slice(at + 1) };
}

// #region mailaddr-match
/**
 * Does the address `key` (from the session) match the table entry `entry`?
 * An entry names a user, a domain, or both, and only what it names is
 * compared (mailaddr_match() in util.c):
 *
 *   @                  every address
 *   @example.org       any user at example.org (or at a wildcard: @*.example.org)
 *   joe  or  joe@      joe at any domain
 *   joe@example.org    that user at that domain
 *
 * Users compare without case. If the entry's user has no sub-address
 * (`joe`, not `joe+lists`), the key's sub-address is dropped first, so the
 * entry `joe@example.org` also matches `joe+lists@example.org`; an entry
 * that spells out a sub-address matches only that one. The delimiter is
 * `smtp sub-addr-delim` from smtpd.conf, `+` by default.
 */
export function mailaddrMatch(key: string | MailAddr, entry: string | MailAddr, delimiter = '+'): boolean {
  const addr = typeof key === 'string' ? parseMailAddr(key) : key;
  const want = typeof entry === 'string' ? parseMailAddr(entry) : entry;

  if (want.user === '' && want.domain === '') return true;
  if (want.domain !== '' && !hostnameMatch(addr.domain, want.domain)) return false;
  if (want.user !== '') {
    let user = addr.user;
    if (!want.user.includes(delimiter)) {
      const tag = user.indexOf(delimiter);
      if (tag >= 0) user = user.slice(0, tag);
    }
    if (asciiLowercase(user) !== asciiLowercase(want.user)) return false;
  }
  return true;
}
// #endregion mailaddr-match
