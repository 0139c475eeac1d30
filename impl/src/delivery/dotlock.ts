/**
 * Dot-locking an mbox: `FILE.lock`, created with O_EXCL, means "someone
 * is writing FILE". It is the one mbox lock that every mail reader on a
 * Unix system honours (mutt, Dovecot, procmail, mail.local, liblockfile's
 * dotlockfile), and the only one Node can take: it has neither fcntl()
 * nor flock(). A reader that locks only with fcntl() will not see it;
 * Debian's /var/mail readers all dot-lock as well.
 *
 * A writer that crashed leaves its lock behind. A lock older than
 * `staleAfterMs` (5 minutes by default, the age liblockfile's
 * dotlockfile and procmail's default also use to declare a lock stale,
 * and far more than an append takes) is removed. A lock that stays fresh
 * is waited for, a bounded number of times; then the delivery is a
 * temporary failure, and the queue tries again later.
 */
import { constants } from 'node:fs';
import { open, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface DotlockOptions {
  /** How old a lock may be before it is taken as left over by a crash. Default 300 000 (5 minutes). */
  staleAfterMs?: number;
  /** How many times to try before giving up. Default 40. */
  retries?: number;
  /** The wait between tries. Default 250: 40 tries are 10 seconds. */
  retryDelayMs?: number;
}

/** A held lock; release() removes it if it is still ours. */
export interface Dotlock {
  path: string;
  release(): Promise<void>;
}

/** Why no lock was taken: `busy` (someone holds it) or `error` (the lock file cannot be made). */
export class DotlockError extends Error {
  constructor(message: string, readonly kind: 'busy' | 'error') {
    super(message);
    this.name = 'DotlockError';
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// #region acquire-dotlock
/** Takes `file.lock`; throws a DotlockError when it cannot. */
export async function acquireDotlock(file: string, options: DotlockOptions = {}): Promise<Dotlock> {
  const path = `${file}.lock`;
  const staleAfterMs = options.staleAfterMs ?? 300_000;
  const retries = options.retries ?? 40;
  const retryDelayMs = options.retryDelayMs ?? 250;

  let heldFor = 0;
  for (let attempt = 1; attempt <= retries; attempt++) {
    try {
      const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      // The pid in the lock tells an administrator who holds it.
      await handle.writeFile(`${process.pid}\n`).finally(() => handle.close());
      const { ino } = await stat(path);
      return {
        path,
        async release() {
          // Remove only our own lock: if it was taken from us as stale,
          // the file there now is someone else's.
          const now = await stat(path).catch(() => undefined);
          if (now?.ino === ino) await unlink(path).catch(() => {});
        },
      };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EACCES') {
        // Debian's /var/mail is root:mail 2775; the agent runs as the user, without the mail group.
        throw new DotlockError(`cannot create lock file ${path}: ${(e as Error).message} ` +
          `(the delivery runs as the user: make ${dirname(path)} writable by all, with the sticky bit, e.g. chmod 1777 ${dirname(path)})`, 'error');
      }
      if (code !== 'EEXIST') {
        throw new DotlockError(`cannot create lock file ${path}: ${(e as Error).message}`, 'error');
      }
    }
    const held = await stat(path).catch(() => undefined);
    if (!held) continue; // released meanwhile: try again at once
    heldFor = Date.now() - held.mtimeMs;
    if (heldFor > staleAfterMs) {
      // Look again just before removing it, so that a lock someone took
      // meanwhile (another inode) is left alone.
      const again = await stat(path).catch(() => undefined);
      if (again && again.ino === held.ino && again.mtimeMs === held.mtimeMs) await unlink(path).catch(() => {});
      continue;
    }
    if (attempt < retries) await sleep(retryDelayMs);
  }
  throw new DotlockError(`mailbox is locked (${path} held for ${Math.round(heldFor / 1000)} s, ${retries} tries)`, 'busy');
}
// #endregion acquire-dotlock
