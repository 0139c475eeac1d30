/**
 * The reserved words of smtpd.conf: OpenSMTPD 6.8 reads each of these,
 * when it is not quoted, as a keyword, wherever it appears. So a name or a
 * value that happens to be one of them must be quoted: `action "local" mbox`
 * works, `action local mbox` does not. We keep the same list, so that a file
 * this parser accepts is also accepted by OpenSMTPD.
 *
 * The list was checked word by word against `smtpd -n` of OpenSMTPD 6.8.0p2.
 */
export const RESERVED_WORDS: ReadonlySet<string> = new Set([
  'action', 'admd', 'alias', 'any', 'auth', 'auth-optional', 'backup', 'bounce', 'bypass',
  'ca', 'cert', 'chain', 'chroot', 'ciphers', 'commit', 'compression', 'connect', 'data',
  'data-line', 'dhe', 'disconnect', 'domain', 'ehlo', 'encryption', 'expand-only', 'fcrdns',
  'filter', 'for', 'forward-only', 'from', 'group', 'helo', 'helo-src', 'host', 'hostname',
  'hostnames', 'include', 'inet4', 'inet6', 'junk', 'key', 'limit', 'listen', 'lmtp', 'local',
  'mail-from', 'maildir', 'mask-src', 'masquerade', 'match', 'max-deferred',
  'max-message-size', 'mbox', 'mda', 'mta', 'mx', 'no-dsn', 'no-verify', 'noop', 'on',
  'phase', 'pki', 'port', 'proc', 'proc-exec', 'proxy-v2', 'queue', 'quit', 'rcpt-to',
  'rdns', 'received-auth', 'regex', 'reject', 'relay', 'report', 'rewrite', 'rset',
  'scheduler', 'senders', 'smtp', 'smtp-in', 'smtp-out', 'smtps', 'socket', 'src', 'srs',
  'sub-addr-delim', 'table', 'tag', 'tagged', 'tls', 'tls-require', 'ttl', 'user',
  'userbase', 'verify', 'virtual', 'warn-interval', 'wrapper',
  // Added by this project (see the action options in ast.ts).
  'forward-file', 'allow-exec',
]);

/** The words that can start a statement, for "did you mean" hints. */
export const STATEMENT_KEYWORDS = [
  'action', 'admd', 'bounce', 'ca', 'filter', 'include', 'listen', 'match', 'mda', 'mta',
  'pki', 'proc', 'queue', 'scheduler', 'smtp', 'srs', 'table',
] as const;
