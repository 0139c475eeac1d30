/**
 * The criteria of a match rule as the matcher evaluates them. A rule is
 * turned once, when the ruleset is built, into a list of checks: each
 * criterion with its table already opened, the criteria the grammar
 * implies added, and everything sorted into the order OpenSMTPD asks its
 * questions in. Matching a recipient then only runs the checks.
 */
import type { CriterionKind, MatchCriterion, MatchRule, ValueOrTable } from '../config/ast.ts';
import { formatCriterion } from '../config/format.ts';
import type { SetService, Table } from '../table/index.ts';
import { mailKey, recipientDomain, sourceKey, type EnvelopeInfo, type SessionInfo } from './session.ts';

/** What a check is: a criterion kind, once `from auth`, `from mail-from` and `for rcpt-to` are split. */
export type CheckKind = Exclude<CriterionKind, 'from auth' | 'from mail-from' | 'for rcpt-to'>;

/** One question a rule asks. */
export interface Check {
  kind: CheckKind;
  negated: boolean;
  /** Compare with the `regex` service instead of the criterion's own. */
  regex: boolean;
  /** The table asked; absent for `tls`, `from socket`, and `from rdns` and `auth` without a table. */
  table?: Table;
  /** As written, or as implied: `from src <relays>`, `for local (the default)`. */
  text: string;
  /** The criterion it comes from; absent when the grammar implied it. */
  criterion?: MatchCriterion;
}

/** How a rule gets the tables its criteria name. */
export interface TableResolver {
  /** One of the reserved tables: `<anyhost>`, `<localhost>`, `<anydestination>`, `<localnames>`. */
  reserved(name: string): Table;
  /** A declared table (`<name>`), or a one-entry table holding a value written in the rule. */
  target(target: ValueOrTable): Table;
}

// #region check-order
/**
 * The questions ruleset_match() (ruleset.c) asks of each rule, in the
 * order it asks them, whatever order the criteria were written in. The
 * order matters twice: a rule stops at its first false answer, so a table
 * further down is not consulted; and a table that fails makes the whole
 * RCPT fail temporarily, unless an earlier question has already ruled
 * the rule out.
 */
export const QUESTION_ORDER = ['tag', 'from', 'for', 'helo', 'auth', 'tls', 'mail-from', 'rcpt-to'] as const;

function question(kind: CheckKind): (typeof QUESTION_ORDER)[number] {
  return kind.startsWith('from ') ? 'from' : kind.startsWith('for ') ? 'for' : (kind as (typeof QUESTION_ORDER)[number]);
}
// #endregion check-order

/** The reserved table behind each `any` and `local`. */
const RESERVED: Partial<Record<CheckKind, string>> = {
  'from any': '<anyhost>', 'from local': '<localhost>', 'for any': '<anydestination>', 'for local': '<localnames>',
};

// #region implied-criteria
/** The criteria that stand for two checks: the `from` or `for` part, and the transaction part. */
const TWO_CHECKS: Partial<Record<CriterionKind, readonly [CheckKind, CheckKind]>> = {
  'from auth': ['from any', 'auth'],
  'from mail-from': ['from any', 'mail-from'],
  'for rcpt-to': ['for any', 'rcpt-to'],
};

/**
 * The checks of one rule. Two kinds are added that the rule does not
 * write (parse.y's `match:` rule adds them after reading the criteria):
 *
 *   no `from` at all        from local    mail must come from this machine
 *   no `for` at all         for local     mail must be for this machine
 *
 * so `match action "local"` delivers local mail only, and a rule has to
 * say `from any` or `for any` to reach further. Three criteria are two
 * checks each: `from auth`, `from mail-from` and `for rcpt-to` are `from
 * any` (or `for any`) plus the transaction criterion `auth`, `mail-from`
 * or `rcpt-to` — "no matter the source IP address", as smtpd.conf(5) puts
 * it. Their `!` belongs to the second check: `!from auth` is any source
 * that did not authenticate.
 */
export function planRule(rule: MatchRule, tables: TableResolver): Check[] {
  const checks: Check[] = [];
  const implied = (kind: CheckKind, why: string): Check =>
    withTable({ kind, negated: false, regex: false, text: `${kind} (${why})` }, tables);

  for (const c of rule.criteria) {
    const written = { negated: c.negated, regex: c.regex, text: formatCriterion(c), criterion: c };
    const pair = TWO_CHECKS[c.kind];
    if (pair) checks.push(implied(pair[0], `implied by ${c.kind}`), withTable({ kind: pair[1], ...written }, tables));
    else checks.push(withTable({ kind: c.kind as CheckKind, ...written }, tables));
  }
  if (!rule.criteria.some((c) => c.kind.startsWith('from '))) checks.push(implied('from local', 'the default'));
  if (!rule.criteria.some((c) => c.kind.startsWith('for '))) checks.push(implied('for local', 'the default'));

  const rank = (c: Check) => QUESTION_ORDER.indexOf(question(c.kind));
  return checks.sort((a, b) => rank(a) - rank(b));
}
// #endregion implied-criteria

/** Attaches the table a check asks: reserved for any/local, the criterion's target otherwise. */
function withTable(check: Check, tables: TableResolver): Check {
  const reserved = RESERVED[check.kind];
  if (reserved) return { ...check, table: tables.reserved(reserved) };
  const target = check.criterion?.target;
  return target ? { ...check, table: tables.target(target) } : check;
}

// #region services
/**
 * The service each check asks its table with, which decides how a key
 * compares with an entry (see the Tables chapter): an address inside a
 * network, a host name against a wildcard, an address against `user`,
 * `@domain` or `user@domain`. A criterion written with `regex` asks the
 * `regex` service instead, with the same key. `auth` has no entry: it
 * asks `mailaddr` when the user name contains an `@` and `string`
 * otherwise, as ruleset_match_smtp_auth() does.
 */
export const SERVICE: Partial<Record<CheckKind, SetService>> = {
  tag: 'string',
  'from any': 'netaddr', 'from local': 'netaddr', 'from src': 'netaddr', 'from rdns': 'domain',
  'for any': 'domain', 'for local': 'domain', 'for domain': 'domain',
  helo: 'domain', 'mail-from': 'mailaddr', 'rcpt-to': 'mailaddr',
};
// #endregion services

// #region ask
/**
 * A check's answer before `!` is applied: true, false, or undefined when
 * the question does not apply to this recipient. Each case reads one
 * fact of the session or the envelope, as the functions of ruleset.c do:
 *
 *   from ...      the client's address (`local` for the Unix socket and
 *                 for addresses made here by an alias), or for `from
 *                 rdns` its reverse DNS name, which it may not have
 *   for ...       the recipient's domain
 *   rcpt-to,      the whole address, `user@domain`; the null sender `<>`
 *   mail-from     is `@`
 *
 * Throws TableError when a table cannot answer.
 */
export function ask(check: Check, session: SessionInfo, envelope: EnvelopeInfo): boolean | undefined {
  const lookup = (service: SetService, key: string): boolean => {
    if (!check.table) throw new Error(`${check.text}: no table to ask`);
    return check.table.match(check.regex ? 'regex' : service, key);
  };
  switch (check.kind) {
    case 'tag':
      return lookup('string', session.tag ?? '');
    case 'from any': case 'from local': case 'from src':
      return lookup('netaddr', sourceKey(session, envelope));
    case 'from socket':
      return envelope.internal ? undefined : session.local;
    case 'from rdns':
      if (envelope.internal) return check.table ? lookup('netaddr', 'local') : undefined;
      if (!check.table) return session.rdns !== undefined;
      return session.rdns === undefined ? undefined : lookup('domain', session.rdns);
    case 'for any': case 'for local': case 'for domain':
      return lookup('domain', recipientDomain(envelope));
    case 'helo':
      return lookup('domain', session.helo);
    case 'auth':
      if (session.authUser === undefined) return false;
      if (!check.table) return true;
      return lookup(session.authUser.includes('@') ? 'mailaddr' : 'string', session.authUser);
    case 'tls':
      return session.tls;
    case 'mail-from':
      return lookup('mailaddr', mailKey(envelope.mailFrom));
    case 'rcpt-to':
      return lookup('mailaddr', mailKey(envelope.rcptTo));
  }
}
// #endregion ask

// #region negation
/**
 * Does the check hold? `!` turns the answer round, as MATCH_RESULT does in
 * ruleset.c, with one exception: a question that does not apply is false
 * with or without `!`. `!from rdns <names>` therefore means "has a reverse
 * name, and it is not listed", never "has no reverse name"; for that,
 * write `!from rdns` with no table.
 */
export function holds(check: Check, session: SessionInfo, envelope: EnvelopeInfo): boolean {
  const answer = ask(check, session, envelope);
  return answer === undefined ? false : answer !== check.negated;
}
// #endregion negation
