/**
 * `listen on socket [options]` and `listen on INTERFACE [options]`.
 */
import type { ListenDecl } from './ast.ts';
import { ConfigError } from './errors.ts';
import type { Token } from './lexer.ts';
import type { TokenStream } from './token-stream.ts';
import { PORT_NAMES } from './units.ts';

export const LISTEN_OPTIONS = [
  'auth', 'auth-optional', 'ca', 'filter', 'hostname', 'hostnames', 'inet4', 'inet6',
  'mask-src', 'no-dsn', 'pki', 'port', 'proxy-v2', 'received-auth', 'senders', 'smtps',
  'tag', 'tls', 'tls-require',
] as const;

/** The local enqueuer's socket takes only these. */
export const SOCKET_OPTIONS = ['filter', 'mask-src', 'tag'] as const;

/** Options that exclude each other count as one: a listener has one TLS mode, one family. */
const SAME_SETTING: Record<string, string> = {
  'tls-require': 'tls', smtps: 'tls', 'auth-optional': 'auth', inet6: 'inet4',
};

export function parseListen(s: TokenStream, start: Token): ListenDecl {
  s.expect('on', '"listen"');
  const socket = s.accept('socket') !== undefined;
  const where = socket ? 'socket' : s.expectValue('the interface, address or host name to listen on').text;
  const listener: ListenDecl = {
    kind: 'listen',
    on: socket ? { kind: 'socket' } : { kind: 'interface', name: where },
    maskSrc: false, noDsn: false, receivedAuth: false, proxyV2: false,
    loc: start.loc,
  };
  const allowed: readonly string[] = socket ? SOCKET_OPTIONS : LISTEN_OPTIONS;
  const seen = new Map<string, Token>();

  while (!s.atEnd()) {
    const option = s.peek();
    if (option.kind === 'word' && socket && (LISTEN_OPTIONS as readonly string[]).includes(option.text)
      && !allowed.includes(option.text)) {
      s.fail(option.loc, `"${option.text}" cannot be used with listen on socket`,
        `listen on socket accepts only: ${SOCKET_OPTIONS.join(', ')}`);
    }
    if (option.kind !== 'word' || !allowed.includes(option.text)) s.expectEnd(`listen on ${where}`, allowed);
    s.next();

    const setting = SAME_SETTING[option.text] ?? option.text;
    const earlier = seen.get(setting);
    if (earlier) {
      s.report(new ConfigError(option.loc, `${setting === 'inet4' ? 'the address family' : setting} is already set for this listener`,
        `"${earlier.text}" at column ${earlier.loc.col} sets it; keep one`));
    }
    seen.set(setting, option);
    parseListenOption(s, option, listener);
  }

  // Certificates and passwords only make sense on an encrypted connection.
  for (const needsTls of ['pki', 'auth'] as const) {
    const option = seen.get(needsTls);
    if (option && !listener.tls) {
      s.report(new ConfigError(option.loc, `"${option.text}" requires tls, tls-require or smtps on the same listener`,
        needsTls === 'auth' ? 'passwords must not cross the network in clear: add tls' : 'add tls'));
    }
  }
  return listener;
}

/** One option, its keyword already read. */
function parseListenOption(s: TokenStream, option: Token, l: ListenDecl): void {
  switch (option.text) {
    case 'port': {
      const name = s.peek();
      if (name.kind === 'word' && Object.hasOwn(PORT_NAMES, name.text)) {
        s.next();
        l.port = PORT_NAMES[name.text];
      } else if (name.kind === 'word' && !/^[0-9]+$/.test(name.text)) {
        s.fail(name.loc, `unknown port name "${name.text}"`, `use a number, or one of: ${Object.keys(PORT_NAMES).join(', ')}`);
      } else {
        l.port = s.expectNumber('port', 1, 65535).value;
      }
      return;
    }
    case 'inet4':
    case 'inet6':
      l.family = option.text;
      return;
    case 'tls':
      l.tls = { mode: 'starttls', verify: false };
      return;
    case 'tls-require':
    case 'smtps':
      l.tls = { mode: option.text, verify: s.accept('verify') !== undefined };
      return;
    case 'pki':
      l.pki = s.expectValue('a pki name').text;
      return;
    case 'ca':
      l.ca = s.expectValue('a ca name').text;
      return;
    case 'auth':
    case 'auth-optional': {
      const table = s.atPunct('<') ? s.expectTableRef('credentials').name : undefined;
      l.auth = { required: option.text === 'auth', ...(table !== undefined && { table }) };
      return;
    }
    case 'tag':
      l.tag = s.expectValue('a tag').text;
      return;
    case 'hostname':
      l.hostname = s.expectValue('a host name').text;
      return;
    case 'hostnames':
      l.hostnames = s.expectTableRef('hostnames').name;
      return;
    case 'senders':
      l.senders = { table: s.expectTableRef('senders').name, masquerade: s.accept('masquerade') !== undefined };
      return;
    case 'filter':
      l.filter = parseFilterName(s);
      return;
    case 'mask-src':
      l.maskSrc = true;
      return;
    case 'no-dsn':
      l.noDsn = true;
      return;
    case 'received-auth':
      l.receivedAuth = true;
      return;
    case 'proxy-v2':
      l.proxyV2 = true;
      return;
  }
}

/** `filter NAME` or an inline chain `filter { a, b }`. */
export function parseFilterName(s: TokenStream): string | string[] {
  if (!s.acceptPunct('{')) return s.expectValue('a filter name').text;
  return parseNameList(s, 'a filter name');
}

/** `a, b, c }` after an opening brace: names separated by commas or spaces. */
export function parseNameList(s: TokenStream, what: string): string[] {
  const names = [s.expectValue(what).text];
  while (!s.acceptPunct('}')) {
    s.acceptPunct(',');
    if (s.atEnd()) s.fail(s.peek().loc, 'missing closing "}"', 'the list must end on the line it starts');
    names.push(s.expectValue(what).text);
  }
  return names;
}
