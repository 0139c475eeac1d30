/**
 * Work the scheduler asks of the queue that must not be dropped when it
 * fails. A bounce is the case: the ramqueue forgets an envelope when it
 * decides to bounce it, so if the queue cannot write the bounce (a full
 * disk), nothing would try again before the next start-up, and the
 * envelope would sit in the spool, never retried, never expiring. Here
 * the work is tried again after a minute, then two, four... up to an
 * hour, until it succeeds or the process stops.
 */
export interface RetryDelays {
  firstMs: number;
  maxMs: number;
}

export const DEFAULT_RETRY_DELAYS: RetryDelays = { firstMs: 60_000, maxMs: 3_600_000 };

export class RetryLater {
  /** Each wait under way, and how to end it early. */
  private readonly waits = new Map<NodeJS.Timeout, () => void>();
  private stopped = false;

  constructor(
    /** Told of each failure, with when the next try is. */
    private readonly log: (line: string) => void,
    private readonly delays: RetryDelays = DEFAULT_RETRY_DELAYS,
  ) {}

  // #region retry-later
  /** Runs `work` now, and again after each failure; `what` names it in the log. */
  async run(what: string, work: () => Promise<unknown>): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await work();
        return;
      } catch (err) {
        const delay = Math.min(this.delays.maxMs, this.delays.firstMs * 2 ** attempt);
        this.log(`warn: scheduler: ${what}: ${err instanceof Error ? err.message : String(err)}; trying again in ${formatDelay(delay)}`);
        await this.sleep(delay);
      }
    }
  }
  // #endregion retry-later

  /** No more tries: the process is stopping (the next start-up finds the envelopes in the spool). */
  stop(): void {
    this.stopped = true;
    for (const [timer, wake] of this.waits) {
      clearTimeout(timer);
      wake();
    }
    this.waits.clear();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waits.delete(timer);
        resolve();
      }, ms);
      timer.unref();
      this.waits.set(timer, resolve);
    });
  }
}

function formatDelay(ms: number): string {
  return ms >= 60_000 ? `${Math.round(ms / 60_000)} min` : `${ms} ms`;
}
