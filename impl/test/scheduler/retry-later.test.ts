/**
 * RetryLater: a bounce the queue could not write is tried again, later
 * and later, until it is written or the process stops.
 */
import { describe, expect, it } from 'vitest';
import { RetryLater } from '../../src/scheduler/index.ts';

const delays = { firstMs: 10, maxMs: 40 };

describe('RetryLater', () => {
  it('tries again after each failure, waiting twice as long each time up to the most, until the work succeeds', async () => {
    const lines: string[] = [];
    const retries = new RetryLater((line) => lines.push(line), delays);
    const tries: number[] = [];
    const started = Date.now();
    await retries.run('envelope 1 could not be bounced', async () => {
      tries.push(Date.now() - started);
      if (tries.length < 5) throw new Error('ENOSPC: no space left on device, write');
    });
    expect(tries.length).toBe(5);
    expect(lines).toEqual([10, 20, 40, 40].map((ms) =>
      `warn: scheduler: envelope 1 could not be bounced: ENOSPC: no space left on device, write; trying again in ${ms} ms`));
    expect(tries[4]! - tries[0]!).toBeGreaterThanOrEqual(10 + 20 + 40 + 40 - 5);
  });

  it('stops trying when the process stops', async () => {
    const retries = new RetryLater(() => {}, delays);
    let tries = 0;
    const running = retries.run('bounce', async () => {
      tries++;
      throw new Error('EIO');
    });
    await new Promise((resolve) => setTimeout(resolve, 25));
    retries.stop();
    const seen = tries;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(tries).toBe(seen);
    expect(seen).toBeGreaterThanOrEqual(2);
    await running; // ends at once: stopping wakes the wait
  });
});
