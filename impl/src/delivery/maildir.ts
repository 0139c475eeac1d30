/**
 * Delivering into a Maildir (https://cr.yp.to/proto/maildir.html), as
 * OpenSMTPD's mail.maildir does: the message is written under tmp/ with a
 * name no other delivery can choose, made durable, then renamed into
 * new/, which is atomic: a reader sees the whole message or nothing.
 *
 * Two options of the `maildir` method shape where it lands:
 *  - `junk`: a message whose header says `X-Spam: yes` or
 *    `X-Spam-Flag: yes` (what SpamAssassin and rspamd add) goes to the
 *    Maildir++ folder `.Junk`, created when missing.
 *  - the recipient's sub-address (`user+lists@`): if the folder `.lists`
 *    exists, the message goes there (OpenSMTPD's EXTENSION); a folder is
 *    never created for a tag, or any sender could make folders.
 */
import { randomFillSync } from 'node:crypto';
import { closeSync, constants, fsync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { isAbsolute } from 'node:path';
import { GroupCommit } from '../queue/group-commit.ts';
import { fsFailure } from './failure.ts';
import { encodeLines } from './lines.ts';
import type { DeliveryOutcome } from './types.ts';

export interface MaildirOptions {
  /** The `junk` option of the method. */
  junk?: boolean;
  /** The recipient's sub-address: deliver to the folder `.TAG` if it exists. */
  folder?: string;
  /** The host name in file names; os.hostname() by default. */
  hostname?: string;
}

/**
 * The characters a tag loses before it names a folder, as mail.maildir
 * does: `/` above all, and the ones that mean something to a shell or an
 * IMAP client.
 */
const FOLDER_ESCAPE = "!#$%&'*/?^`{|}~";

let sequence = 0;

/**
 * Random bytes for file names, drawn 4 KiB at a time: one call into
 * OpenSSL per 512 names instead of one per name, which showed in the
 * agent's profile at 100 sessions (3% of its time).
 */
const randomPool = Buffer.alloc(4096);
let randomUsed = randomPool.length;

function randomHex8(): string {
  if (randomUsed === randomPool.length) {
    randomFillSync(randomPool);
    randomUsed = 0;
  }
  randomUsed += 8;
  return randomPool.toString('hex', randomUsed - 8, randomUsed);
}

// #region unique-name
/**
 * A name unique to this delivery, in the form the maildir spec and
 * Dovecot use: seconds, then M microseconds, P pid, Q a per-process
 * counter and R random bits, then the host name with `/` and `:` written
 * as `\057` and `\072` (a `/` would make it a path, a `:` starts the
 * flags of a name in cur/).
 */
export function maildirUniqueName(host = osHostname()): string {
  const micros = BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000));
  const seconds = micros / 1_000_000n;
  const rand = randomHex8();
  const safeHost = (host || 'localhost').replace(/\//g, '\\057').replace(/:/g, '\\072');
  return `${seconds}.M${micros % 1_000_000n}P${process.pid}Q${++sequence}R${rand}.${safeHost}`;
}
// #endregion unique-name

/** A header line that marks spam: `X-Spam: yes` or `X-Spam-Flag: yes`, in any case. */
export function isSpamHeader(line: string): boolean {
  return /^x-spam(-flag)?[ \t]*:[ \t]*yes[ \t]*$/i.test(line);
}

/*
 * The calls below block, except the fsyncs. An asynchronous call runs on
 * a thread of libuv's pool and costs two thread switches, several times
 * what a mkdir, an open, a write of a message to the page cache or a
 * rename costs by itself; only an fsync waits for the disk. The agent
 * delivers for one user, so a blocking call holds up nobody else's mail.
 */

/**
 * Creates DIR and its tmp/, new/ and cur/, mode 0700, when missing. A
 * stat comes first: a mkdir that fails with EEXIST, the usual case, costs
 * an exception, five times what the stat does.
 */
export async function ensureMaildir(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const sub of ['tmp', 'new', 'cur']) {
    if (statSync(`${dir}/${sub}`, { throwIfNoEntry: false })) continue;
    try {
      mkdirSync(`${dir}/${sub}`, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

/**
 * The Maildirs this process has already made sure of. Checking costs a
 * mkdir and four stats, 5% of the agent's time per message at 100
 * sessions, for an answer that rarely changes. Should a user remove
 * tmp/ later, the create in it fails with ENOENT and the delivery checks
 * again; any other failure makes the next delivery check again too.
 * (An agent serves one uid, usually one Maildir or a few; the bound is
 * for many virtual users on one uid.)
 */
const checkedMaildirs = new Set<string>();
const MAX_CHECKED_MAILDIRS = 1024;

async function ensureMaildirOnce(dir: string): Promise<void> {
  if (checkedMaildirs.has(dir)) return;
  await ensureMaildir(dir);
  if (checkedMaildirs.size >= MAX_CHECKED_MAILDIRS) checkedMaildirs.clear();
  checkedMaildirs.add(dir);
}

// #region create-in-tmp
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;

/** Creates tmp/NAME in a Maildir; if tmp/ is gone since the last check, checks (and mends) the Maildir once and tries again. */
async function createInTmp(maildir: string, tmpPath: string): Promise<number> {
  try {
    return openSync(tmpPath, CREATE_FLAGS, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || !checkedMaildirs.delete(maildir)) throw e;
    await ensureMaildirOnce(maildir);
    return openSync(tmpPath, CREATE_FLAGS, 0o600);
  }
}
// #endregion create-in-tmp

/** fsync(2) of a descriptor, on the pool. */
function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (e) => (e ? reject(e) : resolve())));
}

/** How many fsyncs of new/ this process has made: fewer than deliveries when they overlap (for tests and benchmarks). */
export const maildirStats = { dirSyncs: 0 };

/** One fsync of a directory. */
async function fsyncDirOnce(dir: string): Promise<void> {
  maildirStats.dirSyncs++;
  const fd = openSync(dir, constants.O_RDONLY);
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * fsync of new/, shared by the deliveries that wait for it at the same
 * time, as the queue's group commit shares its directory fsyncs: a
 * delivery whose rename is done waits for an fsync that starts after it;
 * those that arrive while one runs all wait for the next. Alone, a
 * delivery waits for nobody. (One group per directory; an agent delivers
 * for one user, into a handful of them.)
 */
const dirSyncs = new Map<string, GroupCommit<string>>();

function fsyncDir(dir: string): Promise<void> {
  let group = dirSyncs.get(dir);
  if (!group) {
    group = new GroupCommit<string>(async (batch) => {
      await fsyncDirOnce(dir);
      return batch.map(() => undefined);
    });
    dirSyncs.set(dir, group);
  }
  return group.submit(dir);
}

// #region deliver-maildir
/** Delivers one message; never throws for a delivery problem. `detail` is the file's path in new/. */
export async function deliverMaildir(dir: string, content: AsyncIterable<unknown>, options: MaildirOptions = {}): Promise<DeliveryOutcome> {
  if (!isAbsolute(dir)) return { result: 'permfail', reason: `maildir ${dir}: the path must be absolute` };
  const root = dir.replace(/\/+$/, '') || '/';
  const junkDir = `${root}/.Junk`;
  let target = root;
  try {
    await ensureMaildirOnce(root);
    if (options.junk) await ensureMaildirOnce(junkDir);
    const tag = options.folder ? [...options.folder].map((c) => (FOLDER_ESCAPE.includes(c) ? ':' : c)).join('') : '';
    if (tag && tag !== '.') { // `.` would make the folder `..`, the Maildir's parent
      const folder = `${root}/.${tag}`;
      if (statSync(folder, { throwIfNoEntry: false })?.isDirectory()) {
        await ensureMaildirOnce(folder);
        target = folder;
      }
    }
  } catch (e) {
    return fsFailure(`maildir ${root}`, e);
  }

  const name = maildirUniqueName(options.hostname);
  const tmpPath = `${target}/tmp/${name}`;
  let fd: number | undefined;
  let spam = false;
  try {
    fd = await createInTmp(target, tmpPath);
    const onHeaderLine = options.junk ? (line: Buffer) => { spam ||= isSpamHeader(line.toString('latin1')); } : undefined;
    for await (const out of encodeLines(content, { eol: '\n', terminateLastLine: true, ...(onHeaderLine && { onHeaderLine }) })) {
      for (let done = 0; done < out.length;) done += writeSync(fd, out, done, out.length - done);
    }
    await fsyncFd(fd);
    closeSync(fd);
    fd = undefined;
    const newDir = `${spam ? junkDir : target}/new`;
    const newPath = `${newDir}/${name}`;
    renameSync(tmpPath, newPath);
    // The rename is only durable once the directory is (one fsync for the renames of concurrent deliveries).
    await fsyncDir(newDir);
    return { result: 'ok', detail: newPath };
  } catch (e) {
    if (fd !== undefined) closeQuietly(fd);
    checkedMaildirs.delete(target);
    if (spam) checkedMaildirs.delete(junkDir);
    try {
      unlinkSync(tmpPath);
    } catch {
      // not there, or not ours to remove
    }
    return fsFailure(`maildir ${target}`, e);
  }
}
// #endregion deliver-maildir

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
