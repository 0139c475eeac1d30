import { describe, expect, it } from 'vitest';
import { mailaddrMatch, parseMailAddr } from '../../src/table/match-mailaddr.ts';

describe('mailaddrMatch (mailaddr service)', () => {
  it.each([
    // address, table entry, matches?
    ['joe@example.org', 'joe@example.org', true],
    ['Joe@Example.ORG', 'joe@example.org', true],
    ['joe@example.org', 'jim@example.org', false],
    ['joe@example.org', 'joe@example.com', false],
    ['joe@example.org', '@example.org', true],
    ['jim@example.org', '@example.org', true],
    ['joe@example.com', '@example.org', false],
    ['joe@mx.example.org', '@*.example.org', true],
    ['joe@example.org', '@*.example.org', false],
    ['joe@mx.example.org', 'joe@*.example.org', true],
    ['jim@mx.example.org', 'joe@*.example.org', false],
    ['joe@example.org', 'joe', true],
    ['joe@anywhere.net', 'joe', true],
    ['joe@example.org', 'joe@', true],
    ['jim@example.org', 'joe@', false],
    ['anyone@anywhere.net', '@', true],
    ['joe+lists@example.org', 'joe@example.org', true], // the tag is dropped
    ['joe+lists@example.org', 'joe', true],
    ['joe+lists@example.org', 'joe+lists@example.org', true],
    ['joe@example.org', 'joe+lists@example.org', false], // a tag in the entry must be there
    ['joe+other@example.org', 'joe+lists@example.org', false],
    ['"odd@user"@example.org', '@example.org', true], // split at the last @
  ])('%j against %j: %s', (key, entry, expected) => {
    expect(mailaddrMatch(key, entry)).toBe(expected);
  });

  it('uses the configured sub-address delimiter', () => {
    expect(mailaddrMatch('joe-lists@example.org', 'joe@example.org', '-')).toBe(true);
    expect(mailaddrMatch('joe+lists@example.org', 'joe@example.org', '-')).toBe(false);
  });

  it('splits entries into user and domain', () => {
    expect(parseMailAddr('user')).toEqual({ user: 'user', domain: '' });
    expect(parseMailAddr('@domain')).toEqual({ user: '', domain: 'domain' });
    expect(parseMailAddr('user@')).toEqual({ user: 'user', domain: '' });
    expect(parseMailAddr('@')).toEqual({ user: '', domain: '' });
  });
});
