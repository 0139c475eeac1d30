/**
 * The ruleset as a whole: rule order, the implied defaults, reject rules
 * and the replies a client sees, the open relay, table failures, the
 * trace hook, and building a ruleset from tables on disk.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig, type TableDecl } from '../../src/config/index.ts';
import { Ruleset, RulesetError, type RuleTrace } from '../../src/lookup/index.ts';
import { openTable, tableSource } from '../../src/table/index.ts';
import { decide, ELSEWHERE, HOST, REMOTE, rulesetOf, SOCKET, summary, TO_US } from './helpers.ts';

const ACTIONS = `
action "local" maildir
action "relay" relay
`;

describe('first match wins', () => {
  const rows = [
    {
      name: 'the earlier of two matching rules decides',
      conf: `match from any for any action "relay"\nmatch from any for local action "local"\n`,
      expected: 'rule 1: action "relay"',
    },
    {
      name: 'the same rules the other way round',
      conf: `match from any for local action "local"\nmatch from any for any action "relay"\n`,
      expected: 'rule 1: action "local"',
    },
    {
      name: 'a rule that does not match is skipped',
      conf: `match from src 198.51.100.0/24 for any action "relay"\nmatch from any for local action "local"\n`,
      expected: 'rule 2: action "local"',
    },
    {
      name: 'a reject rule above an action rule wins',
      conf: `match from src 203.0.113.0/24 for any reject\nmatch from any for local action "local"\n`,
      expected: '550 Invalid recipient: <bob@mx.example.org> (reject rule at rule 1)',
    },
    {
      name: 'a reject rule below a matching action rule is never reached',
      conf: `match from any for local action "local"\nmatch from src 203.0.113.0/24 for any reject\n`,
      expected: 'rule 1: action "local"',
    },
  ];
  it.each(rows)('$name', ({ conf, expected }) => {
    expect(decide(ACTIONS + conf, REMOTE, TO_US)).toBe(expected);
  });
});

describe('implied from local and for local', () => {
  const conf = `${ACTIONS}match action "local"\n`;
  it.each([
    ['the local enqueuer, to a local user', SOCKET, TO_US, 'rule 1: action "local"'],
    ['a client on this host, to a local user', { ...REMOTE, address: '127.0.0.1' }, TO_US, 'rule 1: action "local"'],
    ['a remote client, to a local user', REMOTE, TO_US, '550 Invalid recipient: <bob@mx.example.org> (no rule matched)'],
    ['the local enqueuer, to another domain', SOCKET, ELSEWHERE, '550 Invalid recipient: <carol@gmail.com> (no rule matched)'],
  ] as const)('match action "local": %s', (_name, session, envelope, expected) => {
    expect(decide(conf, session, envelope)).toBe(expected);
  });

  it('a rule with only "for" still requires a local source', () => {
    expect(decide(`${ACTIONS}match for any action "relay"\n`, REMOTE, ELSEWHERE)).toMatch(/^550 /);
    expect(decide(`${ACTIONS}match for any action "relay"\n`, SOCKET, ELSEWHERE)).toBe('rule 1: action "relay"');
  });

  it('a rule with only "from" still requires a local destination', () => {
    expect(decide(`${ACTIONS}match from any action "local"\n`, REMOTE, ELSEWHERE)).toMatch(/^550 /);
    expect(decide(`${ACTIONS}match from any action "local"\n`, REMOTE, TO_US)).toBe('rule 1: action "local"');
  });
});

describe('rejections', () => {
  it('no rules at all refuses everything', () => {
    const { config } = parseConfig(ACTIONS, { file: 'smtpd.conf' });
    const decision = Ruleset.fromConfig(config, { localNames: HOST }).match(SOCKET, TO_US);
    expect(decision).toEqual({ reject: { code: 550, reply: '550 Invalid recipient: <bob@mx.example.org>', reason: 'no rule matched' } });
  });

  it('a reject rule and no match give the client the same reply', () => {
    const rejected = rulesetOf(`${ACTIONS}match from any for any reject\n`).match(REMOTE, ELSEWHERE);
    const unmatched = rulesetOf(`${ACTIONS}match from any for local action "local"\n`).match(REMOTE, ELSEWHERE);
    if (!('reject' in rejected) || !('reject' in unmatched)) throw new Error('expected two rejections');
    expect(rejected.reject.reply).toBe('550 Invalid recipient: <carol@gmail.com>');
    expect(unmatched.reject.reply).toBe(rejected.reject.reply);
    expect([rejected.reject.reason, unmatched.reject.reason]).toEqual(['reject rule', 'no rule matched']);
  });

  it('a table that cannot answer fails the recipient temporarily, with 451', () => {
    const ruleset = rulesetOf(`${ACTIONS}match from any for domain example.org action "local"\nmatch from any for any action "relay"\n`);
    const longDomain = `${'a'.repeat(1100)}.example`;
    const decision = ruleset.match(REMOTE, { ...TO_US, rcptTo: `bob@${longDomain}` });
    expect(summary(decision)).toBe(`451 Temporary failure: <bob@${longDomain}> (table error at rule 1)`);
  });

  it('a rule ruled out by an earlier question never reaches the failing table', () => {
    const events: RuleTrace[] = [];
    const ruleset = rulesetOf(`${ACTIONS}match tag MSA from any for domain example.org action "local"\nmatch from any for any action "relay"\n`, {
      trace: (t) => events.push(t),
    });
    const decision = ruleset.match(REMOTE, { ...TO_US, rcptTo: `bob@${'a'.repeat(1100)}` });
    expect(summary(decision)).toMatch(/^451 .*table error at rule 2/);
    expect(events.map((e) => `${e.rule} ${e.criterion} ${e.result}`)).toEqual(['1 tag MSA false', '2 from any true', '2 for any error']);
  });
});

describe('the open relay', () => {
  const openRelay = `${ACTIONS}match from any for any action "relay"\n`;
  const safe = `${ACTIONS}table domains { example.org }
match from any for domain <domains> action "local"
match from local for any action "relay"
match from any auth for any action "relay"
`;
  it.each([
    ['a stranger, to gmail.com', REMOTE, ELSEWHERE, 'rule 1: action "relay"', '550 Invalid recipient: <carol@gmail.com> (no rule matched)'],
    ['a stranger, to our domain', REMOTE, { ...TO_US, rcptTo: 'bob@example.org' }, 'rule 1: action "relay"', 'rule 1: action "local"'],
    ['the local enqueuer, to gmail.com', SOCKET, ELSEWHERE, 'rule 1: action "relay"', 'rule 2: action "relay"'],
    ['an authenticated user, to gmail.com', { ...REMOTE, authUser: 'bob' }, ELSEWHERE, 'rule 1: action "relay"', 'rule 3: action "relay"'],
  ] as const)('%s', (_name, session, envelope, open, guarded) => {
    expect(decide(openRelay, session, envelope)).toBe(open);
    expect(decide(safe, session, envelope)).toBe(guarded);
  });
});

describe('order of questions and the trace hook', () => {
  it('asks in ruleset.c order, not written order, and stops at the first false answer', () => {
    const events: RuleTrace[] = [];
    const ruleset = rulesetOf(`${ACTIONS}match helo "*.example.net" for any from src 198.51.100.0/24 tag MSA action "relay"\nmatch from any action "local"\n`, {
      trace: (t) => events.push(t),
    });
    expect(summary(ruleset.match({ ...REMOTE, tag: 'MSA' }, TO_US))).toBe('rule 2: action "local"');
    expect(events.map((e) => `${e.rule} ${e.criterion} ${e.result}`)).toEqual([
      '1 tag MSA true',
      '1 from src 198.51.100.0/24 false',
      '2 from any true',
      '2 for local (the default) true',
    ]);
    expect(events[0]?.node?.loc.line).toBe(4);
    expect(events[3]?.node).toBeUndefined();
  });

  it('traces the two checks of from auth, the first one implied', () => {
    const events: RuleTrace[] = [];
    rulesetOf(`${ACTIONS}match !from auth for any reject\n`, { trace: (t) => events.push(t) }).match(REMOTE, ELSEWHERE);
    expect(events.map((e) => `${e.criterion} ${e.result}`)).toEqual([
      'from any (implied by from auth) true',
      'for any true',
      '!from auth true',
    ]);
  });

  it('reports a failing table as an error', () => {
    const events: RuleTrace[] = [];
    rulesetOf(`${ACTIONS}match from any for any rcpt-to "bob@example.org" action "local"\n`, { trace: (t) => events.push(t) })
      .match(REMOTE, { ...TO_US, rcptTo: `${'b'.repeat(1100)}@example.org` });
    expect(events.at(-1)).toMatchObject({ criterion: 'rcpt-to bob@example.org', result: 'error' });
  });
});

describe('building a ruleset', () => {
  let dir: string | undefined;
  const scratch = () => (dir ??= mkdtempSync(join(tmpdir(), 'saf-lookup-')));
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('opens each declared table once, however many rules name it', () => {
    const opened: string[] = [];
    const openCounting = (decl: TableDecl) => {
      opened.push(decl.name);
      return openTable(decl.name, tableSource(decl));
    };
    rulesetOf(`${ACTIONS}table domains { example.org }
match from any for domain <domains> action "local"
match from local !for domain <domains> action "relay"
match from any helo <domains> reject
`, { openTable: openCounting });
    expect(opened).toEqual(['domains']);
  });

  it('reads file and regex tables', () => {
    const nets = join(scratch(), 'relays');
    writeFileSync(nets, '# trusted\n198.51.100.0/24\n2001:db8::/32\n');
    const helos = join(scratch(), 'bad-helos');
    writeFileSync(helos, '^[0-9.]+$\n^localhost$\n');
    const conf = `${ACTIONS}table relays file:${nets}
table bad regex:${helos}
match from any for any helo regex <bad> reject
match from src <relays> for any action "relay"
`;
    expect(decide(conf, { ...REMOTE, address: '198.51.100.7' }, ELSEWHERE)).toBe('rule 2: action "relay"');
    expect(decide(conf, { ...REMOTE, address: '198.51.100.7', helo: 'localhost' }, ELSEWHERE)).toMatch(/^550 .*reject rule at rule 1/);
    expect(decide(conf, REMOTE, ELSEWHERE)).toMatch(/no rule matched/);
  });

  it.each([
    ['a regex table asked without regex', (p: string) => `table bad regex:${p}\nmatch from any for any helo <bad> reject\n`, /5:24: helo <bad>: table bad \(regex\) cannot answer domain lookups/],
    ['a regular expression that does not compile', () => `match from any for any helo regex "(" reject\n`, /4:24: invalid regular expression "\("/],
    ['a table file that cannot be read', () => `table gone file:/nonexistent/table\nmatch from src <gone> for any reject\n`, /5:16: .*nonexistent/],
  ])('refuses %s', (_name, conf, message) => {
    const path = join(scratch(), 'pattern');
    writeFileSync(path, '^x$\n');
    expect(() => rulesetOf(ACTIONS + conf(path))).toThrow(RulesetError);
    expect(() => rulesetOf(ACTIONS + conf(path))).toThrow(message);
  });

  it('uses the configuration\'s sub-address delimiter', () => {
    const conf = `smtp sub-addr-delim "-"\n${ACTIONS}match from any for rcpt-to "bob@example.org" action "local"\n`;
    expect(decide(conf, REMOTE, { ...TO_US, rcptTo: 'bob-lists@example.org' })).toBe('rule 1: action "local"');
    expect(decide(conf, REMOTE, { ...TO_US, rcptTo: 'bob+lists@example.org' })).toMatch(/^550 /);
  });

  it('closes its tables', () => {
    const ruleset = rulesetOf(`${ACTIONS}match from any for any action "relay"\n`);
    expect(() => ruleset.close()).not.toThrow();
  });
});
