/**
 * How many deliveries the dispatcher runs at once: in all, and for one
 * user. The scheduler hands out up to `max-inflight` envelopes (5,000 by
 * default) without knowing whose they are, so a mailing list's burst to
 * one address would otherwise start as many mda processes, or LMTP
 * connections, as it has messages, all as that user.
 */

// #region delivery-slots
/**
 * A delivery takes a slot before it starts and gives it back when it
 * ends. OpenSMTPD's mda.c keeps the same two limits, 50 sessions in all
 * and 7 for one user (MDA_MAXSESS, MDA_MAXSESSUSER), and holds the
 * envelopes that find no slot in a queue of its own: so does this, first
 * come, first served, a waiter for a user at its limit letting the ones
 * behind it for other users go first.
 *
 * A wait has a limit (`waitMs`): the queue, which sent the envelope,
 * gives the dispatcher only so long before it counts the attempt as lost
 * (see queue-delivery.ts). A delivery still waiting then fails for now,
 * is counted as an attempt, and is tried again later, as after any
 * temporary failure.
 */
export class DeliverySlots {
  private readonly running = new Map<string, number>();
  private total = 0;
  private readonly waiting: Waiter[] = [];
  private closedWith: string | undefined;

  constructor(readonly limits: SlotLimits = DEFAULT_SLOT_LIMITS) {}

  /** Resolves with the function that gives the slot back; rejects with SlotUnavailable. */
  acquire(user: string): Promise<() => void> {
    if (this.closedWith !== undefined) return Promise.reject(new SlotUnavailable(this.closedWith));
    // Whoever waits now does not fit (wake() starts a waiter as soon as it
    // does), so one that fits overtakes nobody it should not.
    if (this.fits(user)) return Promise.resolve(this.take(user));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        user,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.drop(waiter);
          const mine = this.runningFor(user);
          reject(new SlotUnavailable(`no delivery slot for ${user} within ${Math.round(this.limits.waitMs / 1000)} s: ` +
            `${mine} deliver${mine === 1 ? 'y' : 'ies'} to ${user} and ${this.total} in all still running`));
        }, this.limits.waitMs),
      };
      this.waiting.push(waiter);
    });
  }

  /** Deliveries under way for `user`. */
  runningFor(user: string): number {
    return this.running.get(user) ?? 0;
  }

  /** Fails every waiter with `reason`, and every later acquire: the daemon is stopping. */
  close(reason: string): void {
    this.closedWith = reason;
    for (const waiter of this.waiting.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new SlotUnavailable(reason));
    }
  }

  private fits(user: string): boolean {
    return this.total < this.limits.total && this.runningFor(user) < this.limits.perUser;
  }

  private take(user: string): () => void {
    this.total += 1;
    this.running.set(user, this.runningFor(user) + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.total -= 1;
      const left = this.runningFor(user) - 1;
      if (left === 0) this.running.delete(user);
      else this.running.set(user, left);
      this.wake();
    };
  }

  /** Starts the waiters that fit now, oldest first. */
  private wake(): void {
    for (let i = 0; i < this.waiting.length && this.total < this.limits.total;) {
      const waiter = this.waiting[i]!;
      if (!this.fits(waiter.user)) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      clearTimeout(waiter.timer);
      waiter.resolve(this.take(waiter.user));
    }
  }

  private drop(waiter: Waiter): void {
    const at = this.waiting.indexOf(waiter);
    if (at >= 0) this.waiting.splice(at, 1);
  }
}
// #endregion delivery-slots

export interface SlotLimits {
  /** Deliveries under way at once, for all users together. */
  total: number;
  /** Deliveries under way at once for one user. */
  perUser: number;
  /** How long a delivery may wait for a slot before it fails for now. */
  waitMs: number;
}

export const DEFAULT_SLOT_LIMITS: SlotLimits = { total: 50, perUser: 7, waitMs: 10 * 60_000 };

/** No slot: the delivery fails for now, and the scheduler tries it again later. */
export class SlotUnavailable extends Error {}

interface Waiter {
  user: string;
  resolve: (release: () => void) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}
