import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { checkCredentials } from '../../src/crypto/credentials.ts';
import { hashPassword } from '../../src/crypto/password.ts';
import { openTable } from '../../src/table/open.ts';
import { TableError } from '../../src/table/types.ts';

function credentials(entries: Record<string, string>) {
  return openTable('creds', {
    backend: 'static',
    entries: Object.entries(entries).map(([key, value]) => ({ key, value })),
    file: 'smtpd.conf',
  });
}

/**
 * The shortest time, in ms, of `runs` calls of each check, taken in turn
 * so that a busy machine slows both alike. The shortest is the cost of the
 * work itself, with the least noise added.
 */
async function fastestTimes(runs: number, checks: (() => Promise<unknown>)[]): Promise<number[]> {
  const fastest = checks.map(() => Infinity);
  for (let i = 0; i < runs; i++) {
    for (const [n, check] of checks.entries()) {
      const start = performance.now();
      await check();
      fastest[n] = Math.min(fastest[n]!, performance.now() - start);
    }
  }
  return fastest;
}

describe('checkCredentials', () => {
  const table = credentials({
    alice: hashPassword('wonderland'),
    bob: '$2b$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW', // "secret"
  });

  it('accepts the right password of a known user, and nothing else', async () => {
    expect(await checkCredentials(table, 'alice', 'wonderland')).toBe(true);
    expect(await checkCredentials(table, 'ALICE', 'wonderland')).toBe(true);
    expect(await checkCredentials(table, 'bob', 'secret')).toBe(true);
    expect(await checkCredentials(table, 'alice', 'Wonderland')).toBe(false);
    expect(await checkCredentials(table, 'alice', '')).toBe(false);
    expect(await checkCredentials(table, 'mallory', 'wonderland')).toBe(false);
  });

  it('takes as long for an unknown user as for a wrong password', async () => {
    const [known, unknown, lookup] = await fastestTimes(15, [
      () => checkCredentials(table, 'alice', 'guess'),
      () => checkCredentials(table, 'nobody', 'guess'),
      async () => table.lookup('credentials', 'nobody'),
    ]);
    // 5000 rounds of SHA-512 take milliseconds; a lookup alone, microseconds.
    expect(known! / lookup!).toBeGreaterThan(50);
    expect(unknown! / known!).toBeGreaterThan(0.5);
    expect(unknown! / known!).toBeLessThan(2);
  });

  it('passes on a table that cannot answer, which is not a wrong password', async () => {
    const broken = credentials({ carol: 'x' });
    await expect(checkCredentials(broken, 'carol', 'x')).rejects.toThrow(TableError);
  });
});
