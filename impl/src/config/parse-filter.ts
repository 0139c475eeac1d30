/**
 * `filter NAME ...` in its four forms, and `proc NAME "command"`.
 */
import type { FilterCondition, FilterDecision, FilterDecl, FilterPhase, ProcDecl, ProcessOptions } from './ast.ts';
import { ConfigError, suggest } from './errors.ts';
import type { Token } from './lexer.ts';
import { parseNameList } from './parse-listen.ts';
import { describe, type TokenStream } from './token-stream.ts';

type ConditionKind = FilterCondition['kind'];

/**
 * The conditions each phase can test: a phase can only look at what the
 * client has sent by then. (As measured on OpenSMTPD 6.8, `data` and
 * `commit` do not offer `rcpt-to`: a message may have several recipients.)
 */
export const PHASE_CONDITIONS: Record<FilterPhase, readonly ConditionKind[]> = {
  connect: ['fcrdns', 'rdns', 'src'],
  helo: ['fcrdns', 'rdns', 'src', 'helo'],
  ehlo: ['fcrdns', 'rdns', 'src', 'helo'],
  auth: ['fcrdns', 'rdns', 'src', 'helo', 'auth'],
  'mail-from': ['fcrdns', 'rdns', 'src', 'helo', 'auth', 'mail-from'],
  'rcpt-to': ['fcrdns', 'rdns', 'src', 'helo', 'auth', 'mail-from', 'rcpt-to'],
  data: ['fcrdns', 'rdns', 'src', 'helo', 'auth', 'mail-from'],
  commit: ['fcrdns', 'rdns', 'src', 'helo', 'auth', 'mail-from'],
};
export const FILTER_PHASES = Object.keys(PHASE_CONDITIONS) as FilterPhase[];
const FILTER_DECISIONS = ['junk', 'bypass', 'reject', 'disconnect', 'rewrite', 'report'] as const;
const FILTER_FORMS = ['phase', 'proc', 'proc-exec', 'chain'] as const;

export function parseFilter(s: TokenStream, start: Token): FilterDecl {
  const name = s.expectValue('a filter name').text;
  const form = s.next();
  const base = { kind: 'filter' as const, name, loc: start.loc };
  switch (form.kind === 'word' ? form.text : '') {
    case 'proc':
      return finish(s, name, { ...base, type: 'proc', proc: s.expectValue('the name of a proc').text });
    case 'proc-exec': {
      const command = s.expectValue('the command to run, in double quotes').text;
      return { ...base, type: 'proc-exec', command, process: parseProcessOptions(s, `filter ${name}`) };
    }
    case 'chain':
      s.expectPunct('{', '"chain"');
      return finish(s, name, { ...base, type: 'chain', filters: parseNameList(s, 'a filter name') });
    case 'phase':
      return finish(s, name, { ...base, type: 'builtin', ...parseBuiltin(s, name) });
  }
  return s.fail(form.loc, `expected how filter ${name} works, found ${describe(form)}`,
    form.kind === 'word' ? suggest(form.text, FILTER_FORMS, 'a filter is one of') : `a filter is one of: ${FILTER_FORMS.join(', ')}`);
}

function finish(s: TokenStream, name: string, filter: FilterDecl): FilterDecl {
  s.expectEnd(`filter ${name}`);
  return filter;
}

/** `phase PHASE match [!]CONDITION [regex] [ARG] DECISION`: exactly one condition. */
function parseBuiltin(s: TokenStream, filter: string) {
  // Phase names are reserved words (connect, helo, data...), so they are read as they come.
  const p = s.next();
  if (p.kind !== 'word' || !(FILTER_PHASES as string[]).includes(p.text)) {
    s.fail(p.loc, `expected a filter phase, found ${describe(p)}`,
      p.kind === 'word' ? suggest(p.text, FILTER_PHASES, 'phases') : `phases: ${FILTER_PHASES.join(', ')}`);
  }
  const phase = p.text as FilterPhase;
  s.expect('match', `phase ${phase}`);

  const negated = s.acceptPunct('!') !== undefined;
  const c = s.next();
  const allowed = PHASE_CONDITIONS[phase];
  if (c.kind !== 'word' || !(allowed as readonly string[]).includes(c.text)) {
    const everywhere = PHASE_CONDITIONS['rcpt-to'] as readonly string[];
    s.fail(c.loc, everywhere.includes(c.text) ? `"${c.text}" cannot be tested at phase ${phase}`
      : `expected a filter condition, found ${describe(c)}`, `at phase ${phase}, a filter can test: ${allowed.join(', ')}`);
  }
  const kind = c.text as ConditionKind;
  // fcrdns takes no argument; rdns and auth may take one; the others need one.
  const regex = kind !== 'fcrdns' && s.accept('regex') !== undefined;
  const takes = kind === 'fcrdns' ? false : kind === 'rdns' || kind === 'auth' ? regex || s.atPunct('<') || s.atValue() : true;
  const target = takes ? s.expectValueOrTable(`"${kind}"`) : undefined;
  const condition: FilterCondition = { kind, negated, regex, ...(target && { target }) };
  return { phase, condition, decision: parseDecision(s, phase, filter) };
}

function parseDecision(s: TokenStream, phase: FilterPhase, filter: string): FilterDecision {
  const d = s.next();
  switch (d.kind === 'word' ? d.text : '') {
    case 'junk':
    case 'bypass':
      if (phase === 'commit') {
        s.report(new ConfigError(d.loc, `"${d.text}" cannot be decided at phase commit`, 'the message is already accepted; use reject or disconnect'));
      }
      return { kind: d.text as 'junk' | 'bypass' };
    case 'reject':
    case 'disconnect':
      return { kind: d.text as 'reject' | 'disconnect', message: s.expectValue('the reply to send, such as "550 go away"').text };
    case 'rewrite':
      return { kind: 'rewrite', value: s.expectValue('the value to rewrite to').text };
    case 'report':
      return { kind: 'report', message: s.expectValue('the message to report').text };
  }
  return s.fail(d.loc, `expected what filter ${filter} decides, found ${describe(d)}`,
    d.kind === 'word' ? suggest(d.text, FILTER_DECISIONS, 'decisions') : `decisions: ${FILTER_DECISIONS.join(', ')}`);
}

export function parseProc(s: TokenStream, start: Token): ProcDecl {
  const name = s.expectValue('a proc name').text;
  const command = s.expectValue('the command to run, in double quotes').text;
  return { kind: 'proc', name, command, process: parseProcessOptions(s, `proc ${name}`), loc: start.loc };
}

/** `[user U] [group G] [chroot DIR]`, to the end of the statement. */
function parseProcessOptions(s: TokenStream, statement: string): ProcessOptions {
  const options: ProcessOptions = {};
  const known = ['user', 'group', 'chroot'] as const;
  while (!s.atEnd()) {
    const t = s.peek();
    const key = known.find((k) => t.kind === 'word' && t.text === k);
    if (!key) {
      s.expectEnd(statement, known);
      break;
    }
    s.next();
    if (options[key] !== undefined) s.report(new ConfigError(t.loc, `${key} is already set for ${statement}`));
    options[key] = s.expectValue(key === 'chroot' ? 'a directory' : `a ${key} name`).text;
  }
  return options;
}
