/**
 * The system mailbox, /var/mail/USER, for a delivery agent: the one step
 * of `mbox` delivery that needs root. Debian ships /var/mail as
 * root:mail, mode 2775, and an agent runs as the recipient without the
 * mail group (a fork as another user drops supplementary groups), so it
 * can create nothing there: neither the lock file nor a missing mailbox.
 * OpenSMTPD creates the mailbox in its delivery child before it drops
 * to the user (mda_mbox_init()), and mail.local, set-group-id mail on
 * Debian, makes the lock. Here the agent is the user from the start, so
 * it asks the parent, which makes both and nothing else: it never opens
 * a mailbox that exists, and never reads or writes mail. The agent then
 * appends as the user, with its own checks (delivery/mbox.ts).
 *
 *     agent --parent.mbox.lock { user, path }--> parent: USER.lock, and USER if missing
 *     agent appends to USER, as the user
 *     agent --parent.mbox.unlock { lock }--> parent: USER.lock removed
 */
import { constants } from 'node:fs';
import { lstat, open, unlink, type FileHandle } from 'node:fs/promises';
import { acquireDotlock, SYSTEM_MAIL_DIR, type Dotlock, type DotlockOptions, type UserRecord } from '../delivery/index.ts';
import type { agentParentChannel } from '../proc/channels/delivery.ts';
import type { Handlers } from '../proc/protocol.ts';

export interface MailboxOptions {
  /** The mail directory; SYSTEM_MAIL_DIR unless a test says otherwise. */
  dir?: string;
  lock?: DotlockOptions;
}

/** The mailbox of `user`: the parent's own idea of it, from the user it started the agent as. */
export function systemMailboxPath(user: UserRecord, dir = SYSTEM_MAIL_DIR): string {
  if (!user.name || user.name.includes('/') || user.name === '.' || user.name === '..') {
    throw new Error(`user name ${JSON.stringify(user.name)} cannot name a mailbox`);
  }
  return `${dir.replace(/\/+$/, '')}/${user.name}`;
}

// #region system-mailbox
/**
 * Takes `USER.lock` and, if `USER` is missing, creates it: empty, mode
 * 0600, owned by the user and the user's group, as mail.local does.
 * Both are made with O_CREAT|O_EXCL, which never follows a symbolic
 * link, dangling or not: a link planted at either name makes the call
 * fail with EEXIST instead of creating a file where it points. A
 * mailbox that exists is looked at with lstat() and left alone if it is
 * a plain file with one link, owned by the user; a symbolic link, a
 * device, a FIFO or a file with other hard links is refused, as
 * mail.local refuses a "linked or special file", and so is a file of
 * another owner ("wrong ownership"): where /var/mail is writable by all
 * (1777), anyone could make USER before USER's first mail, readable
 * and writable by themselves, and the agent would append to it. The file is given to the user through the
 * descriptor (fchown), so no name is followed there either.
 */
export async function lockSystemMailbox(user: UserRecord, options: MailboxOptions = {}): Promise<Dotlock> {
  const path = systemMailboxPath(user, options.dir);
  const lock = await acquireDotlock(path, options.lock);
  try {
    await createIfMissing(path, user);
  } catch (e) {
    await lock.release();
    throw e;
  }
  return lock;
}

async function createIfMissing(path: string, user: UserRecord): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const st = await lstat(path);
    if (st.isSymbolicLink()) throw new Error(`${path} is a symbolic link; refusing to follow it`);
    if (!st.isFile()) throw new Error(`${path} is not a regular file`);
    if (st.nlink > 1) throw new Error(`${path} has ${st.nlink} hard links; refusing to append`);
    if (st.uid !== user.uid) throw new Error(`${path} is owned by uid ${st.uid}, not by ${user.name} (uid ${user.uid}); refusing to append`);
    return;
  }
  try {
    if (process.getuid?.() === 0) await handle.chown(user.uid, user.gid);
  } catch (e) {
    // Root's empty file would refuse the user's agent for good: take it back. We hold the lock.
    await unlink(path).catch(() => {});
    throw e;
  } finally {
    await handle.close();
  }
}
// #endregion system-mailbox

/**
 * How many locks one agent may hold or wait for at once. An agent serves
 * every account of its uid and gid, so its deliveries may go to as many
 * mailboxes at once as the dispatcher runs deliveries (50, as OpenSMTPD's
 * MDA_MAXSESS); the bound is above that, and keeps an agent that asks
 * without end from growing the parent.
 */
const MAX_LOCKS_PER_AGENT = 64;

/**
 * The parent's side for one agent: its requests, and releaseAll() for
 * when it exits, so that a lock it held is not left for others to wait
 * five minutes on. One agent serves every account with its uid and gid
 * (virtual users of a userbase often share one), so it may lock the
 * mailbox of any of them that `known` vouches for: the mailboxes it
 * could append to anyway, being that uid.
 */
export function mailboxService(user: UserRecord, known: (account: UserRecord) => boolean, options: MailboxOptions = {}): {
  handlers: Handlers<typeof agentParentChannel['calls']>;
  releaseAll(): Promise<void>;
} {
  const held = new Map<number, Dotlock>();
  let next = 1;
  let waiting = 0;
  let closed = false;
  return {
    handlers: {
      'parent.mbox.lock': async ({ user: account, path }) => {
        if (account.uid !== user.uid || account.gid !== user.gid) {
          throw new Error(`the agent for ${user.name} (uid ${user.uid}, gid ${user.gid}) may not lock the mailbox of ${account.name} (uid ${account.uid}, gid ${account.gid})`);
        }
        if (!known(account)) throw new Error(`the agent for ${user.name} may not lock the mailbox of ${account.name}: no userbase of smtpd.conf has this account`);
        const own = systemMailboxPath(account, options.dir);
        if (path !== own) throw new Error(`the agent for ${user.name} may lock ${own} for ${account.name}, not ${path}`);
        if (held.size + waiting >= MAX_LOCKS_PER_AGENT) throw new Error(`the agent for ${user.name} holds or waits for ${MAX_LOCKS_PER_AGENT} locks already`);
        waiting++;
        let lock: Dotlock;
        try {
          lock = await lockSystemMailbox(account, options);
        } finally {
          waiting--;
        }
        if (closed) {
          await lock.release();
          throw new Error(`the agent for ${user.name} has exited`);
        }
        const id = next++;
        held.set(id, lock);
        return { lock: id };
      },
      'parent.mbox.unlock': async ({ lock }) => {
        const found = held.get(lock);
        held.delete(lock);
        await found?.release();
        return {};
      },
    },
    async releaseAll() {
      closed = true;
      const locks = [...held.values()];
      held.clear();
      await Promise.all(locks.map((l) => l.release()));
    },
  };
}
