/**
 * `match [criteria] action "name"` and `match [criteria] reject`.
 */
import type { CriterionKind, MatchCriterion, MatchRule } from './ast.ts';
import { ConfigError, suggest } from './errors.ts';
import type { Token } from './lexer.ts';
import { describe, type TokenStream } from './token-stream.ts';

/** What may follow `match`, `from` and `for`, for hints. */
const CRITERIA = ['from', 'for', 'tag', 'helo', 'tls', 'auth', 'mail-from', 'rcpt-to'] as const;
const FROM_SOURCES = ['any', 'local', 'socket', 'src', 'rdns', 'auth', 'mail-from'] as const;
const FOR_DESTINATIONS = ['any', 'local', 'domain', 'rcpt-to'] as const;

/**
 * How each criterion takes its argument: `none` (`from any`, `tls`),
 * `optional` (`from rdns`, `auth`: alone, or with a value or table), or
 * `required`. Every criterion with an argument also accepts `regex`.
 */
const ARGUMENT: Record<CriterionKind, 'none' | 'optional' | 'required'> = {
  'from any': 'none', 'from local': 'none', 'from socket': 'none', 'from src': 'required',
  'from rdns': 'optional', 'from auth': 'optional', 'from mail-from': 'required',
  'for any': 'none', 'for local': 'none', 'for domain': 'required', 'for rcpt-to': 'required',
  tag: 'required', helo: 'required', tls: 'none', auth: 'optional', 'mail-from': 'required', 'rcpt-to': 'required',
};

export function parseMatch(s: TokenStream, start: Token): MatchRule {
  const criteria: MatchCriterion[] = [];
  const seen = new Map<string, MatchCriterion>();
  for (;;) {
    const t = s.peek();
    if (s.accept('reject')) {
      s.expectEnd('the match rule, after "reject"');
      return { kind: 'match', criteria, decision: { kind: 'reject' }, loc: start.loc };
    }
    if (s.accept('action')) {
      const name = s.expectValue('the name of an action');
      s.expectEnd(`the match rule, after action ${name.text}`);
      return { kind: 'match', criteria, decision: { kind: 'action', name: name.text, loc: name.loc }, loc: start.loc };
    }
    if (s.atEnd()) {
      s.fail(t.loc, `the match rule ends without a decision`, 'end it with action "name" or with reject');
    }
    const criterion = parseCriterion(s);
    // At most one criterion of each kind: one `from`, one `for`, one `tag`...
    // `from auth`, `from mail-from` and `for rcpt-to` also count as the
    // transaction criterion they imply (a rule cannot ask `auth` twice).
    for (const group of criterionGroups(criterion.kind)) {
      const earlier = seen.get(group);
      if (earlier) {
        s.report(new ConfigError(criterion.loc, `a match rule takes one "${group}" criterion, and this rule already has "${earlier.kind}"`,
          'to accept either, write two match rules with the same decision'));
      }
      seen.set(group, criterion);
    }
    criteria.push(criterion);
  }
}

/** The groups a criterion belongs to; OpenSMTPD 6.8 refuses `from auth ... auth` as "auth already specified". */
function criterionGroups(kind: CriterionKind): string[] {
  const implied: Partial<Record<CriterionKind, string>> = { 'from auth': 'auth', 'from mail-from': 'mail-from', 'for rcpt-to': 'rcpt-to' };
  const extra = implied[kind];
  return extra ? [kind.split(' ')[0]!, extra] : [kind.split(' ')[0]!];
}

// #region parse-criterion
/**
 * One criterion: `[!] kind [regex] [value | <table>]`, where kind is one or
 * two words (`tls`, `from src`). A `!` in front negates it: `!from src
 * <relays>` holds for sessions that do NOT come from a listed relay.
 */
function parseCriterion(s: TokenStream): MatchCriterion {
  const loc = s.peek().loc;
  const negated = s.acceptPunct('!') !== undefined;
  const kind = parseCriterionKind(s, negated);
  const argument = ARGUMENT[kind];

  const regex = argument !== 'none' && s.accept('regex') !== undefined;
  // An optional argument is present when a value or a table comes next;
  // `from auth for any` is "from auth" followed by the next criterion.
  const present = argument === 'required' || regex || (argument === 'optional' && (s.atValue() || s.atPunct('<')));
  const target = present ? s.expectValueOrTable(`"${kind}"`) : undefined;
  return { kind, negated, regex, ...(target && { target }), loc };
}
// #endregion parse-criterion

/** `from src`, `for domain`, `tag`...: the words that name a criterion. */
function parseCriterionKind(s: TokenStream, negated: boolean): CriterionKind {
  const t = s.next();
  if (t.kind === 'word' && (t.text === 'from' || t.text === 'for')) {
    const known = t.text === 'from' ? FROM_SOURCES : FOR_DESTINATIONS;
    const what = s.peek();
    if (what.kind === 'word' && (known as readonly string[]).includes(what.text)) {
      s.next();
      return `${t.text} ${what.text}` as CriterionKind;
    }
    s.fail(what.loc, `expected what follows "${t.text}", found ${describe(what)}`,
      what.kind === 'word' ? suggest(what.text, known, `"${t.text}" takes`) : `"${t.text}" takes: ${known.join(', ')}`);
  }
  if (t.kind === 'word' && (CRITERIA as readonly string[]).includes(t.text)) return t.text as CriterionKind;
  if (negated) {
    return s.fail(t.loc, `expected a criterion after "!", found ${describe(t)}`,
      `"!" negates the criterion that follows it, as in !from src <relays>; it cannot end a word`);
  }
  return s.fail(t.loc, `expected a match criterion, action or reject, found ${describe(t)}`,
    t.kind === 'word' ? suggest(t.text, [...CRITERIA, 'action', 'reject'], 'a match rule takes') : undefined);
}
