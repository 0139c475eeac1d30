import { describe, expect, it } from 'vitest';
import type { EnvelopeId, MessageId } from '../../src/queue/types.ts';
import { testEnvelope } from '../envelopes.ts';
import { entryOf, schedulerOptions } from '../../src/scheduler/options.ts';
import { RamQueue } from '../../src/scheduler/ramqueue.ts';
import { parseOk } from '../config/helpers.ts';

const HOUR = 3600;
const DAY = 24 * HOUR;

describe('schedulerOptions', () => {
  it('reads the defaults of OpenSMTPD 6.8 when smtpd.conf says nothing', () => {
    const o = schedulerOptions(parseOk('action "local" mbox\naction "out" relay\nmatch for any action "out"\n'));
    expect(o.warnIntervals).toEqual([4 * HOUR]);
    expect(o.maxInflight).toBe(5000);
    expect(o.ttlOf('out')).toBe(4 * DAY);
    expect(o.kindOf('local')).toBe('local');
    expect(o.kindOf('out')).toBe('relay');
  });

  it('reads bounce warn-interval, queue ttl, scheduler limit and the actions', () => {
    const o = schedulerOptions(parseOk([
      'bounce warn-interval 30m, 2h',
      'queue ttl 2d',
      'scheduler limit max-inflight 100',
      'action "maildir" maildir ttl 6h',
      'action "out" relay ttl 1d',
      'action "smarthost" relay host smtp://mx.example.org',
      'match for local action "maildir"',
      'match for any action "out"',
    ].join('\n') + '\n'));
    expect(o.warnIntervals).toEqual([30 * 60, 2 * HOUR]);
    expect(o.maxInflight).toBe(100);
    expect([o.ttlOf('maildir'), o.ttlOf('out'), o.ttlOf('smarthost')]).toEqual([6 * HOUR, DAY, 2 * DAY]);
    expect([o.kindOf('maildir'), o.kindOf('out'), o.kindOf('smarthost')]).toEqual(['local', 'relay', 'relay']);
  });
});

describe('entryOf', () => {
  const envelope = testEnvelope({
    id: 0x0a1b2c3d00000001n as EnvelopeId,
    messageId: 0x0a1b2c3d as MessageId,
    dispatcher: 'out',
    attempts: 2,
    lastTryAt: 1_700_000_500,
  });

  it('keeps what the scheduler needs, and can be scheduled', () => {
    const e = entryOf(envelope);
    expect(e).toEqual({
      id: '0a1b2c3d00000001', messageId: 0x0a1b2c3d, dispatcher: 'out', createdAt: 1_700_000_000,
      expiresAt: 1_700_345_600, attempts: 2, lastTryAt: 1_700_000_500, warnings: 0, bounce: false, notifyDelay: true,
    });
    expect(new RamQueue({ kindOf: () => 'relay' }).add(e, 1_700_001_000)).toBe(1_700_001_600);
  });

  it('marks bounces and recipients who asked for no delay notice', () => {
    expect(entryOf({ ...envelope, sender: null })).toMatchObject({ bounce: true, notifyDelay: false });
    expect(entryOf({ ...envelope, dsn: { notify: ['FAILURE'] } })).toMatchObject({ bounce: false, notifyDelay: false });
    expect(entryOf({ ...envelope, dsn: { notify: ['DELAY'] } })).toMatchObject({ notifyDelay: true });
  });

  it('takes the expiry from the configuration in force when given one', () => {
    expect(entryOf(envelope, () => DAY).expiresAt).toBe(1_700_000_000 + DAY);
  });
});
