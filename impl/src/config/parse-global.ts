/**
 * The server-wide statements: certificates (`pki`, `ca`) and the global
 * options (`admd`, `bounce`, `mda`, `mta`, `queue`, `scheduler`, `smtp`, `srs`).
 */
import type { CaDecl, Duration, GlobalOption, Limit, MdaWrapperDecl, PkiDecl } from './ast.ts';
import { suggest } from './errors.ts';
import type { Token } from './lexer.ts';
import { expectDuration } from './parse-action.ts';
import { describe, type TokenStream } from './token-stream.ts';
import { parseSize } from './units.ts';

/** `pki NAME cert FILE`, `key FILE`, `dhe PARAMS`; one or more of them per statement. */
export function parsePki(s: TokenStream, start: Token): PkiDecl {
  const pki: PkiDecl = { kind: 'pki', name: s.expectValue('a pki name, usually the server\'s host name').text, loc: start.loc };
  const params = ['cert', 'key', 'dhe'] as const;
  do {
    const t = s.peek();
    const param = params.find((p) => t.kind === 'word' && t.text === p);
    if (!param) {
      s.fail(t.loc, `expected cert, key or dhe after pki ${pki.name}, found ${describe(t)}`,
        t.kind === 'word' ? suggest(t.text, params, 'pki takes') : undefined);
    }
    s.next();
    if (param === 'dhe') {
      const v = s.expectValue('dhe parameters');
      if (v.text !== 'none' && v.text !== 'auto' && v.text !== 'legacy') {
        s.fail(v.loc, `invalid dhe parameters "${v.text}"`, 'use none, auto or legacy');
      }
      pki.dhe = v.text;
    } else {
      const file = s.expectValue(`the ${param === 'cert' ? 'certificate' : 'key'} file, in double quotes`);
      pki[param] = file.text;
      pki[param === 'cert' ? 'certLoc' : 'keyLoc'] = file.loc;
    }
  } while (!s.atEnd());
  return pki;
}

export function parseCa(s: TokenStream, start: Token): CaDecl {
  const name = s.expectValue('a ca name').text;
  s.expect('cert', `ca ${name}`);
  const cert = s.expectValue('the CA certificate file, in double quotes');
  s.expectEnd(`ca ${name}`);
  return { kind: 'ca', name, cert: cert.text, certLoc: cert.loc, loc: start.loc };
}

/** `mda wrapper NAME "command"` declares a wrapper; `mda limit ...` is a global option. */
export function parseMda(s: TokenStream, start: Token): MdaWrapperDecl | GlobalOption {
  if (s.accept('wrapper')) {
    const name = s.expectValue('a wrapper name').text;
    const command = s.expectValue('the wrapper command, in double quotes').text;
    s.expectEnd(`mda wrapper ${name}`);
    return { kind: 'mda-wrapper', name, command, loc: start.loc };
  }
  if (s.accept('limit')) return { kind: 'mda limit', limits: parseLimits(s, 'mda limit', MDA_LIMITS), loc: start.loc };
  return subcommand(s, 'mda', ['wrapper', 'limit']);
}

const SMTP_LIMITS = ['max-mails', 'max-rcpt'] as const;
const MDA_LIMITS = ['max-session', 'max-session-per-user'] as const;
const SCHEDULER_LIMITS = ['max-inflight', 'max-evp-batch-size', 'max-msg-batch-size', 'max-schedule'] as const;

/** The statements that start with a word and a setting: `queue ttl 4d`, `smtp ciphers ...`. */
export function parseGlobal(s: TokenStream, start: Token): GlobalOption {
  const option = parseGlobalBody(s, start);
  s.expectEnd(`the ${start.text} statement`);
  return option;
}

function parseGlobalBody(s: TokenStream, start: Token): GlobalOption {
  const loc = start.loc;
  switch (start.text) {
    case 'admd':
      return { kind: 'admd', authservId: s.expectValue('an authserv-id, usually a domain').text, loc };
    case 'bounce': {
      s.expect('warn-interval', '"bounce"');
      const delays: Duration[] = [expectDuration(s, 'bounce warn-interval')];
      while (s.acceptPunct(',')) delays.push(expectDuration(s, 'bounce warn-interval'));
      if (delays.length > 4) s.fail(loc, `bounce warn-interval takes at most four delays, not ${delays.length}`);
      return { kind: 'bounce warn-interval', delays, loc };
    }
    case 'mta':
      if (s.accept('max-deferred')) {
        return { kind: 'mta max-deferred', count: s.expectNumber('max-deferred', 0, 2 ** 31 - 1).value, loc };
      }
      return subcommand(s, 'mta', ['max-deferred']);
    case 'queue':
      if (s.accept('compression')) return { kind: 'queue compression', loc };
      if (s.accept('encryption')) {
        return s.atEnd() ? { kind: 'queue encryption', loc } : { kind: 'queue encryption', key: s.expectValue('a key').text, loc };
      }
      if (s.accept('ttl')) return { kind: 'queue ttl', ttl: expectDuration(s, 'queue ttl'), loc };
      return subcommand(s, 'queue', ['compression', 'encryption', 'ttl']);
    case 'scheduler':
      s.expect('limit', '"scheduler"');
      return { kind: 'scheduler limit', limits: parseLimits(s, 'scheduler limit', SCHEDULER_LIMITS), loc };
    case 'smtp':
      return parseSmtp(s, loc);
    case 'srs':
      if (s.accept('key')) {
        const backup = s.accept('backup') !== undefined;
        return { kind: 'srs key', backup, secret: s.expectValue('the SRS secret').text, loc };
      }
      if (s.accept('ttl')) {
        // A bounce to a rewritten address must still be recognised when it comes back: 6.8 wants a day at least.
        const at = s.peek().loc;
        const ttl = expectDuration(s, 'srs ttl');
        if (ttl.seconds < 86400) s.fail(at, `srs ttl ${ttl.text} is too short`, 'bounces can take days to come back; use 1d or more (the default is 4d)');
        return { kind: 'srs ttl', ttl, loc };
      }
      return subcommand(s, 'srs', ['key', 'ttl']);
  }
  throw new Error(`unreachable: ${start.text}`);
}

function parseSmtp(s: TokenStream, loc: Token['loc']): GlobalOption {
  if (s.accept('ciphers')) return { kind: 'smtp ciphers', ciphers: s.expectValue('an OpenSSL cipher list').text, loc };
  if (s.accept('limit')) return { kind: 'smtp limit', limits: parseLimits(s, 'smtp limit', SMTP_LIMITS), loc };
  if (s.accept('max-message-size')) {
    const t = s.expectValue('a size, such as 35M');
    const bytes = parseSize(t.text);
    if (bytes === undefined) s.fail(t.loc, `invalid size "${t.text}"`, 'write a number of bytes, or a number followed by K, M or G');
    return { kind: 'smtp max-message-size', text: t.text, bytes, loc };
  }
  if (s.accept('sub-addr-delim')) {
    const t = s.expectValue('one character, in double quotes');
    if ([...t.text].length !== 1) s.fail(t.loc, `the sub-address delimiter must be one character, not "${t.text}"`);
    return { kind: 'smtp sub-addr-delim', delimiter: t.text, loc };
  }
  return subcommand(s, 'smtp', ['ciphers', 'limit', 'max-message-size', 'sub-addr-delim']);
}

/** `name number` pairs, such as `max-mails 100 max-rcpt 1000`. */
function parseLimits(s: TokenStream, statement: string, known: readonly string[]): Limit[] {
  const limits: Limit[] = [];
  do {
    const t = s.expectValue(`a limit name (${known.join(', ')})`);
    if (!known.includes(t.text)) s.fail(t.loc, `unknown ${statement} "${t.text}"`, suggest(t.text, known, 'known limits'));
    limits.push({ name: t.text, value: s.expectNumber(t.text, 0, 2 ** 31 - 1).value });
  } while (!s.atEnd());
  return limits;
}

/** Fails on a word after `smtp`, `queue`... that is not one of its settings. */
function subcommand(s: TokenStream, statement: string, known: readonly string[]): never {
  const t = s.peek();
  return s.fail(t.loc, `expected ${known.join(', ')} after "${statement}", found ${describe(t)}`,
    t.kind === 'word' ? suggest(t.text, known, `"${statement}" takes`) : undefined);
}
