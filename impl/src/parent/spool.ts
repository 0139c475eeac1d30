/**
 * Making the spool ready for the queue process, which alone uses it.
 */
import { chmod, lchown, lstat, mkdir, readdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from '../log/index.ts';
import type { Accounts } from '../proc/privileges.ts';

/** The spool when the command line does not give one: OpenSMTPD's as root, one under the current directory otherwise. */
export function defaultSpoolDir(): string {
  return process.getuid?.() === 0 ? '/var/spool/smtpd' : resolve('var/spool');
}

/**
 * The spool belongs to the queue's user, mode 0700: only the queue
 * process can list, read or write queued mail. (OpenSMTPD keeps the spool
 * root owned by root and gives each subdirectory to _smtpq; here the
 * queue backend creates and empties its subdirectories itself, which
 * needs the root directory to be its own.) A spool left by an earlier run
 * as another user is given to the queue's user, file by file. Every
 * directory above the spool must let that user through, or the queue
 * would fail later with a bare EACCES; this says so now.
 */
export async function prepareSpool(spool: string, accounts: Accounts, log: Logger): Promise<void> {
  // Missing parents are made as `mkdir -p` makes them (the umask's mode,
  // 0755 as a rule), so that _smtpq can pass through them; only the spool
  // itself is 0700. One recursive mkdir with mode 0700 would make every
  // parent 0700, and the check below would then refuse what smtpd made.
  await mkdir(dirname(resolve(spool)), { recursive: true });
  await mkdir(spool, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  await tightenSpoolMode(spool, log);
  if (!accounts.separated) return;
  const { uid, gid, user } = accounts.smtpq;
  const info = await stat(spool);
  if (info.uid !== uid || info.gid !== gid) {
    log.info(`info: giving the spool ${spool} to ${user}`);
    await chownTree(spool, uid, gid);
  }
  for (let dir = dirname(resolve(spool)); ; dir = dirname(dir)) {
    const mode = (await stat(dir)).mode;
    if ((mode & 0o001) === 0) {
      throw new Error(`the spool ${spool} is not reachable by ${user}: ${dir} has mode ${(mode & 0o777).toString(8)} (it needs o+x)`);
    }
    if (dir === dirname(dir)) break;
  }
}

/**
 * A spool that others may write in may hold files they put there: forged
 * envelopes the queue would deliver. smtpd refuses it, as OpenSMTPD does
 * a spool directory with the wrong mode, rather than trust it. One that
 * others may only read or search (`mkdir -p` makes 0755) is made 0700,
 * as the owner is given to the queue's user, with a line saying so.
 */
async function tightenSpoolMode(spool: string, log: Logger): Promise<void> {
  const mode = (await stat(spool)).mode & 0o7777;
  if ((mode & 0o022) !== 0) {
    throw new Error(
      `the spool ${spool} has mode ${mode.toString(8)}: users other than its owner may write in it, and may have ` +
        `put files there; check what it holds, then chmod 700 ${spool}`,
    );
  }
  if ((mode & 0o077) !== 0) {
    log.info(`info: the spool ${spool} had mode ${mode.toString(8)}: making it 700`);
    await chmod(spool, 0o700);
  }
}

/**
 * lchown, never chown: a link planted in the spool by a compromised queue
 * must not make root give away the file it points to.
 */
async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await lchown(path, uid, gid);
  if (!(await lstat(path)).isDirectory()) return;
  for (const name of await readdir(path)) await chownTree(join(path, name), uid, gid);
}
