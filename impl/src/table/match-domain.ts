/**
 * Domain matching for the `domain` service: `match for domain <table>`,
 * `match helo <table>`, and the domain half of a mail address.
 */

import { asciiLowercase } from './lowercase.ts';

const lower = (c: string | undefined): string | undefined => (c === undefined ? c : asciiLowercase(c));

// #region hostname-match
/**
 * Does `hostname` match the table entry `pattern`? Letters compare without
 * case, and `*` in the pattern stands for any run of characters — found
 * the way OpenSMTPD's hostname_match() (util.c) finds it: a star skips
 * ahead to the *first* character equal to the one after the star, and
 * never comes back to try a later one.
 *
 * That single forward scan is what gives `*.example.org` its meaning:
 *
 *   mx.example.org      matches   (the star eats "mx", stops at the first ".")
 *   a.b.example.org     no match  (the star stops at the first ".", after "a",
 *                                  and ".b.example.org" is not ".example.org")
 *   example.org         no match  (nothing to put before the ".")
 *
 * so a wildcard covers exactly one label. It also means a star followed by a
 * character that occurs earlier than intended fails: `*a.org` does not match
 * `banana.org`, where a shell glob would.
 */
export function hostnameMatch(hostname: string, pattern: string): boolean {
  let h = 0;
  let p = 0;
  while (p < pattern.length && h < hostname.length) {
    if (pattern[p] === '*') {
      while (pattern[p] === '*') p++;
      const next = lower(pattern[p]); // undefined: the star ends the pattern
      while (h < hostname.length && lower(hostname[h]) !== next) h++;
      continue;
    }
    if (lower(pattern[p]) !== lower(hostname[h])) return false;
    p++;
    h++;
  }
  return h === hostname.length && p === pattern.length;
}
// #endregion hostname-match
