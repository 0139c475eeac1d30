/**
 * Group commit: many callers' commits made durable by one flush.
 *
 * Databases have done this for decades (a transaction log forced to disk
 * once for every transaction that committed meanwhile). The queue uses it
 * for the last, shared step of a commit: the renames into queue/ and the
 * directory fsyncs that make them durable.
 */

/** Counters for the benchmark and `smtpctl show stats`-style reports. */
export interface GroupCommitStats {
  /** Flushes run. */
  batches: number;
  /** Items flushed, all batches together (items / batches = mean batch size). */
  items: number;
  /** The largest batch so far. */
  largest: number;
}

/**
 * Flushes a batch of items. It returns one outcome per item, in order:
 * `undefined` when the item is durable, an Error when it is not (only
 * that item's caller is told so).
 */
export type FlushBatch<T> = (items: readonly T[]) => Promise<(Error | undefined)[]>;

interface Waiting<T> {
  item: T;
  resolve: () => void;
  reject: (err: Error) => void;
}

// #region group-commit
/**
 * An item submitted while no flush is running starts one at the end of
 * this turn of the event loop (setImmediate, not a timer), so that every
 * item submitted in the same turn goes with it: one read from a socket
 * often brings the commits of several sessions. Items submitted while a
 * flush is running wait, all together, for the next one. So at low load a
 * commit waits for nobody (a batch of one, no added latency), and under
 * load batches grow by themselves: the slower the disk, the more commits
 * each flush carries.
 *
 * The promise `submit` returns settles only after the flush that carried
 * its item has finished: no caller hears "durable" before the fsyncs that
 * make it so have returned.
 */
export class GroupCommit<T> {
  private waiting: Waiting<T>[] = [];
  private flushing = false;
  readonly stats: GroupCommitStats = { batches: 0, items: 0, largest: 0 };

  constructor(private readonly flush: FlushBatch<T>) {}

  submit(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.run());
      }
    });
  }

  private async run(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting;
      this.waiting = []; // from now on, newcomers join the next batch
      this.stats.batches += 1;
      this.stats.items += batch.length;
      this.stats.largest = Math.max(this.stats.largest, batch.length);
      let outcomes: (Error | undefined)[];
      try {
        outcomes = await this.flush(batch.map((w) => w.item));
      } catch (err) {
        outcomes = batch.map(() => asError(err));
      }
      batch.forEach((w, i) => {
        const failure = outcomes[i];
        if (failure) w.reject(failure);
        else w.resolve();
      });
    }
    this.flushing = false;
  }
}
// #endregion group-commit

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
