import { describe, expect, it } from 'vitest';
import { closestWord, editDistance, parseConfig } from '../../src/config/index.ts';
import { parseErrors, RULE } from './helpers.ts';

/** Each error as `line:col message | hint`. */
const brief = (text: string) => parseErrors(text).map((e) => `${e.line}:${e.col} ${e.message}${e.hint ? ` | ${e.hint}` : ''}`);

describe('edit distance', () => {
  it('counts a swap of neighbours as one edit', () => {
    expect(editDistance('maildri', 'maildir')).toBe(1);
    expect(editDistance('lisen', 'listen')).toBe(1);
    expect(editDistance('relay', 'relay')).toBe(0);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('suggests only close words', () => {
    expect(closestWord('recieved-auth', ['received-auth', 'auth'])).toBe('received-auth');
    expect(closestWord('tsl', ['tls', 'tag'])).toBe('tls');
    expect(closestWord('banana', ['tls', 'tag'])).toBeUndefined();
  });
});

describe('error messages', () => {
  it('names file, line and column, and prints the hint on its own line', () => {
    const [e] = parseErrors('lisen on lo' + RULE);
    expect(String(e)).toBe('smtpd.conf:1:1: unknown statement "lisen"\n    hint: did you mean "listen"?');
  });

  it('suggests the closest option or method', () => {
    expect(brief('listen on lo tls recieved-auth' + RULE)).toEqual([
      '1:18 unknown option "recieved-auth" for listen on lo | did you mean "received-auth"?',
    ]);
    expect(brief('action "a" maildri\nmatch for any action "a"')).toEqual([
      '1:12 unknown delivery method "maildri" for action a | did you mean "maildir"?',
    ]);
  });

  it('lists the known methods when nothing is close', () => {
    expect(brief('action "a" deliver\nmatch for any action "a"')).toEqual([
      '1:12 unknown delivery method "deliver" for action a | known methods: mbox, maildir, mda, lmtp, forward-only, expand-only, relay',
    ]);
  });

  it('asks to quote a reserved word used as a name', () => {
    expect(brief('action local mbox\nmatch for local action "local"')).toEqual([
      '1:8 expected an action name, found the keyword "local" | to use "local" as an action name, write it in double quotes: "local"',
    ]);
  });

  it('reports a match rule that names an unknown action, with the closest one', () => {
    expect(brief('action "local_mail" mbox\nmatch for local action "local_mial"')).toEqual([
      '2:24 no action named "local_mial" | did you mean "local_mail"?',
    ]);
  });

  it('reports a name used before its declaration', () => {
    expect(brief('action "a" mbox alias <aliases>\ntable aliases file:/etc/aliases\nmatch for local action "a"')).toEqual([
      '1:1 table "aliases" is used before it is declared | move its declaration (line 2) above this line',
    ]);
  });

  it('reports duplicate names', () => {
    expect(brief('table t { a }\ntable t { b }' + RULE)).toEqual([
      '2:1 table "t" is already declared, at line 1 | names must be unique; rename one of them',
    ]);
  });

  it('reports an inline table of the wrong shape', () => {
    expect(brief('table t { a, b }\naction "a" mbox alias <t>\nmatch for local action "a"')).toEqual([
      '2:1 table t is a list, but the alias table must be a mapping | write its entries as key = value (line 1)',
    ]);
  });

  it('collects one error per broken statement, without cascades', () => {
    const errors = brief([
      'table aliases /etc/aliases',
      'lisen on lo',
      'listen on lo port 99999',
      'action "local" maildri alias <aliases>',
      'match from any for domain example.org action "lcoal"',
      'match from local for any action "outbound"',
    ].join('\n'));
    expect(errors).toEqual([
      '1:15 "/etc/aliases" must be quoted | an argument that starts with "/" must be written in double quotes: "/etc/aliases"',
      '2:1 unknown statement "lisen" | did you mean "listen"?',
      '3:19 invalid port: "99999" | port must be a number from 1 to 65535',
      '4:16 unknown delivery method "maildri" for action local | did you mean "maildir"?',
      '5:46 no action named "lcoal" | did you mean "local"?',
      '6:33 no action named "outbound" | declare it on an earlier line, for example: action "outbound" maildir',
    ]);
  });

  it('reports options that need others or exclude each other', () => {
    expect(brief('listen on lo auth' + RULE)).toEqual([
      '1:14 "auth" requires tls, tls-require or smtps on the same listener | passwords must not cross the network in clear: add tls',
    ]);
    expect(brief('listen on lo tls smtps' + RULE)).toEqual(['1:18 tls is already set for this listener | "tls" at column 14 sets it; keep one']);
    expect(brief('action "a" relay host x.example.com backup\nmatch for any action "a"')[0]).toMatch(/"backup" and "host" cannot be used together/);
    expect(brief('action "a" relay srs\nmatch for any action "a"')[0]).toMatch(/uses srs, but no srs key is declared before it/);
    expect(brief('action "a" mbox user joe\nmatch for any action "a"')[0]).toMatch(/"user" cannot be used with mbox/);
  });

  it('refuses allow-exec where it qualifies nothing', () => {
    expect(brief('action "a" mbox allow-exec\nmatch for any action "a"')).toEqual([
      '1:17 "allow-exec" must follow forward-file, alias <table> or virtual <table> | write it right after the option whose entries may run commands, as in: alias <aliases> allow-exec',
    ]);
  });

  it('says which match criterion is misplaced, and what a rule must end with', () => {
    expect(brief('match from anywhere reject')).toEqual(['1:12 expected what follows "from", found "anywhere" | "from" takes: any, local, socket, src, rdns, auth, mail-from']);
    expect(brief('match from any for any')).toEqual(['1:23 the match rule ends without a decision | end it with action "name" or with reject']);
    expect(brief('match from any from local reject')[0]).toMatch(/^1:16 a match rule takes one "from" criterion/);
  });

  it('checks the conditions a filter phase can test', () => {
    expect(brief('filter f phase connect match helo <t> junk' + RULE)).toEqual([
      '1:30 "helo" cannot be tested at phase connect | at phase connect, a filter can test: fcrdns, rdns, src',
    ]);
  });

  it('refuses a file without match rules, as smtpd does', () => {
    const { errors } = parseConfig('listen on lo\n', { file: 'x.conf' });
    expect(errors.map(String)).toEqual([
      'x.conf:1:1: no match rules: every recipient would be rejected\n    hint: add at least one, such as: match from local for local action "local"',
    ]);
    // The hint names an action the file has, if it has one.
    expect(parseConfig('action "l" maildir\n', { file: 'x.conf' }).errors.map(String)).toEqual([
      'x.conf:1:1: no match rules: every recipient would be rejected\n    hint: add at least one, such as: match from local for local action "l"',
    ]);
  });

  it('does not take inherited object keys for port names', () => {
    expect(brief('listen on lo port toString' + RULE)[0]).toMatch(/^1:19 unknown port name "toString"/);
  });

  it('reports an inline table that runs past its line', () => {
    expect(brief('table t { a,\nb }' + RULE)[0]).toBe(
      '1:13 table t is missing its closing "}" | an inline table must end on the line it starts; end a line with \\ to continue it',
    );
  });
});
