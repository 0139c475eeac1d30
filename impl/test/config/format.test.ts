import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeRules, formatConfig, parseConfig } from '../../src/config/index.ts';
import { parseOk } from './helpers.ts';

const configs = join(import.meta.dirname, '..', 'configs');

describe('formatConfig', () => {
  it('prints one statement per line, with macros expanded and continuations joined', () => {
    const text = readFileSync(join(configs, 'man-relay-smarthost.conf'), 'utf8');
    expect(formatConfig(parseOk(text))).toBe([
      'table aliases file:/etc/aliases',
      'table secrets file:/etc/secrets',
      'listen on lo0',
      'action "local_mail" mbox alias <aliases>',
      'action "outbound" relay host smtp+tls://bob@smtp.example.com auth <secrets>',
      'match from local for local action "local_mail"',
      'match from local for any action "outbound"',
      '',
    ].join('\n'));
  });

  it('quotes what must be quoted', () => {
    const config = parseOk('table t { "*.example.com", "local" }\nmatch mail-from "@example.com" for domain "local" reject');
    expect(formatConfig(config)).toBe('table t { "*.example.com", "local" }\nmatch for domain "local" mail-from "@example.com" reject\n');
  });

  // Found by impl/fuzz/config.ts: `<domain>` was printed bare, and did not parse again.
  it('quotes a table name that is a reserved word, wherever a table is named', () => {
    const text = [
      'table "domain" { example.org }',
      'table "senders" { "bob" = "bob@example.org" }',
      'table "virtual" { "@example.org" = "bob" }',
      'listen on lo0 senders <"senders">',
      'action "local" maildir virtual <"virtual">',
      'match from any for domain <"domain"> action "local"',
    ].join('\n');
    const once = formatConfig(parseOk(text));
    expect(once).toContain('for domain <"domain">');
    expect(once).toContain('senders <"senders">');
    expect(once).toContain('virtual <"virtual">');
    const { config, errors } = parseConfig(once, { file: 'formatted.conf' });
    expect(errors.map(String)).toEqual([]);
    expect(formatConfig(config)).toBe(once);
  });

  // Found by impl/fuzz/config.ts: both were printed so that they read back as something else.
  it('writes a path with spaces and a backslash before a space so that they read back the same', () => {
    const text = [
      'table domains "/etc/mail/my domains"',
      'action "local" mda "/bin/filter a\\\\ b"', // in the file: "/bin/filter a\\ b", the value: a\ b
      'match for domain <domains> action "local"',
    ].join('\n');
    const first = parseOk(text);
    const once = formatConfig(first);
    const { config, errors } = parseConfig(once, { file: 'formatted.conf' });
    expect(errors.map(String)).toEqual([]);
    expect(config.tables.find((t) => t.name === 'domains')?.path).toBe('/etc/mail/my domains');
    const action = config.statements.find((st) => st.kind === 'action');
    expect(action).toMatchObject({ method: { kind: 'mda', command: '/bin/filter a\\ b' } });
    expect(formatConfig(config)).toBe(once);
  });

  it('gives text that parses to the same configuration', () => {
    for (const name of ['full.conf', 'man-dkim.conf', 'man-tls-auth.conf', 'man-reject-forged.conf', 'debian-default.conf']) {
      const once = formatConfig(parseOk(readFileSync(join(configs, name), 'utf8')));
      const { config, errors } = parseConfig(once, { file: name });
      expect(errors.map(String)).toEqual([]);
      expect(formatConfig(config)).toBe(once);
    }
  });
});

describe('describeRules', () => {
  it('lists the rules in order, with their defaults written out', () => {
    const text = readFileSync(join(configs, 'man-reject-forged.conf'), 'utf8');
    expect(describeRules(parseOk(text))).toBe([
      '1. from local (default) for local -> action "local_mail"',
      '2. from local (default) for any -> action "outbound"',
      '3. !from src <other-relays> for any mail-from "@example.com" -> reject',
      '4. from any for domain example.com -> action "local_mail"',
      '',
    ].join('\n'));
  });

  it('describes the man page examples', () => {
    const text = readFileSync(join(configs, 'man-relay-smarthost.conf'), 'utf8');
    expect(describeRules(parseOk(text))).toBe('1. from local for local -> action "local_mail"\n2. from local for any -> action "outbound"\n');
  });
});
