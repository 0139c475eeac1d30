import { describe, expect, it } from 'vitest';
import { RamQueue } from '../../src/scheduler/ramqueue.ts';
import type { Decision, SchedulerEntry, SchedulerOptions } from '../../src/scheduler/types.ts';

const T0 = 1_800_000_000;
const MIN = 60;
const HOUR = 3600;
const DAY = 24 * HOUR;

/** Dispatchers named `local...` deliver locally; any other relays. */
const options: SchedulerOptions = { kindOf: (d) => (d.startsWith('local') ? 'local' : 'relay') };

/** An entry of message `msg`, envelope number `n` of it, arrived at T0 with a 4-day ttl. */
function entry(msg: number, n: number, more: Partial<SchedulerEntry> = {}): SchedulerEntry {
  return {
    id: msg.toString(16).padStart(8, '0') + n.toString(16).padStart(8, '0'),
    messageId: msg,
    dispatcher: 'relay',
    createdAt: T0,
    expiresAt: T0 + 4 * DAY,
    attempts: 0,
    ...more,
  };
}

const ids = (q: RamQueue, now: number, max?: number) => q.due(now, max).map((d) => d.id);

describe('handing out envelopes', () => {
  it('hands out a new envelope at once, and not again while it is in flight', () => {
    const q = new RamQueue(options);
    const e = entry(1, 1);
    expect(q.add(e, T0)).toBe(T0);
    expect(q.nextWakeup()).toBe(T0);
    expect(q.due(T0)).toEqual([{ id: e.id, messageId: 1, dispatcher: 'relay', kind: 'relay', attempts: 0 }]);
    expect(q.inflight).toBe(1);
    expect(q.due(T0 + DAY)).toEqual([]);
    expect(q.nextWakeup()).toBeUndefined();
    expect(q.done(e.id)).toEqual({ do: 'remove', id: e.id });
    expect(q.size).toBe(0);
    expect(q.inflight).toBe(0);
  });

  it('hands out the oldest due first, across dispatchers, and nothing that is not due', () => {
    const q = new RamQueue(options);
    q.add(entry(3, 1, { attempts: 1, lastTryAt: T0 + 1 }), T0 + 1); // relay retry 1: T0+400
    q.add(entry(2, 1, { dispatcher: 'local', attempts: 1, lastTryAt: T0 + 1 }), T0 + 1); // local retry 1: T0+10
    q.add(entry(1, 1, { dispatcher: 'local', createdAt: T0 + 5 }), T0 + 5); // new: at once
    expect(ids(q, T0 + 5)).toEqual([entry(1, 1).id]);
    expect(q.nextWakeup()).toBe(T0 + 10);
    expect(ids(q, T0 + 1000)).toEqual([entry(2, 1).id, entry(3, 1).id]);
  });

  it('hands out the envelopes of one message for one dispatcher together', () => {
    const q = new RamQueue(options);
    q.add(entry(5, 1, { createdAt: T0 - 10 }), T0);
    q.add(entry(7, 2), T0);
    q.add(entry(7, 1), T0);
    q.add(entry(7, 3), T0);
    q.add(entry(7, 4, { dispatcher: 'local' }), T0);
    q.add(entry(6, 1, { createdAt: T0 - 5 }), T0);
    const out = q.due(T0);
    expect(out.map((d) => d.id)).toEqual([
      entry(5, 1).id, entry(6, 1).id, entry(7, 1).id, entry(7, 2).id, entry(7, 3).id, entry(7, 4).id,
    ]);
  });

  it('keeps a message together even when one of its envelopes became due later', () => {
    const q = new RamQueue(options);
    q.add(entry(9, 1, { attempts: 1, lastTryAt: T0 + 1 }), T0 + 1); // due T0+400
    q.add(entry(9, 2, { attempts: 2, lastTryAt: T0 + 500 }), T0 + 500); // due T0+1600
    q.add(entry(8, 1, { createdAt: T0 + 900 }), T0 + 900); // due T0+900
    expect(ids(q, T0 + 2000)).toEqual([entry(9, 1).id, entry(9, 2).id, entry(8, 1).id]);
  });

  it('honours the max of one call, and gives the rest of the message next', () => {
    const q = new RamQueue(options);
    for (let n = 1; n <= 3; n++) q.add(entry(4, n), T0);
    q.add(entry(3, 1, { createdAt: T0 + 1 }), T0 + 1);
    expect(ids(q, T0 + 1, 2)).toEqual([entry(4, 1).id, entry(4, 2).id]);
    expect(ids(q, T0 + 1, 2)).toEqual([entry(4, 3).id, entry(3, 1).id]);
  });
});

describe('in-flight bookkeeping', () => {
  it('refuses an outcome for an envelope that is not in flight, or unknown', () => {
    const q = new RamQueue(options);
    const e = entry(1, 1);
    q.add(e, T0);
    expect(() => q.done(e.id)).toThrow(/not in flight/);
    expect(() => q.tempfail(e.id, T0)).toThrow(/not in flight/);
    expect(() => q.permfail(entry(2, 1).id)).toThrow(/not scheduled/);
    q.due(T0);
    q.done(e.id);
    expect(() => q.done(e.id)).toThrow(/not scheduled/);
  });

  it('stops handing out at `scheduler limit max-inflight`, and resumes as outcomes come back', () => {
    const q = new RamQueue({ ...options, maxInflight: 2 });
    for (let n = 1; n <= 5; n++) q.add(entry(n, 1), T0);
    expect(q.due(T0)).toHaveLength(2);
    expect(q.due(T0)).toHaveLength(0);
    // Nothing can go before an outcome comes back: no wake-up, no busy loop.
    expect(q.nextWakeup()).toBeUndefined();
    q.done(entry(1, 1).id);
    expect(ids(q, T0)).toEqual([entry(3, 1).id]);
    expect(q.inflight).toBe(2);
  });

  it('limits each dispatcher on its own', () => {
    const q = new RamQueue({ ...options, maxInflightPerDispatcher: 1 });
    q.add(entry(1, 1), T0);
    q.add(entry(2, 1), T0);
    q.add(entry(3, 1, { dispatcher: 'local' }), T0 + 1);
    expect(ids(q, T0 + 1)).toEqual([entry(1, 1).id, entry(3, 1).id]);
    expect(q.nextWakeup()).toBeUndefined();
    q.tempfail(entry(1, 1).id, T0 + 2);
    expect(ids(q, T0 + 2)).toEqual([entry(2, 1).id]);
  });

  it('lists every envelope with its state, next try and attempts', () => {
    const q = new RamQueue(options);
    q.add(entry(1, 1), T0);
    q.add(entry(2, 1, { attempts: 2, lastTryAt: T0 + 500, warnings: 0, bounce: true }), T0 + 500);
    q.due(T0, 1);
    expect(q.list()).toEqual([
      {
        id: entry(1, 1).id, messageId: 1, dispatcher: 'relay', state: 'inflight', attempts: 0,
        createdAt: T0, expiresAt: T0 + 4 * DAY, warnings: 0, bounce: false, removed: false,
      },
      {
        id: entry(2, 1).id, messageId: 2, dispatcher: 'relay', state: 'pending', nextTryAt: T0 + 1600, attempts: 2,
        lastTryAt: T0 + 500, createdAt: T0, expiresAt: T0 + 4 * DAY, warnings: 0, bounce: true, removed: false,
      },
    ]);
  });

  it('removes a pending envelope at once, an in-flight one when its attempt ends, never with a bounce', () => {
    const q = new RamQueue(options);
    q.add(entry(1, 1), T0);
    q.add(entry(1, 2), T0);
    q.add(entry(2, 1, { createdAt: T0 + 1 }), T0 + 1);
    q.due(T0, 2);
    expect(q.remove(entry(2, 1).id)).toBe(true);
    expect(q.remove(entry(1, 1).id)).toBe(true);
    expect(q.remove(entry(9, 9).id)).toBe(false);
    expect(q.list().map((l) => [l.id, l.removed])).toEqual([[entry(1, 1).id, true], [entry(1, 2).id, false]]);
    expect(q.permfail(entry(1, 1).id)).toEqual({ do: 'remove', id: entry(1, 1).id });
    expect(q.removeMessage(1)).toBe(1);
    expect(q.tempfail(entry(1, 2).id, T0 + 5)).toEqual({ do: 'remove', id: entry(1, 2).id });
    expect(q.size).toBe(0);
    expect(q.nextWakeup()).toBeUndefined();
  });

  it('makes a pending envelope due now on `smtpctl schedule`', () => {
    const q = new RamQueue(options);
    q.add(entry(1, 1, { attempts: 3, lastTryAt: T0 + 3000 }), T0 + 3000);
    expect(ids(q, T0 + 3001)).toEqual([]);
    expect(q.scheduleNow(entry(1, 1).id, T0 + 3001)).toBe(true);
    expect(ids(q, T0 + 3001)).toEqual([entry(1, 1).id]);
    expect(q.scheduleNow(entry(1, 1).id, T0 + 3001)).toBe(false);
  });

  it('checks what it is given', () => {
    const q = new RamQueue(options);
    expect(() => q.add({ ...entry(1, 1), id: 'XYZ' }, T0)).toThrow(/"XYZ": the id is not 16 lower-case hex digits/);
    expect(() => q.add({ ...entry(1, 1), messageId: 2 }, T0)).toThrow(/does not belong to message 2/);
    expect(() => q.add({ ...entry(1, 1), attempts: -1 }, T0)).toThrow(/attempts -1/);
    q.add(entry(1, 1), T0);
    expect(() => q.add(entry(1, 1), T0)).toThrow(/already scheduled/);
  });
});

describe('temporary failures', () => {
  // Each row: the dispatcher, then the times (after arrival) at which
  // attempts fail, and the next try each failure must be given.
  it.each<[string, string, [number, number][]]>([
    ['relay', 'relay', [[1, 400], [401, 1600], [1601, 3600], [3601, 6400], [6401, 10000]]],
    ['local', 'local', [[1, 10], [11, 40], [41, 90], [91, 160]]],
    ['a slow relay attempt', 'relay', [[1, 400], [2000, 3600], [3601, 6400]]],
    ['a relay past the cap', 'relay', [[9 * HOUR + 5, 11 * HOUR], [11 * HOUR + 5, 13 * HOUR]]],
  ])('%s', (_name, dispatcher, steps) => {
    const q = new RamQueue(options);
    // No delay warnings: nextWakeup() is then the next try alone.
    const e = entry(1, 1, { dispatcher, notifyDelay: false });
    q.add(e, T0);
    let attempts = 0;
    for (const [failAt, next] of steps) {
      expect(ids(q, T0 + failAt)).toEqual([e.id]);
      attempts++;
      expect(q.tempfail(e.id, T0 + failAt)).toEqual({
        do: 'update', id: e.id, attempts, lastTryAt: T0 + failAt, nextTryAt: T0 + next,
      });
      expect(q.nextWakeup()).toBe(T0 + next);
      expect(ids(q, T0 + next - 1)).toEqual([]);
    }
  });

  it('makes the last try at the expiry time, and expires the envelope when it fails', () => {
    const q = new RamQueue(options);
    const e = entry(1, 1, { expiresAt: T0 + HOUR + 30 * MIN });
    q.add(e, T0);
    q.due(T0);
    q.tempfail(e.id, T0 + 1);
    for (const t of [400, 1600, 3600]) {
      q.due(T0 + t);
      expect(q.tempfail(e.id, T0 + t)).toMatchObject({ do: 'update' });
    }
    // Retry 4 would be at 1 h 46 min 40 s, past the expiry at 1 h 30 min.
    expect(q.list()[0]!.nextTryAt).toBe(T0 + HOUR + 30 * MIN);
    expect(ids(q, T0 + HOUR + 30 * MIN)).toEqual([e.id]);
    expect(q.tempfail(e.id, T0 + HOUR + 30 * MIN + 3)).toEqual({ do: 'bounce', id: e.id, reason: 'expired', attempts: 5 });
    expect(q.size).toBe(0);
  });

  it('delivers an envelope whose last try succeeds, even at its expiry', () => {
    const q = new RamQueue(options);
    const e = entry(1, 1, { expiresAt: T0 + 100, attempts: 1, lastTryAt: T0 + 50 });
    q.add(e, T0 + 50);
    expect(ids(q, T0 + 100)).toEqual([e.id]);
    expect(q.done(e.id)).toEqual({ do: 'remove', id: e.id });
  });

  it('bounces a permanent failure; a failed bounce is discarded, never bounced', () => {
    const q = new RamQueue(options);
    q.add(entry(1, 1), T0);
    q.add(entry(2, 1, { bounce: true }), T0);
    q.add(entry(3, 1, { bounce: true, expiresAt: T0 + 10 }), T0);
    q.due(T0);
    const decisions: Decision[] = [
      q.permfail(entry(1, 1).id),
      q.permfail(entry(2, 1).id),
      q.tempfail(entry(3, 1).id, T0 + 10),
    ];
    expect(decisions).toEqual([
      { do: 'bounce', id: entry(1, 1).id, reason: 'permfail', attempts: 1 },
      { do: 'discard', id: entry(2, 1).id, reason: 'permfail', attempts: 1 },
      { do: 'discard', id: entry(3, 1).id, reason: 'expired', attempts: 1 },
    ]);
  });
});

describe('restarting', () => {
  /** What the queue would have on disk after the driver carried out `d`. */
  function write(disk: SchedulerEntry, d: Decision): SchedulerEntry {
    if (d.do === 'update') return { ...disk, attempts: d.attempts, lastTryAt: d.lastTryAt };
    if (d.do === 'warn') return { ...disk, warnings: d.warnings };
    throw new Error(`unexpected ${d.do}`);
  }

  it('plans the same next try after a restart as before it, for every step of the schedule', () => {
    for (const dispatcher of ['relay', 'local']) {
      const q = new RamQueue(options);
      let disk = entry(1, 1, { dispatcher });
      q.add(disk, T0);
      let now = T0;
      for (let i = 0; i < 40; i++) {
        q.due(now);
        const d = q.tempfail(disk.id, now + 7);
        disk = write(disk, d);
        const planned = q.list()[0]!.nextTryAt!;
        // A daemon started from what is on disk, at any time before the planned try, plans the same.
        for (const restartAt of [now + 8, Math.floor((now + 8 + planned) / 2), planned - 1]) {
          const restarted = new RamQueue(options);
          expect(restarted.add(disk, restartAt)).toBe(planned);
          expect(restarted.due(planned - 1)).toEqual([]);
          expect(restarted.due(planned).map((e) => e.id)).toEqual([disk.id]);
        }
        now = planned;
      }
    }
  });

  it('tries at once an envelope whose planned try went by while the daemon was down', () => {
    const q = new RamQueue(options);
    const disk = entry(1, 1, { attempts: 3, lastTryAt: T0 + HOUR + 5 });
    expect(q.add(disk, T0 + 10 * HOUR)).toBe(T0 + HOUR + 46 * MIN + 40);
    expect(ids(q, T0 + 10 * HOUR)).toEqual([disk.id]);
  });

  it('tries again an envelope whose attempt was running when the daemon stopped', () => {
    const q = new RamQueue(options);
    let disk = entry(1, 1);
    q.add(disk, T0);
    q.due(T0);
    disk = write(disk, q.tempfail(disk.id, T0 + 3));
    q.due(T0 + 400); // the second attempt starts, and the daemon stops: nothing is written
    const restarted = new RamQueue(options);
    expect(restarted.add(disk, T0 + 450)).toBe(T0 + 400);
    expect(ids(restarted, T0 + 450)).toEqual([disk.id]);
  });

  it('expires at the first failure after a restart past the expiry', () => {
    const q = new RamQueue(options);
    const disk = entry(1, 1, { attempts: 20, lastTryAt: T0 + 3 * DAY });
    q.add(disk, T0 + 5 * DAY);
    expect(ids(q, T0 + 5 * DAY)).toEqual([disk.id]);
    expect(q.tempfail(disk.id, T0 + 5 * DAY + 1)).toMatchObject({ do: 'bounce', reason: 'expired' });
  });

  it('does not send again the warnings recorded on disk', () => {
    const q = new RamQueue({ ...options, warnIntervals: [HOUR, 4 * HOUR] });
    q.add(entry(1, 1, { attempts: 3, lastTryAt: T0 + HOUR + 1, warnings: 1 }), T0 + 2 * HOUR);
    expect(q.warningsDue(T0 + 2 * HOUR)).toEqual([]);
    expect(q.nextWakeup()).toBe(T0 + HOUR + 46 * MIN + 40);
    expect(q.warningsDue(T0 + 4 * HOUR)).toEqual([
      { do: 'warn', id: entry(1, 1).id, messageId: 1, warnings: 2, delay: 4 * HOUR },
    ]);
  });
});

describe('delay warnings', () => {
  /** A queue with one envelope that has failed once, at T0 + 1. */
  function failedOnce(more: Partial<SchedulerEntry> = {}, warnIntervals = [HOUR, 4 * HOUR]) {
    const q = new RamQueue({ ...options, warnIntervals });
    const e = entry(1, 1, more);
    q.add(e, T0);
    q.due(T0);
    q.tempfail(e.id, T0 + 1);
    return { q, e };
  }

  it('warns once per interval, as the envelope ages past it', () => {
    const { q, e } = failedOnce({ dispatcher: 'local' });
    const warn = (warnings: number, delay: number) => ({ do: 'warn', id: e.id, messageId: 1, warnings, delay });
    const timeline: [number, unknown[]][] = [
      [HOUR - 1, []],
      [HOUR, [warn(1, HOUR)]],
      [HOUR + 1, []],
      [4 * HOUR - 1, []],
      [4 * HOUR, [warn(2, 4 * HOUR)]],
      [3 * DAY, []],
    ];
    for (const [t, expected] of timeline) expect(q.warningsDue(T0 + t), `at ${t}`).toEqual(expected);
  });

  it('wakes the driver up for a warning due before the next try', () => {
    const { q } = failedOnce({}, [5 * MIN]);
    expect(q.nextWakeup()).toBe(T0 + 5 * MIN);
  });

  it('sends one warning, not two, for intervals that went by unnoticed', () => {
    const { q, e } = failedOnce();
    expect(q.warningsDue(T0 + 5 * HOUR)).toEqual([{ do: 'warn', id: e.id, messageId: 1, warnings: 2, delay: 4 * HOUR }]);
    expect(q.warningsDue(T0 + 6 * HOUR)).toEqual([]);
  });

  it.each<[string, Partial<SchedulerEntry>]>([
    ['a bounce (null sender)', { bounce: true }],
    ['NOTIFY without DELAY', { notifyDelay: false }],
  ])('never warns about %s', (_name, more) => {
    const { q } = failedOnce(more);
    expect(q.warningsDue(T0 + 10 * HOUR)).toEqual([]);
    expect(q.nextWakeup()).toBe(T0 + 400);
  });

  it('does not warn before the first attempt, nor while an attempt runs, nor once expired', () => {
    const q = new RamQueue({ ...options, warnIntervals: [HOUR] });
    const e = entry(1, 1, { expiresAt: T0 + 2 * HOUR });
    q.add(e, T0);
    expect(q.warningsDue(T0 + HOUR + 1)).toEqual([]); // never tried: a backlog, not a delay
    q.due(T0 + HOUR + 1);
    expect(q.warningsDue(T0 + HOUR + 2)).toEqual([]); // in flight
    q.tempfail(e.id, T0 + HOUR + 3);
    expect(q.warningsDue(T0 + 2 * HOUR)).toEqual([]); // expired: the bounce says it all
    const q2 = new RamQueue({ ...options, warnIntervals: [HOUR] });
    q2.add(e, T0);
    q2.due(T0 + HOUR + 1);
    q2.tempfail(e.id, T0 + HOUR + 3);
    expect(q2.warningsDue(T0 + HOUR + 4)).toHaveLength(1);
  });

  it('lists the warnings of a message together', () => {
    const q = new RamQueue({ ...options, warnIntervals: [HOUR] });
    for (const [m, n] of [[2, 1], [1, 2], [2, 2], [1, 1]] as const) {
      const e = entry(m, n);
      q.add({ ...e, attempts: 1, lastTryAt: T0 + 1 }, T0 + 1);
    }
    expect(q.warningsDue(T0 + HOUR).map((w) => w.id)).toEqual([entry(1, 1).id, entry(1, 2).id, entry(2, 1).id, entry(2, 2).id]);
  });

  it('warns at 4 hours by default', () => {
    const q = new RamQueue(options);
    q.add(entry(1, 1, { attempts: 1, lastTryAt: T0 + 1 }), T0 + 1);
    expect(q.warningsDue(T0 + 4 * HOUR - 1)).toEqual([]);
    expect(q.warningsDue(T0 + 4 * HOUR)).toHaveLength(1);
  });
});
