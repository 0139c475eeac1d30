/**
 * AUTH (RFC 4954) with the two mechanisms OpenSMTPD offers, PLAIN (RFC
 * 4616) and LOGIN. Both carry the password itself, base64-encoded, which
 * is why AUTH is offered only over TLS unless the listener says otherwise.
 * The engine does not know any passwords: it asks `authenticate`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { asciiUpper } from './input.ts';
import { R } from './replies.ts';
import type { Session } from './session.ts';

/** An AUTH exchange waiting for the client's next line. LOGIN asks for the user name, then the password. */
export type AuthExchange = { mechanism: 'PLAIN' } | { mechanism: 'LOGIN'; user?: string };

/** `334 VXNlcm5hbWU6` and `334 UGFzc3dvcmQ6`: "Username:" and "Password:" in base64, as LOGIN clients expect. */
const USERNAME = Buffer.from('Username:').toString('base64');
const PASSWORD = Buffer.from('Password:').toString('base64');
/** The longest user name taken, in octets: as long as an address may be. */
const MAX_USER = 255;

export async function startAuth(s: Session, args: string): Promise<void> {
  if (s.state.helo === undefined || s.tx) return s.reply(R.badSequence);
  if (s.state.authUser !== undefined) return s.reply(R.alreadyAuthenticated);
  if (s.listener.auth === undefined) return s.reply(R.notSupported);
  if (!s.state.tls && !s.listener.authPlaintext) return s.reply(R.authNeedsTls);
  if (args === '') return s.reply(R.authNoParams);
  // The mechanism ends at a space or, as OpenSMTPD also takes it, a tab.
  const [name = '', initial, ...extra] = args.split(/[ \t]/);
  const mechanism = asciiUpper(name);
  if (mechanism !== 'PLAIN' && mechanism !== 'LOGIN') return s.reply(R.authMechanism(name));
  // RFC 4954 4: the mechanism, then at most one initial response. A word after it is a
  // syntax error; taking the first word alone would log in a client whose line was not
  // read as written. (6.8 decodes the rest as more base64, which fails for most such lines.)
  if (extra.length > 0) return s.reply(R.authSyntax);
  s.auth = { mechanism };
  if (initial !== undefined) return respond(s, initial);
  challenge(s, mechanism === 'PLAIN' ? '' : USERNAME);
}

/** The client's line after a 334: the next response, or `*` to give up (RFC 4954 4). */
export async function continueAuth(s: Session, line: Buffer): Promise<void> {
  const text = line.toString('latin1');
  s.command = `AUTH ${s.auth?.mechanism ?? ''} (...)`;
  s.stage = 'command';
  if (text === '*') {
    s.auth = undefined;
    return s.reply(R.authCancelled);
  }
  await respond(s, text);
}

function challenge(s: Session, text: string): void {
  s.stage = 'auth';
  s.reply(R.authChallenge(text));
}

// #region auth-exchange
/**
 * One response of the exchange. PLAIN sends `authzid NUL user NUL
 * password` at once; LOGIN sends the user name, then the password, each
 * on its own line. Anything that is not strict base64 ends the exchange
 * with 501.
 */
async function respond(s: Session, response: string): Promise<void> {
  const exchange = s.auth!;
  const decoded = decodeBase64(response);
  if (decoded === undefined) {
    s.auth = undefined;
    return s.reply(R.authSyntax);
  }
  if (exchange.mechanism === 'LOGIN' && exchange.user === undefined) {
    exchange.user = decoded.toString('utf8');
    // Refused now, as 6.8 refuses it, rather than after the client has sent its password for nothing.
    if (Buffer.byteLength(exchange.user) > MAX_USER) {
      s.auth = undefined;
      return s.reply(R.authSyntax);
    }
    return challenge(s, PASSWORD);
  }
  s.auth = undefined;
  if (exchange.mechanism === 'LOGIN') return verify(s, exchange.user!, decoded.toString('utf8'));
  const parts = decoded.toString('utf8').split('\0');
  if (parts.length !== 3 || parts[1] === '' || parts[2] === '') return s.reply(R.authSyntax);
  // RFC 4616 2: an authzid asks to act as someone else, and the login must fail unless the
  // user may. No one here may act for another, so only an empty authzid or the user's own
  // name is taken. (6.8 ignores the field: it would log `joe` in when asked for `admin`.)
  const [authzid, user, password] = parts as [string, string, string];
  await verify(s, user, password, authzid === '' || authzid === user);
}

async function verify(s: Session, user: string, password: string, authorized = true): Promise<void> {
  // Longer than any address: OpenSMTPD refuses what does not fit its buffer as a syntax error, and so do we.
  if (Buffer.byteLength(user) > MAX_USER) return s.reply(R.authSyntax);
  let ok: boolean;
  try {
    ok = authorized && ((await s.ctx.authenticate?.(user, password)) ?? false);
  } catch (err) {
    s.ctx.logger.warn(`warn: ${s.id} smtp authentication error: ${String(err)}`);
    s.log(`authentication user=${visibleUser(user)} result=tempfail`);
    return s.reply(R.authTempFail);
  }
  if (!ok) {
    s.log(`authentication user=${visibleUser(user)} result=permfail`);
    await sleep(Math.random() * s.ctx.limits.authFailureDelayMs);
    return s.reply(R.authFailed);
  }
  if (!(await s.gate('auth', user))) return;
  s.state.authUser = user;
  s.log(`authentication user=${visibleUser(user)} result=ok`);
  s.reply(R.authOk);
}
// #endregion auth-exchange

function visibleUser(user: string): string {
  return user.replace(/[^\x21-\x7e]/g, '?');
}

/** Strict base64 (RFC 4648 4); `=` alone is the empty response (RFC 4954 4). */
function decodeBase64(text: string): Buffer | undefined {
  if (text === '=') return Buffer.alloc(0);
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}
