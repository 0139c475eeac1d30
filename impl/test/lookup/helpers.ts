import { expect } from 'vitest';
import { parseConfig } from '../../src/config/index.ts';
import { Ruleset, type Decision, type EnvelopeInfo, type LocalNames, type RulesetOptions, type SessionInfo } from '../../src/lookup/index.ts';

/** The machine the tests pretend to run on. */
export const HOST: LocalNames = { hostname: 'mx.example.org', addresses: ['127.0.0.1', '::1', '192.0.2.25'] };

/** A client on the Internet, not authenticated, in clear text. */
export const REMOTE: SessionInfo = {
  local: false, address: '203.0.113.9', rdns: 'client.example.net', helo: 'client.example.net', tls: false,
};

/** The local enqueuer: sendmail on this host, over the Unix socket. */
export const SOCKET: SessionInfo = { local: true, rdns: 'mx.example.org', helo: 'mx.example.org', tls: false };

/** Mail from a stranger to a user of this host. */
export const TO_US: EnvelopeInfo = { mailFrom: 'alice@example.net', rcptTo: 'bob@mx.example.org' };

/** Mail from anyone to somewhere else: what a relay would pass on. */
export const ELSEWHERE: EnvelopeInfo = { mailFrom: 'alice@example.net', rcptTo: 'carol@gmail.com' };

/** Parses smtpd.conf text (which must be valid) and builds its ruleset for HOST. */
export function rulesetOf(text: string, options: RulesetOptions = {}): Ruleset {
  const { config, errors } = parseConfig(text, { file: 'smtpd.conf' });
  expect(errors.map(String)).toEqual([]);
  return Ruleset.fromConfig(config, { localNames: HOST, ...options });
}

/** A decision in one line: `rule 2: action "local"`, or the reply and why. */
export function summary(decision: Decision): string {
  if ('reject' in decision) {
    const { reply, reason, number } = decision.reject;
    return `${reply} (${reason}${number === undefined ? '' : ` at rule ${number}`})`;
  }
  return `rule ${decision.number}: action "${decision.action.name}"`;
}

/** Decides one recipient with the rules of `text`. */
export function decide(text: string, session: SessionInfo, envelope: EnvelopeInfo, options: RulesetOptions = {}): string {
  return summary(rulesetOf(text, options).match(session, envelope));
}
