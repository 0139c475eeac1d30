/**
 * `action NAME METHOD [options]`: how mail selected by a match rule is delivered.
 */
import type { ActionDecl, Duration, LocalMethod, LocalOptions, RelayOptions } from './ast.ts';
import { ConfigError, ConfigWarning, suggest } from './errors.ts';
import type { Token } from './lexer.ts';
import type { TokenStream } from './token-stream.ts';
import { DURATION_HINT, parseDuration } from './units.ts';

export const DELIVERY_METHODS = ['mbox', 'maildir', 'mda', 'lmtp', 'forward-only', 'expand-only', 'relay'] as const;
export const LOCAL_OPTIONS = ['alias', 'virtual', 'userbase', 'user', 'wrapper', 'ttl', 'forward-file', 'allow-exec'] as const;
export const RELAY_OPTIONS = [
  'backup', 'host', 'domain', 'helo', 'helo-src', 'tls', 'auth', 'mail-from', 'pki', 'ca', 'srs', 'src', 'filter', 'ttl',
] as const;

/** Protocols of a relay URL `proto://[label@]host[:port]`. */
export const RELAY_PROTOCOLS = ['smtp', 'smtp+tls', 'smtp+notls', 'smtps', 'lmtp'] as const;

export function parseAction(s: TokenStream, start: Token): ActionDecl {
  const name = s.expectValue('an action name').text;
  const m = s.peek();
  if (m.kind !== 'word' || !(DELIVERY_METHODS as readonly string[]).includes(m.text)) {
    const hint = m.kind === 'word' ? suggest(m.text, DELIVERY_METHODS, 'known methods') : `known methods: ${DELIVERY_METHODS.join(', ')}`;
    s.fail(m.loc, `unknown delivery method ${m.kind === 'newline' ? '(none given)' : `"${m.text}"`} for action ${name}`, hint);
  }
  s.next();
  if (m.text === 'relay') {
    return { kind: 'action', name, method: { kind: 'relay' }, options: parseRelayOptions(s, name), loc: start.loc };
  }
  const method = parseLocalMethod(s, m);
  return { kind: 'action', name, method, options: parseLocalOptions(s, name, method), loc: start.loc };
}

/** The arguments of a local method, its keyword already read. */
function parseLocalMethod(s: TokenStream, m: Token): LocalMethod {
  switch (m.text) {
    case 'mbox':
    case 'forward-only':
    case 'expand-only':
      return { kind: m.text };
    case 'mda':
      return { kind: 'mda', command: s.expectValue('the command of the mda, in double quotes').text };
    case 'lmtp':
      return {
        kind: 'lmtp',
        destination: s.expectValue('the LMTP server, as host:port or a socket path').text,
        rcptTo: s.accept('rcpt-to') !== undefined,
      };
    // #region maildir-method
    case 'maildir': {
      // The man page writes `maildir [pathname [junk]]`, but OpenSMTPD 6.8
      // reads the words as they come: `junk` is a reserved word, so an
      // unquoted `junk` is always the flag (file spam in Junk under the
      // default ~/Maildir), and any other value is the path. A folder that
      // is really named junk must be quoted: `maildir "junk"`.
      const path = s.atValue() ? s.next().text : undefined;
      const junk = s.accept('junk') !== undefined;
      // `forward-file` is a reserved word here too, so `maildir forward-file`
      // is ~/Maildir with the option. OpenSMTPD 6.8 does not know the word
      // and would deliver to a maildir named forward-file, without a word of
      // complaint: the same line means two things, so say which one we read.
      const next = s.peek();
      if (path === undefined && !junk && next.kind === 'word' && next.text === 'forward-file') {
        s.report(new ConfigWarning(next.loc, '"forward-file" right after maildir is read as the option, not as a folder name',
          'OpenSMTPD 6.8 would deliver to a maildir named "forward-file"; write maildir "~/Maildir" forward-file'
          + ' to keep the option without this warning, or maildir "forward-file" for the folder'));
      }
      return { kind: 'maildir', ...(path !== undefined && { path }), junk };
    }
    // #endregion maildir-method
  }
  throw new Error(`unreachable: method ${m.text}`);
}

/** Options of local delivery; `allow-exec` qualifies the option just before it. */
function parseLocalOptions(s: TokenStream, action: string, method: LocalMethod): LocalOptions {
  const o: LocalOptions = {};
  const seen = new Map<string, Token>();
  let last: Token | undefined;
  while (!s.atEnd()) {
    const t = s.peek();
    if (t.kind === 'word' && (RELAY_OPTIONS as readonly string[]).includes(t.text) && !(LOCAL_OPTIONS as readonly string[]).includes(t.text)) {
      s.fail(t.loc, `"${t.text}" is an option of relay, not of ${method.kind}`,
        `local delivery options are: ${LOCAL_OPTIONS.join(', ')}`);
    }
    if (t.kind !== 'word' || !(LOCAL_OPTIONS as readonly string[]).includes(t.text)) s.expectEnd(`action ${action}`, LOCAL_OPTIONS);
    s.next();
    // allow-exec may follow each of forward-file, alias and virtual; a second one in a row is caught below.
    if (t.text !== 'allow-exec') once(s, seen, t.text === 'virtual' ? 'alias' : t.text, t, t.text === 'virtual' || t.text === 'alias' ? 'alias or virtual' : t.text);
    switch (t.text) {
      // #region allow-exec
      case 'alias':
      case 'virtual':
        o[t.text] = { table: s.expectTableRef(`${t.text} expansion`).name, allowExec: false };
        break;
      case 'forward-file':
        o.forwardFile = { allowExec: false };
        break;
      case 'allow-exec': {
        // Only the expansions that read addresses from a table or a file may run commands.
        const target = last?.text === 'forward-file' ? o.forwardFile : last?.text === 'alias' ? o.alias
          : last?.text === 'virtual' ? o.virtual : undefined;
        if (!target) {
          s.fail(t.loc, '"allow-exec" must follow forward-file, alias <table> or virtual <table>',
            'write it right after the option whose entries may run commands, as in: alias <aliases> allow-exec');
        }
        target.allowExec = true;
        break;
      }
      // #endregion allow-exec
      case 'userbase':
        o.userbase = s.expectTableRef('user lookups').name;
        break;
      case 'user':
        if (method.kind === 'mbox' || method.kind === 'forward-only' || method.kind === 'expand-only') {
          s.report(new ConfigError(t.loc, `"user" cannot be used with ${method.kind}`,
            method.kind === 'mbox' ? 'mbox delivers as the recipient; use maildir, mda or lmtp to deliver as one user' : undefined));
        }
        o.user = s.expectValue('a user name').text;
        break;
      case 'wrapper':
        o.wrapper = s.expectValue('an mda wrapper name').text;
        break;
      case 'ttl':
        o.ttl = expectDuration(s, 'ttl');
        break;
    }
    last = t;
  }
  return o;
}

function parseRelayOptions(s: TokenStream, action: string): RelayOptions {
  const o: RelayOptions = { srs: false };
  const seen = new Map<string, Token>();
  while (!s.atEnd()) {
    const t = s.peek();
    if (t.kind === 'word' && (LOCAL_OPTIONS as readonly string[]).includes(t.text) && !(RELAY_OPTIONS as readonly string[]).includes(t.text)) {
      s.fail(t.loc, `"${t.text}" is an option of local delivery, not of relay`, `relay options are: ${RELAY_OPTIONS.join(', ')}`);
    }
    if (t.kind !== 'word' || !(RELAY_OPTIONS as readonly string[]).includes(t.text)) s.expectEnd(`action ${action}`, RELAY_OPTIONS);
    s.next();
    once(s, seen, t.text, t, t.text);
    switch (t.text) {
      case 'backup':
        o.backup = s.accept('mx') ? { mx: s.expectValue('the name of this mail exchanger').text } : {};
        break;
      case 'host':
        o.host = s.expectValueOrTable('the relay host');
        if (o.host.kind === 'value') checkRelayUrl(s, o.host.value, o.host.loc);
        break;
      case 'domain':
        o.domain = s.expectTableRef('domain to relay lookups').name;
        break;
      case 'helo':
        o.helo = s.expectValue('the name to send in HELO').text;
        break;
      case 'helo-src':
        o.heloSrc = s.expectTableRef('HELO names by source address').name;
        break;
      case 'tls':
        o.tls = { noVerify: s.accept('no-verify') !== undefined };
        break;
      case 'auth':
        o.auth = s.expectTableRef('relay credentials').name;
        break;
      case 'mail-from':
        o.mailFrom = s.expectValue('a sender address').text;
        break;
      case 'pki':
      case 'ca':
      case 'filter':
        o[t.text] = s.expectValue(`a ${t.text} name`).text;
        break;
      case 'srs':
        o.srs = true;
        break;
      case 'src':
        o.src = s.expectValueOrTable('the source address');
        break;
      case 'ttl':
        o.ttl = expectDuration(s, 'ttl');
        break;
    }
  }
  const conflict = (a: string, b: string) => {
    const second = seen.get(b)!.loc.col > seen.get(a)!.loc.col ? seen.get(b)! : seen.get(a)!;
    s.report(new ConfigError(second.loc, `"${a}" and "${b}" cannot be used together`,
      a === 'backup' ? 'a backup MX delivers to the better MX of the domain; remove the other option' : undefined));
  };
  if (seen.has('backup') && seen.has('host')) conflict('backup', 'host');
  if (seen.has('backup') && seen.has('domain')) conflict('backup', 'domain');
  if (seen.has('auth') && !seen.has('host')) {
    s.report(new ConfigError(seen.get('auth')!.loc, '"auth" requires "host"',
      'credentials are sent to a smarthost: add host smtp+tls://label@smtp.example.com'));
  }
  checkRelayTls(s, o, seen);
  return o;
}

// #region relay-auth-needs-tls
/**
 * A relay that logs in to its smarthost must do so over TLS, or the
 * password crosses the network in clear. TLS is certain with smtps:// and
 * smtp+tls://, or with the `tls` option; plain smtp:// only tries STARTTLS,
 * and anyone on the path can strip the offer. OpenSMTPD 6.8 accepts such a
 * file; when a session then ends up without TLS, it refuses to send AUTH
 * and the mail waits in the queue. We say so before the first message.
 * (The hosts of a `host <table>` are known only when the table is read.)
 */
function checkRelayTls(s: TokenStream, o: RelayOptions, seen: ReadonlyMap<string, Token>): void {
  const written = o.host?.kind === 'value' ? /^([^:/]+):\/\//.exec(o.host.value)?.[1] : undefined;
  const proto = o.host?.kind === 'value' ? written ?? 'smtp' : undefined;
  const tls = seen.get('tls');
  if (tls && (proto === 'smtp+notls' || proto === 'lmtp')) {
    s.report(new ConfigError(tls.loc, `"tls" contradicts the relay host's protocol ${proto}://`,
      proto === 'lmtp' ? 'LMTP relays do not use TLS; remove tls' : 'remove tls, or write the host as smtp+tls://'));
    return;
  }
  const auth = seen.get('auth');
  if (!auth || proto === undefined || proto === 'smtps' || proto === 'smtp+tls' || tls) return;
  const host = written === undefined ? 'a relay host without a protocol' : `${written}://`;
  s.report(new ConfigError(auth.loc, `"auth" sends a password, but ${host} does not require TLS`,
    proto === 'smtp' ? 'write the host as smtp+tls://label@host (STARTTLS) or smtps://label@host, or add the option tls'
      : `write the host as smtp+tls:// or smtps:// instead of ${proto}://`));
}
// #endregion relay-auth-needs-tls

/** Reports an option written twice in one action. */
function once(s: TokenStream, seen: Map<string, Token>, key: string, t: Token, what: string): void {
  const earlier = seen.get(key);
  if (earlier) {
    s.report(new ConfigError(t.loc, `${what} is already set for this action`, `"${earlier.text}" at column ${earlier.loc.col} sets it; keep one`));
  }
  seen.set(key, t);
}

export function expectDuration(s: TokenStream, what: string): Duration {
  const t = s.expectValue(`a delay for ${what}`);
  const d = parseDuration(t.text);
  if (!d) s.fail(t.loc, `invalid delay for ${what}: "${t.text}"`, DURATION_HINT);
  return d;
}

/** `[proto://[label@]]host[:port]`: the protocol must be known, and lmtp needs a port. */
function checkRelayUrl(s: TokenStream, url: string, loc: Token['loc']): void {
  const m = /^(?:([^:/]+):\/\/)?(?:[^@]+@)?(\[[^\]]+\]|[^:[\]]+)(?::([0-9]+))?$/.exec(url);
  if (!m) s.fail(loc, `invalid relay host "${url}"`, 'write [protocol://[label@]]host[:port], as in smtp+tls://smtp.example.com:587');
  const [, proto, , port] = m;
  if (proto !== undefined && !(RELAY_PROTOCOLS as readonly string[]).includes(proto)) {
    s.fail(loc, `unknown relay protocol "${proto}"`, suggest(proto, RELAY_PROTOCOLS, 'known protocols'));
  }
  if (proto === 'lmtp' && port === undefined) s.fail(loc, 'an lmtp relay host needs a port', `write lmtp://host:port`);
  if (port !== undefined && !(Number(port) >= 1 && Number(port) <= 65535)) s.fail(loc, `invalid port in relay host: ${port}`);
}
