/**
 * Appending to an mbox file: the `mbox` method (/var/mail/USER, what
 * OpenSMTPD hands to mail.local) and `file` deliveries from aliases and
 * ~/.forward (what OpenSMTPD hands to mail.mboxfile).
 *
 * The format, as mail.mboxfile.c writes it:
 *
 *     From alice@example.org Thu Feb  1 12:00:00 2024    <- the separator
 *     Return-Path: <alice@example.org>
 *     ...the message, LF line ends...
 *     >From the start of a line                          <- quoted
 *                                                        <- a blank line
 *
 * Quoting is mboxo: a line that starts with `From ` gets a `>`; a line
 * that already starts with `>From ` is left alone. mboxrd would also
 * turn `>From ` into `>>From `, which is reversible, but only for a
 * reader that unquotes, and the common ones do not: Python's
 * mailbox.mbox, mutt and Dovecot show the stored bytes, so mboxrd would
 * show `>>From` where the sender wrote `>From`. mboxo is what
 * mail.local, mail.mboxfile, Postfix's local(8), procmail and Python
 * write; every reader parses it, and a reader sees `>From` exactly where
 * any other delivery agent would have put it.
 */
import { constants, type Stats } from 'node:fs';
import { lstat, open, stat, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { acquireDotlock, DotlockError, type Dotlock, type DotlockOptions } from './dotlock.ts';
import { duration, fsFailure } from './failure.ts';
import { encodeLines } from './lines.ts';
import type { DeliveryOutcome } from './types.ts';

export interface MboxOptions {
  /** The name on the separator line: the sender, or MAILER-DAEMON for `<>` (`%{mbox.from}`). */
  from: string;
  /** The separator's date; now by default. */
  date?: Date;
  lock?: DotlockOptions;
  /**
   * Who a new mailbox belongs to. Used only when running as root: a
   * system mailbox (/var/mail/USER) is created by root and given to its
   * user, as OpenSMTPD's mda_mbox_init() does.
   */
  owner?: { uid: number; gid: number };
  /**
   * For a system mailbox, where the agent may run as root: refuse a
   * symbolic link or a file with other hard links, which could make root
   * append to a file the user chose (mail.local checks the same).
   */
  strict?: boolean;
  /**
   * Takes the dot lock instead of acquireDotlock(): for the system
   * mailbox in the daemon, the root parent takes it, and creates the
   * mailbox if it is missing (parent/mailbox.ts). What it throws is a
   * temporary failure.
   */
  takeLock?: (path: string) => Promise<Dotlock>;
  /** How long a FIFO may stay full, its reader taking nothing, before the delivery fails for now; FIFO_PATIENCE_MS by default. */
  fifoPatienceMs?: number;
}

/**
 * A minute: a reader that takes nothing for that long is stuck, not
 * slow, and the retry comes sooner than the dispatcher's own limit.
 */
const FIFO_PATIENCE_MS = 60_000;

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** asctime(3) in local time, as ctime() gives it to mail.local: `Thu Feb  1 12:00:00 2024`. */
export function asctime(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[date.getDay()]} ${MONTHS[date.getMonth()]} ${String(date.getDate()).padStart(2, ' ')} `
    + `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())} ${date.getFullYear()}`;
}

/**
 * The separator line. Readers split it on spaces (`From ADDRESS DATE`),
 * so a sender with spaces or control characters in a quoted local part
 * has them replaced by `_`.
 */
export function mboxFromLine(from: string, date: Date): string {
  const name = (from || 'MAILER-DAEMON').replace(/[\s\x00-\x1f\x7f]/g, '_');
  return `From ${name} ${asctime(date)}\n`;
}

/**
 * Writes all of a buffer, however many write() calls that takes. A FIFO
 * is open without blocking (see appendToDevice): when its reader is
 * behind, write() answers EAGAIN, and is tried again after a pause that
 * grows to a tenth of a second, for as long as the reader takes
 * something within `patienceMs`. A regular file never answers EAGAIN.
 */
async function writeAll(handle: FileHandle, data: Buffer, patienceMs = FIFO_PATIENCE_MS): Promise<void> {
  let waited = 0;
  let pause = 1;
  for (let done = 0; done < data.length;) {
    try {
      const { bytesWritten } = await handle.write(data, done, data.length - done);
      done += bytesWritten;
      waited = 0;
      pause = 1;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      if (waited >= patienceMs) throw new Error(`the FIFO's reader has taken nothing for ${duration(patienceMs)}`);
      await sleep(pause);
      waited += pause;
      pause = Math.min(100, pause * 2);
    }
  }
}

// #region append-mbox
/** Appends one message; never throws for a delivery problem. `detail` is the path. */
export async function appendMbox(path: string, content: AsyncIterable<unknown>, options: MboxOptions): Promise<DeliveryOutcome> {
  let before: Stats | undefined;
  try {
    before = await (options.strict ? lstat(path) : stat(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return fsFailure(`mbox ${path}`, e);
  }
  if (before && options.strict && before.isSymbolicLink()) return { result: 'tempfail', reason: `mbox ${path} is a symbolic link; refusing to follow it` };
  if (before && options.strict && before.isFile() && before.nlink > 1) return { result: 'tempfail', reason: `mbox ${path} has ${before.nlink} hard links; refusing to append` };
  if (before?.isDirectory()) return { result: 'permfail', reason: `mbox ${path} is a directory` };
  // /dev/null and other devices, a classic alias target, and FIFOs: no
  // lock beside them, no fsync, no truncation; just write.
  if (before?.isFIFO()) return oneAtATime(path, () => appendToDevice(path, content, options, true));
  if (before && !before.isFile()) return appendToDevice(path, content, options, false);

  let lock: Dotlock;
  try {
    lock = await (options.takeLock ? options.takeLock(path) : acquireDotlock(path, options.lock));
  } catch (e) {
    if (e instanceof DotlockError || options.takeLock) return { result: 'tempfail', reason: `mbox ${path}: ${(e as Error).message}` };
    throw e;
  }
  try {
    return await appendLocked(path, content, options, before === undefined);
  } finally {
    await lock.release();
  }
}
// #endregion append-mbox

// #region append-locked
async function appendLocked(path: string, content: AsyncIterable<unknown>, options: MboxOptions, creating: boolean): Promise<DeliveryOutcome> {
  let handle: FileHandle;
  try {
    const flags = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | (options.strict ? constants.O_NOFOLLOW : 0);
    handle = await open(path, flags, 0o600);
  } catch (e) {
    return fsFailure(`mbox ${path}`, e);
  }
  let size = 0;
  let written = false;
  try {
    const st = await handle.stat();
    if (!st.isFile()) return { result: 'tempfail', reason: `mbox ${path} is not a regular file` };
    // Linked while the lock was taken (or by whoever made the file just now): the same refusal as before it.
    if (options.strict && st.nlink > 1) return { result: 'tempfail', reason: `mbox ${path} has ${st.nlink} hard links; refusing to append` };
    size = st.size;
    if (creating && options.owner && process.getuid?.() === 0) await handle.chown(options.owner.uid, options.owner.gid);

    written = true;
    await writeAll(handle, Buffer.concat([await separatorGap(handle, size), Buffer.from(mboxFromLine(options.from, options.date ?? new Date()), 'utf8')]));
    await writeMessage(handle, content);
    try {
      await handle.sync();
    } catch (e) {
      // Some file systems cannot fsync (mail.mboxfile forgives EINVAL too).
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
    }
    return { result: 'ok', detail: path };
  } catch (e) {
    // Half a message would corrupt the mailbox for every later reader:
    // cut the file back to where it was.
    if (written) await handle.truncate(size).catch(() => {});
    return fsFailure(`mbox ${path}`, e);
  } finally {
    await handle.close().catch(() => {});
  }
}
// #endregion append-locked

/**
 * What must come before our separator so that it starts a message: the
 * previous message must end with a blank line. A file left without one
 * (by another writer, or by hand) gets it now.
 */
async function separatorGap(handle: FileHandle, size: number): Promise<Buffer> {
  if (size === 0) return Buffer.alloc(0);
  const tail = Buffer.alloc(Math.min(2, size));
  await handle.read(tail, 0, tail.length, size - tail.length);
  if (tail.length === 2 && tail[0] === 0x0a && tail[1] === 0x0a) return Buffer.alloc(0);
  if (size === 1 && tail[0] === 0x0a) return Buffer.alloc(0);
  return Buffer.from(tail[tail.length - 1] === 0x0a ? '\n' : '\n\n');
}

/** The message, LF line ends, `From ` quoted, ended by a line end and a blank line; written in blocks of about 64 KiB. */
async function writeMessage(handle: FileHandle, content: AsyncIterable<unknown>, patienceMs?: number): Promise<void> {
  let pending: Buffer[] = [];
  let pendingSize = 0;
  for await (const out of encodeLines(content, { eol: '\n', quoteFrom: true, terminateLastLine: true })) {
    pending.push(out);
    pendingSize += out.length;
    if (pendingSize >= 65536) {
      await writeAll(handle, Buffer.concat(pending), patienceMs);
      pending = [];
      pendingSize = 0;
    }
  }
  pending.push(Buffer.from('\n'));
  await writeAll(handle, Buffer.concat(pending), patienceMs);
}

/** The FIFO deliveries of this process, by path: the last one's end. */
const fifoTurns = new Map<string, Promise<unknown>>();

/**
 * Runs the deliveries to one FIFO one after the other. A write of more
 * than PIPE_BUF bytes (4 KiB on Linux) to a pipe is not atomic, so two
 * messages written at once could reach the reader interleaved. A regular
 * mbox is locked against that; a FIFO has no dot-lock beside it, and
 * Node cannot flock(2), so this process takes turns itself.
 */
async function oneAtATime<T>(path: string, delivery: () => Promise<T>): Promise<T> {
  const mine = (fifoTurns.get(path) ?? Promise.resolve()).then(delivery, delivery);
  const end = mine.catch(() => undefined);
  fifoTurns.set(path, end);
  try {
    return await mine;
  } finally {
    if (fifoTurns.get(path) === end) fifoTurns.delete(path);
  }
}

// #region append-device
/**
 * A device or a FIFO, opened O_NONBLOCK. A FIFO's plain open() waits
 * for a reader, possibly for ever, and it would wait in one of the four
 * threads of libuv's pool: a few such deliveries, and every file call of
 * this agent (each fsync of the user's other mail) would queue behind
 * them. Without blocking, a FIFO nobody reads fails at once with ENXIO,
 * for now, and a full one is waited for in writeAll(), never in a
 * thread. /dev/null does not care.
 */
async function appendToDevice(path: string, content: AsyncIterable<unknown>, options: MboxOptions, fifo: boolean): Promise<DeliveryOutcome> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, constants.O_WRONLY | constants.O_APPEND | constants.O_NONBLOCK);
    const from = Buffer.from(mboxFromLine(options.from, options.date ?? new Date()), 'utf8');
    await writeAll(handle, from, options.fifoPatienceMs);
    await writeMessage(handle, content, options.fifoPatienceMs);
    return { result: 'ok', detail: path };
  } catch (e) {
    if (fifo && (e as NodeJS.ErrnoException).code === 'ENXIO') return { result: 'tempfail', reason: `mbox ${path}: no process is reading the FIFO` };
    return fsFailure(`mbox ${path}`, e);
  } finally {
    await handle?.close().catch(() => {});
  }
}
// #endregion append-device
