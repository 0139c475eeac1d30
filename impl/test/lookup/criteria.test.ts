/**
 * Every criterion, its negation and its regex form, one row each: the
 * rule's criteria, the session and envelope, and whether the rule matches.
 * Each configuration is real smtpd.conf text, parsed by parseConfig.
 */
import { describe, expect, it } from 'vitest';
import type { EnvelopeInfo, SessionInfo } from '../../src/lookup/index.ts';
import { decide, ELSEWHERE, REMOTE, SOCKET, TO_US } from './helpers.ts';

const TABLES = `
table nets { 203.0.113.0/24, "2001:db8::/32" }
table names { "*.example.net", mail.example.com }
table domains { example.org, "*.example.com" }
table users { alice, "dave@example.org" }
table known { "@example.net", "postmaster@example.com" }
table tags { MSA, submission }
action "ok" maildir
`;

interface Row {
  criteria: string;
  session?: Partial<SessionInfo>;
  envelope?: Partial<EnvelopeInfo>;
  /** Starts from SOCKET instead of REMOTE. */
  local?: boolean;
  holds: boolean;
}

function check(rows: Row[]): void {
  it.each(rows)('match $criteria with %j', (row) => {
    const session = { ...(row.local ? SOCKET : REMOTE), ...row.session };
    const envelope = { ...TO_US, ...row.envelope };
    const result = decide(`${TABLES}match ${row.criteria} action "ok"\n`, session, envelope);
    expect(result.startsWith('rule 1: action "ok"')).toBe(row.holds);
  });
}

const v6 = { address: '2001:db8::25' };
const noRdns = { rdns: undefined };

describe('from any, from local, from socket', () => {
  check([
    { criteria: 'from any for any', holds: true },
    { criteria: 'from any for any', local: true, holds: true },
    { criteria: 'from any for any', envelope: { internal: true }, holds: true },
    { criteria: '!from any for any', holds: false },
    { criteria: '!from any for any', local: true, holds: false },
    // from local: the Unix socket and this machine's own addresses, nothing else.
    { criteria: 'from local for any', local: true, holds: true },
    { criteria: 'from local for any', session: { address: '127.0.0.1' }, holds: true },
    { criteria: 'from local for any', session: { address: '::1' }, holds: true },
    { criteria: 'from local for any', session: { address: '192.0.2.25' }, holds: true },
    { criteria: 'from local for any', session: { address: '127.0.0.2' }, holds: false },
    { criteria: 'from local for any', session: { address: '192.0.2.26' }, holds: false },
    { criteria: 'from local for any', holds: false },
    { criteria: 'from local for any', envelope: { internal: true }, holds: true },
    { criteria: '!from local for any', holds: true },
    { criteria: '!from local for any', local: true, holds: false },
    // from socket: only the local enqueuer.
    { criteria: 'from socket for any', local: true, holds: true },
    { criteria: 'from socket for any', session: { address: '127.0.0.1' }, holds: false },
    { criteria: '!from socket for any', holds: true },
    { criteria: '!from socket for any', local: true, holds: false },
    // An address made here by an alias is neither from the socket nor not from it.
    { criteria: 'from socket for any', local: true, envelope: { internal: true }, holds: false },
    { criteria: '!from socket for any', envelope: { internal: true }, holds: false },
  ]);
});

describe('from src', () => {
  check([
    { criteria: 'from src 203.0.113.0/24 for any', holds: true },
    { criteria: 'from src 203.0.113.0/24 for any', session: { address: '203.0.114.9' }, holds: false },
    { criteria: 'from src 203.0.113.9 for any', holds: true },
    { criteria: 'from src <nets> for any', holds: true },
    { criteria: 'from src <nets> for any', session: v6, holds: true },
    { criteria: 'from src <nets> for any', session: { address: '2001:db9::1' }, holds: false },
    { criteria: 'from src <nets> for any', local: true, holds: false },
    { criteria: 'from src <nets> for any', envelope: { internal: true }, holds: false },
    { criteria: '!from src <nets> for any', holds: false },
    { criteria: '!from src <nets> for any', session: { address: '198.51.100.1' }, holds: true },
    { criteria: '!from src <nets> for any', local: true, holds: true },
    // regex compares the address as text; IPv6 addresses are in brackets.
    { criteria: 'from src regex "^203\\.0\\.113\\." for any', holds: true },
    { criteria: 'from src regex "^203\\.0\\.113\\." for any', session: { address: '198.51.100.1' }, holds: false },
    { criteria: 'from src regex "^\\[2001:db8:" for any', session: v6, holds: true },
    { criteria: 'from src regex "^local$" for any', local: true, holds: true },
    { criteria: '!from src regex "^203\\." for any', holds: false },
  ]);
});

describe('from rdns', () => {
  check([
    { criteria: 'from rdns for any', holds: true },
    { criteria: 'from rdns for any', session: noRdns, holds: false },
    { criteria: '!from rdns for any', session: noRdns, holds: true },
    { criteria: '!from rdns for any', holds: false },
    { criteria: 'from rdns <names> for any', holds: true },
    { criteria: 'from rdns <names> for any', session: { rdns: 'a.b.example.net' }, holds: false },
    { criteria: 'from rdns mail.example.com for any', session: { rdns: 'MAIL.Example.COM' }, holds: true },
    { criteria: 'from rdns <names> for any', session: noRdns, holds: false },
    { criteria: '!from rdns <names> for any', session: { rdns: 'dsl-1.isp.example' }, holds: true },
    { criteria: '!from rdns <names> for any', holds: false },
    // No reverse name: the question does not apply, so the negation fails too.
    { criteria: '!from rdns <names> for any', session: noRdns, holds: false },
    { criteria: 'from rdns regex "^dsl-[0-9]+\\." for any', session: { rdns: 'dsl-1.isp.example' }, holds: true },
    { criteria: 'from rdns regex "^dsl-[0-9]+\\." for any', holds: false },
    { criteria: '!from rdns regex "^dsl-" for any', holds: true },
    { criteria: 'from rdns for any', envelope: { internal: true }, holds: false },
    { criteria: '!from rdns for any', envelope: { internal: true }, holds: false },
  ]);
});

describe('from auth and auth', () => {
  const alice = { authUser: 'alice' };
  check([
    // from auth replaces the implied from local: any source address.
    { criteria: 'from auth for any', session: alice, holds: true },
    { criteria: 'from auth for any', holds: false },
    { criteria: '!from auth for any', holds: true },
    { criteria: '!from auth for any', session: alice, holds: false },
    { criteria: 'from auth <users> for any', session: alice, holds: true },
    { criteria: 'from auth <users> for any', session: { authUser: 'ALICE' }, holds: true },
    { criteria: 'from auth <users> for any', session: { authUser: 'mallory' }, holds: false },
    { criteria: '!from auth <users> for any', session: { authUser: 'mallory' }, holds: true },
    { criteria: '!from auth <users> for any', holds: true },
    // A user name with an @ is compared as an address.
    { criteria: 'from auth <users> for any', session: { authUser: 'dave@example.org' }, holds: true },
    { criteria: 'from auth <users> for any', session: { authUser: 'alice@example.net' }, holds: true },
    { criteria: 'from auth regex "^a" for any', session: alice, holds: true },
    { criteria: 'from auth regex "^a" for any', session: { authUser: 'bob' }, holds: false },
    // auth alone keeps the implied from local: remote users do not match.
    { criteria: 'auth for any', session: alice, holds: false },
    { criteria: 'auth for any', local: true, session: alice, holds: true },
    { criteria: 'from any auth for any', session: alice, holds: true },
    { criteria: 'from any !auth for any', holds: true },
    { criteria: 'from any auth <users> for any', session: { authUser: 'bob' }, holds: false },
    { criteria: 'from any auth regex "^b" for any', session: { authUser: 'bob' }, holds: true },
    { criteria: 'from any !auth regex "^b" for any', session: { authUser: 'bob' }, holds: false },
  ]);
});

describe('from mail-from and mail-from', () => {
  check([
    { criteria: 'from mail-from <known> for any', holds: true },
    { criteria: 'from mail-from <known> for any', envelope: { mailFrom: 'eve@example.com' }, holds: false },
    { criteria: 'from mail-from <known> for any', envelope: { mailFrom: 'postmaster@example.com' }, holds: true },
    { criteria: '!from mail-from <known> for any', envelope: { mailFrom: 'eve@example.com' }, holds: true },
    // The null sender of a bounce is "@", which only the entry "@" matches.
    { criteria: 'from mail-from <known> for any', envelope: { mailFrom: '' }, holds: false },
    { criteria: 'from mail-from "@" for any', envelope: { mailFrom: '' }, holds: true },
    { criteria: 'from mail-from regex "^alice@" for any', holds: true },
    { criteria: 'mail-from "@example.net" for any', holds: false }, // implied from local
    { criteria: 'from any mail-from "@example.net" for any', holds: true },
    { criteria: 'from any !mail-from "@example.net" for any', holds: false },
    { criteria: 'from any mail-from regex "example\\.net$" for any', holds: true },
  ]);
});

describe('for any, for local, for domain', () => {
  check([
    { criteria: 'from any for any', envelope: ELSEWHERE, holds: true },
    { criteria: 'from any !for any', envelope: ELSEWHERE, holds: false },
    { criteria: 'from any for local', holds: true },
    { criteria: 'from any for local', envelope: { rcptTo: 'bob@MX.Example.ORG' }, holds: true },
    { criteria: 'from any for local', envelope: { rcptTo: 'bob@localhost' }, holds: true },
    { criteria: 'from any for local', envelope: { rcptTo: 'bob@[192.0.2.25]' }, holds: true },
    { criteria: 'from any for local', envelope: { rcptTo: 'bob@[IPv6:::1]' }, holds: true },
    { criteria: 'from any for local', envelope: { rcptTo: 'bob@example.org' }, holds: false },
    { criteria: 'from any for local', envelope: ELSEWHERE, holds: false },
    { criteria: 'from any !for local', envelope: ELSEWHERE, holds: true },
    { criteria: 'from any for domain example.org', envelope: { rcptTo: 'bob@example.org' }, holds: true },
    { criteria: 'from any for domain example.org', envelope: { rcptTo: 'bob@lists.example.org' }, holds: false },
    { criteria: 'from any for domain <domains>', envelope: { rcptTo: 'bob@shop.example.com' }, holds: true },
    { criteria: 'from any for domain <domains>', envelope: { rcptTo: 'bob@example.com' }, holds: false },
    { criteria: 'from any !for domain <domains>', envelope: ELSEWHERE, holds: true },
    // Without angle brackets a table's name is a domain name, and nothing is looked up.
    { criteria: 'from any for domain domains', envelope: { rcptTo: 'bob@example.org' }, holds: false },
    { criteria: 'from any for domain regex "^example\\.(org|net)$"', envelope: { rcptTo: 'bob@example.net' }, holds: true },
    { criteria: 'from any for domain regex "^example\\.(org|net)$"', envelope: ELSEWHERE, holds: false },
    { criteria: 'from any !for domain regex "gmail"', envelope: ELSEWHERE, holds: false },
  ]);
});

describe('for rcpt-to and rcpt-to', () => {
  check([
    { criteria: 'from any for rcpt-to "carol@gmail.com"', envelope: ELSEWHERE, holds: true },
    { criteria: 'from any for rcpt-to "carol@gmail.com"', envelope: { rcptTo: 'carol+news@gmail.com' }, holds: true },
    { criteria: 'from any for rcpt-to "carol@gmail.com"', holds: false },
    { criteria: 'from any !for rcpt-to "carol@gmail.com"', holds: true },
    { criteria: 'from any for rcpt-to regex "^bob@"', holds: true },
    { criteria: 'from any rcpt-to "bob@mx.example.org"', holds: true }, // implied for local holds too
    { criteria: 'from any rcpt-to "carol@gmail.com"', envelope: ELSEWHERE, holds: false }, // implied for local
    { criteria: 'from any for any rcpt-to "carol@gmail.com"', envelope: ELSEWHERE, holds: true },
    { criteria: 'from any for any !rcpt-to regex "^carol@"', envelope: ELSEWHERE, holds: false },
  ]);
});

describe('tag, helo, tls', () => {
  check([
    { criteria: 'from any for any tag MSA', session: { tag: 'MSA' }, holds: true },
    { criteria: 'from any for any tag MSA', session: { tag: 'msa' }, holds: true },
    { criteria: 'from any for any tag MSA', holds: false },
    { criteria: 'from any for any !tag MSA', holds: true },
    { criteria: 'from any for any tag <tags>', session: { tag: 'submission' }, holds: true },
    { criteria: 'from any for any tag regex "^sub"', session: { tag: 'submission' }, holds: true },
    { criteria: 'from any for any !tag regex "^sub"', session: { tag: 'MSA' }, holds: true },
    { criteria: 'from any for any helo <names>', holds: true },
    { criteria: 'from any for any helo <names>', session: { helo: 'localhost' }, holds: false },
    { criteria: 'from any for any !helo <names>', session: { helo: 'localhost' }, holds: true },
    { criteria: 'from any for any helo regex "^[0-9.]+$"', session: { helo: '203.0.113.9' }, holds: true },
    { criteria: 'from any for any !helo regex "^[0-9.]+$"', holds: true },
    { criteria: 'from any for any tls', session: { tls: true }, holds: true },
    { criteria: 'from any for any tls', holds: false },
    { criteria: 'from any for any !tls', holds: true },
    { criteria: 'from any for any !tls', session: { tls: true }, holds: false },
  ]);
});
