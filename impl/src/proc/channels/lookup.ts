/**
 * smtp → lookup: for each RCPT TO, which action takes the recipient, or
 * the reply that refuses it. The session and envelope are the facts the
 * rules test (lookup/session.ts), copied by smtp from its session as
 * OpenSMTPD's smtp_tx() fills `struct envelope`. And for each AUTH,
 * whether the user and password are in the listener's credentials table:
 * the tables live in lookup, so smtp never holds a password hash.
 */
import { channel, type RequestOf } from '../protocol.ts';
import { array, boolean, object, oneOf, optional, string, uint32, type Infer } from '../schema.ts';
import { localDelivery, mailAddress } from './queue.ts';

const sessionInfo = object({
  local: boolean,
  address: optional(string),
  rdns: optional(string),
  tag: optional(string),
  authUser: optional(string),
  helo: string,
  tls: boolean,
});

const envelopeInfo = object({ mailFrom: string, rcptTo: string, internal: optional(boolean) });

/** One envelope the recipient expanded to: an alias member, a virtual target, a line of ~/.forward. */
const expandedTarget = object({ recipient: mailAddress, dispatcher: string, delivery: optional(localDelivery) });

/**
 * `accept` names the action and the rule of the address the client sent,
 * and `expanded` lists the envelopes it became (at least one); `reject`
 * and `tempfail` carry the whole reply line (`550 Invalid recipient:
 * <x@y>`, `451 4.7.1 ...`), a 5xx or a 4xx, and the reply's enhanced code.
 */
const verdict = object({
  verdict: oneOf(['accept', 'reject', 'tempfail']),
  action: optional(string),
  rule: optional(uint32),
  expanded: optional(array(expandedTarget, 1000)),
  code: optional(uint32),
  enhanced: optional(string),
  reply: optional(string),
});
export type RcptVerdict = Infer<typeof verdict>;

/**
 * One AUTH: the credentials table the listener names (`auth <table>`), and
 * what the client sent. The password crosses the socket between smtp and
 * lookup in clear, as it does in OpenSMTPD's imsg; it is never logged.
 */
const authRequest = object({ table: string, user: string, password: string });

/**
 * OpenSMTPD's three answers (LKA_OK, LKA_PERMFAIL, LKA_TEMPFAIL): right,
 * wrong, or the table could not say. The engine answers 235, 535 and 454.
 */
const authAnswer = object({ result: oneOf(['ok', 'permfail', 'tempfail']) });
export type AuthAnswer = Infer<typeof authAnswer>;

export const lookupChannel = channel('lookup', {
  'lookup.rcpt': { request: object({ session: sessionInfo, envelope: envelopeInfo }), response: verdict },
  'lookup.auth': { request: authRequest, response: authAnswer },
});
export type LookupRequest = RequestOf<typeof lookupChannel['calls']>;
