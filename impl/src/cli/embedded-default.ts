/**
 * The configuration smtpd runs with when it is given none (no -f): a
 * private mail server for the person who started it. It listens on
 * 127.0.0.1 port 2525 only (a port a normal user may bind), accepts mail
 * for this machine's local names, delivers it to a Maildir under ./var,
 * and relays nothing. It is written as smtpd.conf text and parsed like
 * any other file, so `smtpd -n -v` prints it and the book can show it.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';

export const EMBEDDED_PORT = 2525;

/** Where the embedded default keeps its queue and its mail: under ./var, as absolute paths. */
export function embeddedPaths(cwd = process.cwd()) {
  const user = userInfo().username;
  return { spool: resolve(cwd, 'var/spool'), mail: resolve(cwd, 'var/mail'), user };
}

// #region embedded-config
/**
 * The embedded default, as smtpd.conf text for the same parser as any
 * file: one listener, on 127.0.0.1 only; one action, a Maildir per user
 * under ./var/mail; one rule, for mail from this machine to this
 * machine's own names. Mail for any other domain matches no rule and is
 * refused at RCPT TO, so this server relays nothing.
 */
export function embeddedConfig(cwd = process.cwd()): string {
  const { mail } = embeddedPaths(cwd);
  return [
    '# The embedded default: smtpd started without -f.',
    '# Mail for this machine goes to a Maildir per user under ./var/mail;',
    '# nothing is relayed, and only this machine can connect.',
    `listen on 127.0.0.1 port ${EMBEDDED_PORT}`,
    '',
    `action "local" maildir "${mail}/%{user.username}"`,
    '',
    'match from local for local action "local"',
    '',
  ].join('\n');
}
// #endregion embedded-config

/**
 * What smtpd prints once the embedded default is up: where mail goes, and
 * how to send some. `spool` is the one the daemon runs with (--spool may
 * name another than ./var/spool).
 */
export function embeddedBanner(spool: string, cwd = process.cwd()): string {
  const { mail, user } = embeddedPaths(cwd);
  return [
    'smtpd: no -f given: running the embedded default configuration',
    `smtpd:   listening on 127.0.0.1 port ${EMBEDDED_PORT}, for local mail only`,
    `smtpd:   queue in ${spool}`,
    `smtpd:   mail for ${user}@localhost goes to ${mail}/${user}/new/`,
    'smtpd: send a test message with:',
    `smtpd:   swaks --server 127.0.0.1:${EMBEDDED_PORT} --to ${user}@localhost`,
    `smtpd:   or: python3 -c "import smtplib; smtplib.SMTP('127.0.0.1', ${EMBEDDED_PORT}).sendmail('me@localhost', ['${user}@localhost'], 'Subject: hi\\n\\nhello\\n')"`,
    'smtpd: stop with Ctrl-C',
    '',
  ].join('\n');
}

/**
 * ./var (0755) and ./var/mail (1777, sticky, like /tmp). When smtpd is
 * started as root, the queue runs as _smtpq and must get through ./var
 * to its spool, and each user's delivery agent, running as that user,
 * must be able to create its own Maildir in ./var/mail (0700, the
 * user's), but not remove another's.
 */
export function prepareEmbedded(cwd = process.cwd()): void {
  const { mail } = embeddedPaths(cwd);
  const root = resolve(cwd, 'var');
  mkdirSync(mail, { recursive: true });
  chmodSync(root, 0o755);
  chmodSync(mail, 0o1777);
}
