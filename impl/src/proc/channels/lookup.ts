/**
 * smtp → lookup: for each RCPT TO, which action takes the recipient, or
 * the reply that refuses it. The session and envelope are the facts the
 * rules test (lookup/session.ts), copied by smtp from its session as
 * OpenSMTPD's smtp_tx() fills `struct envelope`.
 */
import { channel, type RequestOf } from '../protocol.ts';
import { boolean, object, oneOf, optional, string, uint32, type Infer } from '../schema.ts';

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

/** `accept` names the action and the rule; `reject` carries the whole reply line (`550 Invalid recipient: <x@y>`). */
const verdict = object({
  verdict: oneOf(['accept', 'reject']),
  action: optional(string),
  rule: optional(uint32),
  code: optional(uint32),
  reply: optional(string),
});
export type RcptVerdict = Infer<typeof verdict>;

export const lookupChannel = channel('lookup', {
  'lookup.rcpt': { request: object({ session: sessionInfo, envelope: envelopeInfo }), response: verdict },
});
export type LookupRequest = RequestOf<typeof lookupChannel['calls']>;
