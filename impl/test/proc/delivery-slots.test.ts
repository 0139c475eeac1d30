/**
 * The dispatcher's slots: at most so many deliveries at once, in all and
 * for one user, the others waiting first come, first served, for a
 * limited time.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DeliverySlots, SlotUnavailable } from '../../src/proc/delivery-slots.ts';

afterEach(() => {
  vi.useRealTimers();
});

/** Whether a promise has settled, after the microtasks queued so far have run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => (done = true), () => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('delivery slots', () => {
  it('run at most perUser deliveries for one user, and start the next when one ends', async () => {
    const slots = new DeliverySlots({ total: 50, perUser: 2, waitMs: 60_000 });
    const first = await slots.acquire('bob');
    await slots.acquire('bob');
    const third = slots.acquire('bob');
    expect(await settled(third)).toBe(false);
    expect(slots.runningFor('bob')).toBe(2);
    first();
    first(); // giving a slot back twice frees one slot only
    expect(await settled(third)).toBe(true);
    expect(slots.runningFor('bob')).toBe(2);
    slots.close('done');
  });

  it('let the deliveries of another user pass one waiting for a user at its limit', async () => {
    const slots = new DeliverySlots({ total: 50, perUser: 1, waitMs: 60_000 });
    const bob = await slots.acquire('bob');
    const bobAgain = slots.acquire('bob');
    const alice = slots.acquire('alice');
    expect(await settled(alice)).toBe(true);
    expect(await settled(bobAgain)).toBe(false);
    bob();
    expect(await settled(bobAgain)).toBe(true);
    slots.close('done');
  });

  it('keep to the total for all users together, oldest waiter first', async () => {
    const slots = new DeliverySlots({ total: 2, perUser: 7, waitMs: 60_000 });
    const a = await slots.acquire('a');
    await slots.acquire('b');
    const order: string[] = [];
    const c = slots.acquire('c').then((release) => (order.push('c'), release));
    const d = slots.acquire('d').then((release) => (order.push('d'), release));
    expect(await settled(c)).toBe(false);
    a();
    expect(await settled(c)).toBe(true);
    expect(await settled(d)).toBe(false);
    (await c)();
    await d;
    expect(order).toEqual(['c', 'd']);
    slots.close('done');
  });

  it('fail a wait that lasts longer than waitMs, saying how many deliveries were running', async () => {
    vi.useFakeTimers();
    const slots = new DeliverySlots({ total: 50, perUser: 1, waitMs: 30_000 });
    await slots.acquire('bob');
    const waiting = slots.acquire('bob');
    const failed = expect(waiting).rejects.toThrow(new SlotUnavailable('no delivery slot for bob within 30 s: 1 delivery to bob and 1 in all still running'));
    await vi.advanceTimersByTimeAsync(30_000);
    await failed;
  });

  it('fail every waiter, and every later request, once closed', async () => {
    const slots = new DeliverySlots({ total: 1, perUser: 1, waitMs: 60_000 });
    await slots.acquire('bob');
    const waiting = slots.acquire('alice');
    slots.close('the daemon is stopping');
    await expect(waiting).rejects.toThrow('the daemon is stopping');
    await expect(slots.acquire('carol')).rejects.toBeInstanceOf(SlotUnavailable);
  });
});
