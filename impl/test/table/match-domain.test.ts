import { describe, expect, it } from 'vitest';
import { hostnameMatch } from '../../src/table/match-domain.ts';

describe('hostnameMatch (domain service)', () => {
  it.each([
    // hostname, table entry, matches?
    ['example.org', 'example.org', true],
    ['EXAMPLE.Org', 'example.org', true],
    ['example.org', 'EXAMPLE.ORG', true],
    ['example.org', 'example.com', false],
    ['www.example.org', 'example.org', false],
    ['mx.example.org', '*.example.org', true],
    ['a.b.example.org', '*.example.org', false], // a star covers one label
    ['example.org', '*.example.org', false],
    ['.example.org', '*.example.org', true], // the star may be empty
    ['anything.at.all', '*', true],
    ['', '*', false],
    ['', '', true],
    ['mx1.example.org', 'mx*.example.org', true],
    ['mx.example.org', 'mx*.example.org', true],
    ['www.example.org', '*example.org', true],
    ['banana.org', '*a.org', false], // no backtracking: the star stops at the first "a"
    ['mail.example.org', 'mail.*', true],
    ['example.org.', 'example.org', false],
    ['xexample.org', '**.example.org', false],
  ])('%j against %j: %s', (hostname, pattern, expected) => {
    expect(hostnameMatch(hostname, pattern)).toBe(expected);
  });
});
