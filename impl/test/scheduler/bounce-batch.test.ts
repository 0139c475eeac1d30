import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BOUNCE_BATCH_MAX, BOUNCE_HOLD_MS, BounceBatch, type BounceReason } from '../../src/scheduler/index.ts';

describe('BounceBatch', () => {
  let sent: [string[], BounceReason][];
  let batch: BounceBatch;
  beforeEach(() => {
    vi.useFakeTimers();
    sent = [];
    batch = new BounceBatch((ids, reason) => sent.push([ids, reason]));
  });
  afterEach(() => {
    batch.stop();
    vi.useRealTimers();
  });

  it('sends the failures of one message together, one hold after the first', () => {
    batch.add('0a1b2c3d00000001', 'permfail');
    vi.advanceTimersByTime(BOUNCE_HOLD_MS - 100);
    batch.add('0a1b2c3d00000002', 'permfail');
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(100);
    expect(sent).toEqual([[['0a1b2c3d00000001', '0a1b2c3d00000002'], 'permfail']]);
  });

  it('does not wait longer for a failure that comes late: it makes a report of its own', () => {
    batch.add('0a1b2c3d00000001', 'permfail');
    vi.advanceTimersByTime(BOUNCE_HOLD_MS);
    batch.add('0a1b2c3d00000002', 'permfail');
    vi.advanceTimersByTime(BOUNCE_HOLD_MS);
    expect(sent).toEqual([[['0a1b2c3d00000001'], 'permfail'], [['0a1b2c3d00000002'], 'permfail']]);
  });

  it('keeps messages, and expiries apart from permanent failures, in reports of their own', () => {
    batch.add('0a1b2c3d00000001', 'permfail');
    batch.add('99999999000000aa', 'permfail');
    batch.add('0a1b2c3d00000002', 'expired');
    vi.advanceTimersByTime(BOUNCE_HOLD_MS);
    expect(sent).toEqual([
      [['0a1b2c3d00000001'], 'permfail'], [['99999999000000aa'], 'permfail'], [['0a1b2c3d00000002'], 'expired'],
    ]);
  });

  it(`sends a batch of ${BOUNCE_BATCH_MAX} at once, within what one request to the queue may carry`, () => {
    for (let i = 0; i < BOUNCE_BATCH_MAX + 1; i++) batch.add(`0a1b2c3d${i.toString(16).padStart(8, '0')}`, 'permfail');
    expect(sent.map(([ids]) => ids.length)).toEqual([BOUNCE_BATCH_MAX]);
    vi.advanceTimersByTime(BOUNCE_HOLD_MS);
    expect(sent.map(([ids]) => ids.length)).toEqual([BOUNCE_BATCH_MAX, 1]);
  });

  it('drops what it holds when the process stops: the spool still has those envelopes', () => {
    batch.add('0a1b2c3d00000001', 'permfail');
    batch.stop();
    vi.advanceTimersByTime(BOUNCE_HOLD_MS * 2);
    expect(sent).toEqual([]);
  });
});
