import { describe, expect, it } from 'vitest';
import { nextTryAfter, retryOffset, type DispatcherKind } from '../../src/scheduler/backoff.ts';

const MIN = 60;
const HOUR = 3600;

describe('the retry schedule', () => {
  // The table of backoff.ts, row by row: a change to the schedule must change the comment too.
  it.each<[DispatcherKind, number, number]>([
    ['local', 0, 0],
    ['local', 1, 10],
    ['local', 2, 40],
    ['local', 3, 90],
    ['local', 4, 160],
    ['local', 5, 250],
    ['local', 6, 6 * MIN],
    ['local', 9, 13 * MIN + 30],
    ['local', 10, 16 * MIN + 40],
    ['local', 30, 2 * HOUR + 30 * MIN],
    ['local', 90, 22 * HOUR + 30 * MIN],
    ['local', 91, 23 * HOUR],
    ['local', 92, 23 * HOUR + 30 * MIN],
    ['relay', 0, 0],
    ['relay', 1, 6 * MIN + 40],
    ['relay', 2, 26 * MIN + 40],
    ['relay', 3, HOUR],
    ['relay', 4, HOUR + 46 * MIN + 40],
    ['relay', 5, 2 * HOUR + 46 * MIN + 40],
    ['relay', 6, 4 * HOUR],
    ['relay', 9, 9 * HOUR],
    ['relay', 10, 11 * HOUR],
    ['relay', 30, 51 * HOUR],
    ['relay', 90, 171 * HOUR],
  ])('%s retry %i comes %i seconds after arrival', (kind, n, offset) => {
    expect(retryOffset(kind, n)).toBe(offset);
  });

  it('never lets the gap between two tries pass the cap', () => {
    const cap = { local: 30 * MIN, relay: 2 * HOUR };
    for (const kind of ['local', 'relay'] as const) {
      for (let n = 1; n < 500; n++) {
        const gap = retryOffset(kind, n) - retryOffset(kind, n - 1);
        expect(gap).toBeLessThanOrEqual(cap[kind]);
        expect(gap).toBeGreaterThanOrEqual(retryOffset(kind, n - 1) - retryOffset(kind, Math.max(0, n - 2)));
      }
    }
  });

  it('tries a relayed message about 53 times in four days, a local one about 237 times', () => {
    const tries = (kind: DispatcherKind) => {
      let n = 0;
      while (retryOffset(kind, n) < 4 * 24 * HOUR) n++;
      return n;
    };
    expect(tries('relay')).toBe(53);
    expect(tries('local')).toBe(237);
  });
});

describe('nextTryAfter', () => {
  const T0 = 1_800_000_000;

  it.each<[string, DispatcherKind, number, number, number]>([
    ['first retry of a relay', 'relay', 1, 5, 400],
    ['second retry of a relay', 'relay', 2, 410, 1600],
    ['a slow attempt skips the retry whose time went by', 'relay', 2, 1700, 3600],
    ['an attempt that ran past several retries skips them all', 'relay', 2, 5 * HOUR, 5 * HOUR + 26 * MIN + 40],
    ['first retry of a local delivery', 'local', 1, 1, 10],
    ['local, under the cap', 'local', 5, 251, 360],
    ['local, past the cap: every 30 minutes', 'local', 92, 24 * HOUR + 1, 24 * HOUR + 30 * MIN],
    ['relay, past the cap: every 2 hours', 'relay', 12, 15 * HOUR + 1, 17 * HOUR],
    ['a last try before the arrival (a clock set back) waits for the attempt count', 'relay', 3, -100, HOUR],
  ])('%s', (_name, kind, attempts, lastTry, next) => {
    expect(nextTryAfter(kind, T0, attempts, T0 + lastTry)).toBe(T0 + next);
  });

  it('agrees with walking the table one retry at a time', () => {
    for (const kind of ['local', 'relay'] as const) {
      for (let attempts = 0; attempts < 150; attempts += 7) {
        for (let elapsed = -50; elapsed < 40 * 24 * HOUR; elapsed += 9_973) {
          let n = attempts;
          while (retryOffset(kind, n) <= elapsed) n++;
          expect(nextTryAfter(kind, T0, attempts, T0 + elapsed)).toBe(T0 + retryOffset(kind, n));
        }
      }
    }
  });
});
