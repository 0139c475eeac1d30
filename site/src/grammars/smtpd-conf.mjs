// A TextMate grammar for OpenSMTPD's smtpd.conf(5), registered with
// Expressive Code (ec.config.mjs) under the id that languageOf() gives
// .conf files: `smtpd-conf`.

const keywords = [
  // Top-level statements and their main words.
  'listen', 'on', 'action', 'match', 'table', 'pki', 'ca', 'filter', 'include', 'queue', 'smtp', 'srs', 'bounce', 'proc', 'proc-exec',
  // Rules.
  'from', 'for', 'any', 'local', 'socket', 'auth', 'mail-from', 'rcpt-to', 'helo', 'rdns', 'src', 'domain', 'tag', 'reject',
  'tls', 'smtps', 'secure', 'port', 'hostname', 'hostnames', 'cert', 'key', 'dhe', 'ciphers', 'protocols', 'require', 'verify',
  'auth-optional', 'tls-require', 'mask-src', 'no-dsn', 'senders', 'masquerade', 'inet4', 'inet6', 'family', 'received-auth',
  // Actions.
  'mbox', 'maildir', 'lmtp', 'mda', 'relay', 'alias', 'virtual', 'userbase', 'user', 'forward-only', 'junk', 'expand-only',
  'wrapper', 'host', 'backup', 'mx', 'helo-src', 'as', 'rcpt', 'limit', 'max-message-size', 'max-deferred', 'sub-addr-delim',
  'expire', 'warn-interval', 'compression', 'encryption', 'ttl', 'session', 'transaction', 'max-mails', 'max-rcpt',
  // Filters.
  'phase', 'connect', 'ehlo', 'data', 'commit', 'bypass', 'disconnect', 'rewrite', 'report', 'chain', 'fcrdns', 'regex',
  // Extensions of this server beyond OpenSMTPD (kept with the rest so they read the same).
  'forward', 'exec',
];
// Longest first, so `mail-from` wins over `from`.
const alternation = [...new Set(keywords)]
  .sort((a, b) => b.length - a.length)
  .map((k) => k.replace(/[-]/g, '\\-'))
  .join('|');

/** @type {import('shiki').LanguageRegistration} */
export const smtpdConf = {
  name: 'smtpd-conf',
  displayName: 'smtpd.conf',
  scopeName: 'source.smtpd-conf',
  aliases: ['smtpd.conf', 'opensmtpd'],
  patterns: [
    { include: '#comment' },
    { include: '#string' },
    { include: '#macro-definition' },
    { include: '#macro' },
    { include: '#table' },
    { include: '#backend' },
    { include: '#keyword' },
    { include: '#number' },
    { include: '#operator' },
  ],
  repository: {
    comment: {
      match: '(?:^|(?<=\\s))(#).*$',
      name: 'comment.line.number-sign.smtpd-conf',
      captures: { 1: { name: 'punctuation.definition.comment.smtpd-conf' } },
    },
    string: {
      begin: '"',
      end: '"',
      name: 'string.quoted.double.smtpd-conf',
      beginCaptures: { 0: { name: 'punctuation.definition.string.begin.smtpd-conf' } },
      endCaptures: { 0: { name: 'punctuation.definition.string.end.smtpd-conf' } },
      patterns: [{ match: '\\\\.', name: 'constant.character.escape.smtpd-conf' }, { include: '#macro' }],
    },
    'macro-definition': {
      match: '^\\s*([A-Za-z_][A-Za-z0-9_]*)\\s*(=)',
      captures: {
        1: { name: 'variable.other.definition.smtpd-conf' },
        2: { name: 'keyword.operator.assignment.smtpd-conf' },
      },
    },
    macro: {
      match: '(\\$)[A-Za-z_][A-Za-z0-9_]*',
      name: 'variable.other.macro.smtpd-conf',
      captures: { 1: { name: 'punctuation.definition.variable.smtpd-conf' } },
    },
    table: {
      match: '(<)([A-Za-z0-9_.:-]+)(>)',
      captures: {
        1: { name: 'punctuation.definition.table.begin.smtpd-conf' },
        2: { name: 'entity.name.type.table.smtpd-conf' },
        3: { name: 'punctuation.definition.table.end.smtpd-conf' },
      },
    },
    backend: {
      // table aliases file:/etc/mail/aliases
      match: '(?<![\\w-])(file|db|ldap|sqlite|mysql|postgres|redis|socketmap|proc)(:)',
      captures: {
        1: { name: 'support.type.backend.smtpd-conf' },
        2: { name: 'punctuation.separator.smtpd-conf' },
      },
    },
    keyword: {
      match: `(?<![\\w.$<-])(?:${alternation})(?![\\w-])`,
      name: 'keyword.control.smtpd-conf',
    },
    number: {
      // Ports, sizes (35M), durations (4d), addresses (127.0.0.1).
      match: '(?<![\\w.-])\\d+(?:\\.\\d+)*(?:[smhdwkKMGT]|[kKMG]B)?(?![\\w.-])',
      name: 'constant.numeric.smtpd-conf',
    },
    operator: {
      match: '!|\\{|\\}|,',
      name: 'keyword.operator.smtpd-conf',
    },
  },
};

export default smtpdConf;
