/**
 * Concurrent maildir deliveries share their fsyncs of new/: each one is in
 * new/ and durable before it reports ok, and the directory is fsync'd fewer
 * times than there are deliveries.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deliverMaildir, maildirStats } from '../../src/delivery/maildir.ts';
import { content, tempDirPerTest } from './helpers.ts';

describe('maildir deliveries at the same time', () => {
  const freshDir = tempDirPerTest();

  it('all land in new/, with fewer fsyncs of new/ than deliveries; one alone gets its own', async () => {
    const dir = join(freshDir(), 'Maildir');
    const before = maildirStats.dirSyncs;
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, (_, i) => deliverMaildir(dir, content(`Subject: ${i}\r\n\r\nbody ${i}\r\n`, 4096))),
    );
    expect(outcomes.every((o) => o.result === 'ok')).toBe(true);
    expect(readdirSync(join(dir, 'new'))).toHaveLength(40);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    const shared = maildirStats.dirSyncs - before;
    expect(shared).toBeGreaterThanOrEqual(1);
    expect(shared).toBeLessThan(40);

    const alone = maildirStats.dirSyncs;
    expect((await deliverMaildir(dir, content('Subject: alone\r\n\r\nx\r\n'))).result).toBe('ok');
    expect(maildirStats.dirSyncs - alone).toBe(1);
  });
});
