/**
 * When the queue cannot store a message, the client hears a 421 and
 * comes back later, and smtp logs the error of that session. The
 * administrator needs more than a session's `ENOSPC ... write`: which
 * spool, how many messages were refused, and what to do. The queue says
 * so itself, in one line a minute at most for each kind of trouble, so
 * that a full disk under a busy server does not fill the log as well.
 */
import type { Logger } from '../log/index.ts';

/** What each error of the file system means for the spool, and what to do about it. */
const ADVICE: Record<string, string> = {
  ENOSPC: "its file system is full (no space or no inodes left): make room there",
  EDQUOT: "the queue user's disk quota is used up: raise it, or make room",
  EROFS: 'its file system is read-only (after disk errors?): repair it and mount it read-write',
  EACCES: 'the queue user may not write there: check the owner and modes of the spool',
  EPERM: 'the queue user may not write there: check the owner and modes of the spool',
  EMFILE: 'the queue process has no descriptor left: raise the descriptor limit (ulimit -n)',
  ENFILE: 'the system has no open file left: raise fs.file-max, or find who holds them',
  EIO: 'the disk reports input/output errors: check it',
};

/** At most one line per kind of trouble this often. */
export const TROUBLE_LOG_MS = 60_000;

export class StorageTrouble {
  /** Per error code: when it was last logged, and how many messages were refused since. */
  private readonly seen = new Map<string, { loggedAt: number; refused: number }>();

  constructor(
    private readonly log: Logger,
    private readonly spool: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** A message could not be created or committed because of `err`; errors that are not the file system's are not ours to explain. */
  report(err: unknown): void {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    const advice = code === undefined ? undefined : ADVICE[code];
    if (code === undefined || advice === undefined) return;
    const state = this.seen.get(code) ?? { loggedAt: -Infinity, refused: 0 };
    this.seen.set(code, state);
    state.refused += 1;
    const now = this.now();
    if (now - state.loggedAt < TROUBLE_LOG_MS) return;
    const since = Number.isFinite(state.loggedAt) ? ` (${state.refused} since the last such line)` : '';
    this.log.warn(
      `warn: queue: cannot store messages in the spool ${this.spool}: ${(err as Error).message}; ${advice}. ` +
        `Until then messages are refused with 421, and their clients try again later${since}`,
    );
    state.loggedAt = now;
    state.refused = 0;
  }
}
