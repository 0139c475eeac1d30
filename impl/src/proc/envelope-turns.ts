/**
 * One operation at a time on an envelope, in the queue process. The
 * scheduler asks for a delivery, a bounce or a delay warning of an
 * envelope, each of which loads it, works for a while (a delivery for up
 * to minutes, a warning while its report is built and queued) and then
 * writes or deletes it. The scheduler does not ask for two at once on
 * purpose, but a retry can fall due while a warning of the same envelope
 * is still being written, and two such writes would lose one of them; or
 * a delivery's delete could land before the warning's rename, which
 * would bring the envelope back after the next restart, to be delivered
 * again.
 */
export class EnvelopeTurns {
  /** For each envelope with an operation under way or waiting: the end of the last one. */
  private readonly last = new Map<string, Promise<void>>();

  /**
   * Runs `work` once every operation started before on any of these
   * envelopes has ended. Every id is claimed at once, before any waiting,
   * so an operation waits only for ones that came before it: two that
   * share envelopes cannot wait for each other.
   */
  async run<T>(ids: readonly string[], work: () => Promise<T>): Promise<T> {
    const keys = [...new Set(ids)];
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    const before = keys.map((k) => this.last.get(k)).filter((p) => p !== undefined);
    for (const k of keys) this.last.set(k, mine);
    if (before.length > 0) await Promise.all(before);
    try {
      return await work();
    } finally {
      done();
      for (const k of keys) if (this.last.get(k) === mine) this.last.delete(k);
    }
  }

  /** Envelopes with an operation under way or waiting: for the tests. */
  get size(): number {
    return this.last.size;
  }
}
