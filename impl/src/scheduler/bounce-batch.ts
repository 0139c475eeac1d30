/**
 * Bounces held for a moment, so that the recipients of one message that
 * fail together get one report naming them all, not one report each.
 *
 * The ramqueue decides about each envelope as its attempt ends, and it
 * hands out a message's due envelopes together (see RamQueue.due), so
 * three recipients at one failing destination fail within milliseconds
 * of each other. Asked about them one by one, the queue wrote three
 * bounces for one message; asked about them together, it writes one
 * (QueueDelivery.bounce groups by message). OpenSMTPD 6.8's bounce.c does
 * the same with a hold of one second per message.
 *
 * The hold runs from the first failure of a batch and is not extended by
 * later ones, so no bounce waits longer than `holdMs`. Recipients that
 * fail further apart than that get a report each. If the process stops
 * during the hold, nothing is lost: the envelopes are still in the spool,
 * and the next start-up fails and bounces them again.
 */
export type BounceReason = 'permfail' | 'expired';

/** OpenSMTPD's hold: a message's report goes one second after its first failure. */
export const BOUNCE_HOLD_MS = 1000;

/** A batch this large goes at once: one request to the queue stays well within its limit of ids. */
export const BOUNCE_BATCH_MAX = 1000;

interface Held {
  ids: string[];
  timer: NodeJS.Timeout;
}

export class BounceBatch {
  /** By message id (the first 8 hex digits of an envelope id) and reason: one report each. */
  private readonly held = new Map<string, Held>();

  constructor(
    /** Asks the queue for one report about `ids`, all of one message. */
    private readonly send: (ids: string[], reason: BounceReason) => void,
    private readonly holdMs = BOUNCE_HOLD_MS,
  ) {}

  /** Holds envelope `id` (16 hex digits) for its message's next report. */
  add(id: string, reason: BounceReason): void {
    const key = `${id.slice(0, 8)} ${reason}`;
    const batch = this.held.get(key);
    if (batch) {
      batch.ids.push(id);
      if (batch.ids.length >= BOUNCE_BATCH_MAX) this.flush(key, batch, reason);
      return;
    }
    const held: Held = { ids: [id], timer: setTimeout(() => this.flush(key, held, reason), this.holdMs) };
    held.timer.unref();
    this.held.set(key, held);
  }

  private flush(key: string, batch: Held, reason: BounceReason): void {
    clearTimeout(batch.timer);
    this.held.delete(key);
    this.send(batch.ids, reason);
  }

  /** The process is stopping: drop what is held (the spool still has it). */
  stop(): void {
    for (const { timer } of this.held.values()) clearTimeout(timer);
    this.held.clear();
  }
}
