// #region retry-table
/**
 * When to try an envelope again after a temporary failure.
 *
 * The shape comes from OpenSMTPD's ramqueue scheduler: the n-th retry of
 * an envelope happens base * n² seconds after the message arrived, with
 * a base of 10 seconds for local deliveries (mda) and 400 seconds for
 * relaying (mta). Counting from the arrival, not from the last failure,
 * makes the schedule a function of three numbers that are on disk
 * (creation time, attempts, last try), so a restarted daemon computes the
 * same times as the one that stopped. It also keeps a slow attempt (a
 * remote server that takes minutes to time out) from pushing every later
 * try back.
 *
 * OpenSMTPD lets the gap grow without bound: 400 * (2n - 1) seconds
 * between tries n-1 and n, about six hours by the fourth day. We stop the
 * gap from growing once it reaches a cap, so that a server that comes
 * back after a long outage gets its mail within the cap, whatever the
 * queue ttl:
 *
 *     retry  local (10 s * n², gaps capped at 30 min)   relay (400 s * n², gaps capped at 2 h)
 *     n      after arrival   gap                       after arrival   gap
 *     0      0 (at once)     -                         0 (at once)     -
 *     1      10 s            10 s                      6 min 40 s      6 min 40 s
 *     2      40 s            30 s                      26 min 40 s     20 min
 *     3      1 min 30 s      50 s                      1 h             33 min 20 s
 *     4      2 min 40 s      70 s                      1 h 46 min 40   46 min 40 s
 *     5      4 min 10 s      90 s                      2 h 46 min 40   1 h
 *     6      6 min           1 min 50 s                4 h             1 h 13 min 20
 *     9      13 min 30 s     2 min 50 s                9 h             1 h 53 min 20
 *     10     16 min 40 s     3 min 10 s                11 h            2 h (capped)
 *     30     2 h 30 min      9 min 50 s                51 h            2 h
 *     90     22 h 30 min     29 min 50 s               171 h           2 h
 *     91+    +30 min each    30 min (capped)           +2 h each       2 h
 *
 * Over the default queue ttl of four days that is about 237 tries of a
 * local delivery and 53 of a relayed one (OpenSMTPD: 186 and 30). Local
 * failures (a full disk, a locked mailbox, an MDA that exits with
 * EX_TEMPFAIL) are usually ours and short, so retries start quickly; an
 * administrator who fixes the disk sees the mail flow within half an
 * hour. A remote server is someone else's: we knock less often, but at
 * least every two hours.
 */

/** How an envelope's dispatcher delivers: on this host (mda, maildir, ...) or by relaying over SMTP. */
export type DispatcherKind = 'local' | 'relay';

interface Backoff {
  /** Seconds: retry n is due base * n² seconds after arrival, until the gap reaches the cap. */
  base: number;
  /** Seconds: the longest gap between two tries. */
  cap: number;
}

export const BACKOFF: Readonly<Record<DispatcherKind, Backoff>> = {
  local: { base: 10, cap: 30 * 60 },
  relay: { base: 400, cap: 2 * 60 * 60 },
};
// #endregion retry-table

// #region retry-offset
/**
 * The last retry whose gap is still under the cap: the gap before retry n
 * is base * (2n - 1), so this is the largest n with base * (2n - 1) ≤ cap.
 */
function lastUncapped({ base, cap }: Backoff): number {
  return Math.floor((cap / base + 1) / 2);
}

/** Seconds from the message's arrival to its n-th retry (n = 0 is the first try, at arrival). */
export function retryOffset(kind: DispatcherKind, n: number): number {
  const b = BACKOFF[kind];
  const last = lastUncapped(b);
  if (n <= last) return b.base * n * n;
  return b.base * last * last + (n - last) * b.cap;
}
// #endregion retry-offset

// #region next-try
/**
 * When to try again an envelope that arrived at `createdAt`, has been
 * tried `attempts` times, and was last tried at `after`: the first retry
 * time of the table, at or past retry number `attempts`, that is later
 * than `after`. Retries whose time went by while an attempt was running
 * (or while the daemon was down) are skipped, not run back to back.
 */
export function nextTryAfter(kind: DispatcherKind, createdAt: number, attempts: number, after: number): number {
  const b = BACKOFF[kind];
  const elapsed = after - createdAt;
  let n = attempts;
  if (retryOffset(kind, n) <= elapsed) {
    // Solve the table for `elapsed` rather than walk it: after a long
    // outage, walking would take one step per missed retry.
    const last = lastUncapped(b);
    n = elapsed < retryOffset(kind, last)
      ? Math.floor(Math.sqrt(elapsed / b.base)) + 1
      : last + Math.floor((elapsed - retryOffset(kind, last)) / b.cap) + 1;
    // Floating point may land one step off either way; the table decides.
    while (retryOffset(kind, n) <= elapsed) n++;
    while (n > attempts && retryOffset(kind, n - 1) > elapsed) n--;
  }
  return createdAt + retryOffset(kind, n);
}
// #endregion next-try
